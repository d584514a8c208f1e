"""Redrive preview and start: the mutating-view checklist, CSRF, concurrency."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from operations.models import Operation

from .conftest import Queues

pytestmark = pytest.mark.django_db

START = reverse("operations:redrive_start", args=["default", "orders-dlq"])
PREVIEW = reverse("operations:redrive", args=["default", "orders-dlq"])


def start_data(queues: Queues, **extra: str) -> dict[str, str]:
    return {"reason": "billing fixed", "destination_arn": queues.source_arn, **extra}


def test_preview_counts_the_matching_messages(operator_client, queues: Queues) -> None:
    for i in range(3):
        queues.put_event(i, "OrderPaid")
    queues.put_event(9, "OrderShipped")
    response = operator_client.get(PREVIEW, {"event_type": "OrderPaid"})
    assert len(response.context["preview"].matching) == 3
    assert 'id="redrive-confirm"' in response.content.decode()


def test_preview_releases_the_messages_it_examined(
    operator_client, queues: Queues, settings
) -> None:
    settings.EVENTOPS_PEEK_VISIBILITY_SECONDS = 300
    queues.put_event(1)
    operator_client.get(PREVIEW, {"event_type": "OrderPaid"})
    attrs = queues.client.get_queue_attributes(QueueUrl=queues.dlq_url, AttributeNames=["All"])
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "1"


def test_preview_of_part_of_a_queue_estimates_the_whole(
    operator_client, queues: Queues, settings
) -> None:
    settings.EVENTOPS_PEEK_MAX_RECEIVES = 1  # one receive: 10 of the 30 messages are examined
    for i in range(30):
        queues.put_event(i, "OrderPaid" if i % 2 else "OrderShipped")
    response = operator_client.get(PREVIEW, {"event_type": "OrderPaid"})
    preview = response.context["preview"]
    assert (preview.examined, len(preview.matching), preview.estimate) == (10, 5, 15)
    html = response.content.decode()
    assert 'id="preview-estimate"' in html and "about 15</strong>" in html
    assert "an estimate from a sample, not a count" in html


def test_preview_of_the_whole_queue_has_no_estimate(operator_client, queues: Queues) -> None:
    for i in range(4):
        queues.put_event(i, "OrderPaid" if i % 2 else "OrderShipped")
    response = operator_client.get(PREVIEW, {"event_type": "OrderPaid"})
    assert response.context["preview"].estimate is None
    assert 'id="preview-estimate"' not in response.content.decode()


def test_viewer_sees_the_preview_without_the_confirm_form(viewer_client, queues: Queues) -> None:
    queues.put_event(1)
    html = viewer_client.get(PREVIEW, {"event_type": ""}).content.decode()
    assert 'id="redrive-preview"' in html and 'id="redrive-confirm"' not in html


def test_operator_starts_a_redrive(operator_client, operator, queues: Queues) -> None:
    response = operator_client.post(
        START, start_data(queues, event_type="OrderPaid", max_messages="5")
    )
    op = Operation.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "operations:detail", args=["default", op.pk]
    )
    op.refresh_from_db()
    assert (op.kind, op.state, op.requested_by, op.reason) == (
        "redrive",
        "pending",
        operator,
        "billing fixed",
    )
    assert (
        op.parameters["filters"]["event_type"] == "OrderPaid" and op.parameters["max_messages"] == 5
    )


def test_start_enqueues_the_task_on_commit(
    operator_client, queues: Queues, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    from operations import tasks

    sent: list[int] = []
    monkeypatch.setattr(tasks.redrive, "apply_async", lambda args, **kw: sent.append(args[0]))
    with django_capture_on_commit_callbacks(execute=True):
        operator_client.post(START, start_data(queues))
    assert sent == [Operation.objects.get().pk]


def test_get_on_start_is_405(operator_client, queues: Queues) -> None:
    assert operator_client.get(START).status_code == 405


def test_viewer_cannot_start_a_redrive(viewer_client, queues: Queues) -> None:
    assert viewer_client.post(START, start_data(queues)).status_code == 403
    assert not Operation.objects.exists()


def test_anonymous_start_is_sent_to_login(client, queues: Queues) -> None:
    response = client.post(START, start_data(queues))
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert not Operation.objects.exists()


def test_start_without_csrf_token_is_refused(operator, queues: Queues) -> None:
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(operator)
    assert csrf_client.post(START, start_data(queues)).status_code == 403
    assert not Operation.objects.exists()


def test_start_without_reason_is_refused_and_changes_nothing(
    operator_client, queues: Queues
) -> None:
    response = operator_client.post(START, start_data(queues, reason=""))
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    assert not Operation.objects.exists()


def test_arbitrary_destination_arn_is_refused(operator_client, queues: Queues) -> None:
    data = start_data(queues, destination_arn="arn:aws:sqs:us-east-1:999999999999:attacker")
    assert operator_client.post(START, data).status_code == 400
    assert not Operation.objects.exists()


def test_second_start_is_refused_with_a_link_to_the_running_one(
    operator_client, queues: Queues
) -> None:
    operator_client.post(START, start_data(queues))
    response = operator_client.post(START, start_data(queues))
    first = Operation.objects.get()
    assert response.status_code == 409
    assert (
        f'href="{reverse("operations:detail", args=["default", first.pk])}"'
        in response.content.decode()
    )


def test_confirm_form_carries_the_previewed_filters(operator_client, queues: Queues) -> None:
    queues.put_event(1, "OrderPaid")
    html = operator_client.get(PREVIEW, {"event_type": "OrderPaid"}).content.decode()
    assert '<input type="hidden" name="event_type" value="OrderPaid"' in html
    assert 'id="whole-queue"' not in html


def test_preview_of_named_messages_counts_only_those(operator_client, queues: Queues) -> None:
    ids = [queues.put_event(i) for i in range(4)]
    response = operator_client.get(PREVIEW, {"message_ids": f"{ids[0]}\n{ids[2]}"})
    assert {m.message_id for m in response.context["preview"].matching} == {ids[0], ids[2]}
    html = response.content.decode()
    assert f'name="message_ids" value="{ids[0]} {ids[2]}"' in html


def test_start_with_named_messages_stores_them(operator_client, queues: Queues) -> None:
    ids = [queues.put_event(i) for i in range(2)]
    operator_client.post(START, start_data(queues, message_ids=" ".join(ids)))
    assert Operation.objects.get().parameters["filters"]["message_ids"] == sorted(ids)


@pytest.mark.parametrize(
    "hostile",
    ['" OR 1=1', "<script>alert(1)</script>", "x" * 101, " ".join(["m"] * 201)],
)
def test_hostile_message_ids_are_refused_and_change_nothing(
    operator_client, queues: Queues, hostile: str
) -> None:
    queues.put_event(1)
    preview = operator_client.get(PREVIEW, {"message_ids": hostile})
    assert preview.status_code == 200 and "preview" not in preview.context
    start = operator_client.post(START, start_data(queues, message_ids=hostile))
    assert start.status_code == 400 and not Operation.objects.exists()
    assert "<script>alert(1)</script>" not in start.content.decode()


def test_the_pipelines_chosen_on_the_form_are_stored(operator_client, queues: Queues) -> None:
    operator_client.post(START, start_data(queues, concurrency="4"))
    assert Operation.objects.get().parameters["concurrency"] == 4


def test_no_choice_of_pipelines_leaves_the_default(operator_client, queues: Queues) -> None:
    operator_client.post(START, start_data(queues))
    assert Operation.objects.get().parameters["concurrency"] is None


@pytest.mark.parametrize("concurrency", ["0", "33", "many"])
def test_bad_pipelines_are_a_clear_400_and_start_nothing(
    operator_client, queues: Queues, concurrency: str
) -> None:
    response = operator_client.post(START, start_data(queues, concurrency=concurrency))
    assert response.status_code == 400 and response.context["start_form"].errors["concurrency"]
    assert not Operation.objects.exists()


def test_named_messages_read_as_a_wrapping_list_not_one_pill(
    operator_client, queues: Queues
) -> None:
    ids = [queues.put_event(i) for i in range(3)]
    html = operator_client.get(PREVIEW, {"message_ids": " ".join(ids)}).content.decode()
    listed = html[html.index('id="filter-message-ids"') :]
    listed = listed[: listed.index("</span></span>") + len("</span>")]
    assert all(f"<span>{i}</span>" in listed for i in ids)
