"""Delete selected poison messages and edit-and-resend one: the mutating-view checklist."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from operations.models import Operation

from .conftest import Queues

pytestmark = pytest.mark.django_db

DELETE = reverse("operations:dlq_delete", args=["default", "orders-dlq"])


def edit_url(message_id: str) -> str:
    return reverse("operations:dlq_edit", args=["default", "orders-dlq", message_id])


def test_delete_first_asks_for_confirmation(admin_client, queues: Queues) -> None:
    message_id = queues.put_event(1)
    response = admin_client.post(DELETE, {"message_ids": [message_id]})
    assert 'id="delete-confirm"' in response.content.decode()
    assert queues.depth(queues.dlq_url) == 1


def test_operator_deletes_selected_messages_with_an_audit_record(
    admin_client, queues: Queues, worker
) -> None:
    doomed = queues.put_event(1)
    queues.put_event(2)
    with worker():
        response = admin_client.post(
            DELETE, {"message_ids": [doomed], "reason": "poison", "confirm": "on"}
        )
    op = Operation.objects.get()
    assert response.status_code == 302 and queues.depth(queues.dlq_url) == 1
    assert (op.kind, op.state, op.moved, op.reason) == ("delete_messages", "succeeded", 1, "poison")
    assert op.outcome["deleted"][0]["CorrelationId"] == "corr-1"


def test_delete_without_reason_changes_nothing(admin_client, queues: Queues) -> None:
    message_id = queues.put_event(1)
    response = admin_client.post(DELETE, {"message_ids": [message_id], "confirm": "on"})
    assert response.status_code == 400 and queues.depth(queues.dlq_url) == 1
    assert not Operation.objects.exists()


def test_delete_without_selection_is_a_clear_error(admin_client, queues: Queues) -> None:
    response = admin_client.post(DELETE, {"reason": "x", "confirm": "on"})
    assert response.status_code == 400 and "This field is required" in response.content.decode()


def test_deleting_again_is_harmless(admin_client, queues: Queues, worker) -> None:
    message_id = queues.put_event(1)
    data = {"message_ids": [message_id], "reason": "poison", "confirm": "on"}
    with worker():
        admin_client.post(DELETE, data)
    with worker():
        assert admin_client.post(DELETE, data).status_code == 302
    assert list(Operation.objects.order_by("pk").values_list("state", flat=True)) == [
        "succeeded",
        "failed",
    ]


def test_get_on_delete_is_405(admin_client, queues: Queues) -> None:
    assert admin_client.get(DELETE).status_code == 405


def test_viewer_cannot_delete(viewer_client, queues: Queues) -> None:
    message_id = queues.put_event(1)
    response = viewer_client.post(
        DELETE, {"message_ids": [message_id], "reason": "x", "confirm": "on"}
    )
    assert response.status_code == 403 and queues.depth(queues.dlq_url) == 1


def test_anonymous_delete_is_sent_to_login(client, queues: Queues) -> None:
    message_id = queues.put_event(1)
    response = client.post(DELETE, {"message_ids": [message_id], "reason": "x", "confirm": "on"})
    assert "/login/" in response["Location"] and queues.depth(queues.dlq_url) == 1


def test_delete_without_csrf_token_is_refused(admin, queues: Queues) -> None:
    message_id = queues.put_event(1)
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(admin)
    response = csrf_client.post(
        DELETE, {"message_ids": [message_id], "reason": "x", "confirm": "on"}
    )
    assert response.status_code == 403 and queues.depth(queues.dlq_url) == 1


def test_edit_page_shows_the_body(admin_client, queues: Queues) -> None:
    message_id = queues.put_event(4)
    response = admin_client.get(edit_url(message_id))
    assert response.status_code == 200 and "corr-4" in response.content.decode()


def test_edit_shows_a_server_side_diff_before_sending(admin_client, queues: Queues) -> None:
    message_id = queues.put_event(4)
    body = json.loads(
        queues.client.receive_message(QueueUrl=queues.dlq_url, VisibilityTimeout=0)["Messages"][0][
            "Body"
        ]
    )
    body["detail"]["orderId"] = "o-fixed"
    response = admin_client.post(edit_url(message_id), {"body": json.dumps(body)})
    assert "+    &quot;orderId&quot;: &quot;o-fixed&quot;" in response.content.decode()
    assert queues.depth(queues.source_url) == 0


def test_operator_edits_and_resends_to_the_source_queue(
    admin_client, queues: Queues, worker
) -> None:
    message_id = queues.put_event(4, correlation_id="corr-4")
    edited = json.dumps(
        {"detail-type": "OrderPaid", "detail": {"correlationId": "corr-4", "orderId": "fixed"}}
    )
    with worker():
        response = admin_client.post(
            edit_url(message_id), {"body": edited, "reason": "typo", "confirm": "on"}
        )
    op = Operation.objects.get()
    sent = queues.client.receive_message(QueueUrl=queues.source_url, MessageAttributeNames=["All"])[
        "Messages"
    ][0]
    assert response.status_code == 302 and (op.kind, op.state) == ("edit_resend", "succeeded")
    assert (
        json.loads(sent["Body"])["detail"]["orderId"] == "fixed"
        and queues.depth(queues.dlq_url) == 0
    )
    assert sent["MessageAttributes"]["correlation_id"]["StringValue"] == "corr-4"


def test_failed_send_keeps_the_original(admin_client, queues: Queues, monkeypatch, worker) -> None:
    from operations.aws import sqs
    from operations.aws.errors import AwsError

    def refuse(url: str, entry: dict) -> str:
        raise AwsError("denied", code="AccessDenied")

    monkeypatch.setattr(sqs, "send_message", refuse)
    message_id = queues.put_event(4)
    with worker():
        admin_client.post(edit_url(message_id), {"body": "{}", "reason": "x", "confirm": "on"})
    assert Operation.objects.get().state == "failed" and queues.depth(queues.dlq_url) == 1


def test_edit_with_invalid_json_is_refused(admin_client, queues: Queues) -> None:
    message_id = queues.put_event(4)
    response = admin_client.post(
        edit_url(message_id), {"body": "{nope", "reason": "x", "confirm": "on"}
    )
    assert response.status_code == 400 and "Not valid JSON" in response.content.decode()
    assert queues.depth(queues.dlq_url) == 1 and not Operation.objects.exists()


@pytest.mark.parametrize(
    "body, error",
    [
        ("[" * 100_000, "nested too deeply"),
        ("[" * 2_000 + "]" * 2_000, "nested too deeply"),
        ('{"note": "\\ud800"}', "unpaired surrogate"),
    ],
    ids=["unparseable-depth", "deep-but-balanced", "lone-surrogate"],
)
def test_edit_with_a_hostile_body_is_refused_clearly(
    admin_client, queues: Queues, body: str, error: str
) -> None:
    message_id = queues.put_event(4)
    response = admin_client.post(
        edit_url(message_id), {"body": body, "reason": "x", "confirm": "on"}
    )
    assert response.status_code == 400 and error in response.content.decode()
    assert queues.depth(queues.dlq_url) == 1 and not Operation.objects.exists()


def test_edit_page_of_a_deeply_nested_message_shows_it(admin_client, queues: Queues) -> None:
    body = "[" * 900 + "]" * 900
    message_id = queues.put(body)
    response = admin_client.get(edit_url(message_id))
    assert response.status_code == 200 and 'id="edit-form"' in response.content.decode()


def test_edit_of_missing_message_is_404(admin_client, queues: Queues) -> None:
    response = admin_client.get(edit_url("00000000-0000-0000-0000-000000000000"))
    assert response.status_code == 404 and 'id="message-not-found"' in response.content.decode()


def test_viewer_cannot_edit(viewer_client, queues: Queues) -> None:
    message_id = queues.put_event(4)
    response = viewer_client.post(
        edit_url(message_id), {"body": "{}", "reason": "x", "confirm": "on"}
    )
    assert response.status_code == 403 and queues.depth(queues.source_url) == 0


def test_anonymous_edit_is_sent_to_login(client, queues: Queues) -> None:
    message_id = queues.put_event(4)
    response = client.post(edit_url(message_id), {"body": "{}", "reason": "x", "confirm": "on"})
    assert "/login/" in response["Location"] and queues.depth(queues.source_url) == 0


def test_edit_without_csrf_token_is_refused(admin, queues: Queues) -> None:
    message_id = queues.put_event(4)
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(admin)
    response = csrf_client.post(
        edit_url(message_id), {"body": "{}", "reason": "x", "confirm": "on"}
    )
    assert response.status_code == 403 and queues.depth(queues.source_url) == 0


def test_edit_while_a_redrive_runs_is_refused_with_a_link(admin_client, queues: Queues) -> None:
    running = Operation.objects.create(
        kind="redrive", target=queues.dlq_url, reason="r", requested_by_name="x"
    )
    message_id = queues.put_event(4)
    response = admin_client.post(
        edit_url(message_id), {"body": "{}", "reason": "x", "confirm": "on"}
    )
    assert response.status_code == 409
    assert reverse("operations:detail", args=["default", running.pk]) in response.content.decode()


def test_an_operator_may_neither_delete_nor_edit(operator_client, queues: Queues) -> None:
    message_id = queues.put_event(1)
    data = {"message_ids": [message_id], "reason": "x", "confirm": "on"}
    assert operator_client.post(DELETE, data).status_code == 403
    assert operator_client.get(edit_url(message_id)).status_code == 403
    assert queues.depth(queues.dlq_url) == 1


def test_the_messages_page_offers_an_operator_no_delete_or_edit(
    operator_client, queues: Queues
) -> None:
    queues.put_event(1)
    html = operator_client.get(reverse("operations:dlq_messages", args=["default", "orders-dlq"]))
    assert 'id="delete-form"' not in html.content.decode()
    assert "Edit and re-send" not in html.content.decode()
