"""The DLQ messages page: peek, escaping of hostile bodies, groups, export, loops."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from operations.models import Operation, TouchedCorrelation

from .conftest import Queues

pytestmark = pytest.mark.django_db


def page(client, name: str = "orders-dlq"):
    return client.get(reverse("operations:dlq_messages", args=[name]))


def test_page_shows_the_message_with_correlation_and_event_type(
    viewer_client, queues: Queues
) -> None:
    queues.put_event(7, "OrderShipped")
    html = page(viewer_client).content.decode()
    assert "corr-7" in html and "OrderShipped" in html
    assert 'id="peek-notice"' in html


def test_peek_notice_says_how_long_messages_are_hidden(
    viewer_client, queues: Queues, settings
) -> None:
    settings.EVENTOPS_PEEK_VISIBILITY_SECONDS = 7
    queues.put_event(1)
    assert (
        "hidden from consumers (and from a redrive) for 7 seconds"
        in page(viewer_client).content.decode()
    )


def test_correlation_id_links_to_the_correlation_lookup(viewer_client, queues: Queues) -> None:
    queues.put_event(3)
    html = page(viewer_client).content.decode()
    assert f'href="{reverse("correlation")}?q=corr-3"' in html


def test_correlation_id_from_message_attribute_wins(viewer_client, queues: Queues) -> None:
    queues.put_event(3, correlation_id="from-attribute")
    html = page(viewer_client).content.decode()
    assert "?q=from-attribute" in html


@pytest.mark.parametrize(
    "body",
    [
        '<script>alert("x")</script>',
        json.dumps(
            {"detail-type": "<script>alert(1)</script>", "detail": {"correlationId": "<b>"}}
        ),
        "bytes \u00ff\u00fe\ufffd\udcff-like \x7f",
        json.dumps({"blob": "x" * 250_000}),
        "plain text, not JSON {",
    ],
    ids=["script", "script-in-json", "bad-utf8-like", "250kb-json", "not-json"],
)
def test_hostile_bodies_render_escaped(viewer_client, queues: Queues, body: str) -> None:
    queues.put(body.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))
    response = page(viewer_client)
    assert response.status_code == 200
    assert "<script>alert" not in response.content.decode()


def test_messages_are_grouped_by_event_type_and_error(viewer_client, queues: Queues) -> None:
    queues.put_event(1, "OrderPaid")
    queues.put_event(2, "OrderPaid", ErrorMessage="timeout calling billing")
    queues.put_event(3, "OrderShipped")
    response = page(viewer_client)
    by_type = {g.key: g.count for g in response.context["by_event_type"]}
    assert by_type == {"OrderPaid": 2, "OrderShipped": 1}
    assert [(g.key, g.count) for g in response.context["by_error"]] == [
        ("timeout calling billing", 1)
    ]


def test_unknown_queue_is_404(viewer_client, queues: Queues) -> None:
    assert page(viewer_client, "no-such-queue").status_code == 404


def test_invalid_queue_name_is_404(viewer_client, queues: Queues) -> None:
    assert page(viewer_client, "bad name!").status_code == 404


def test_anonymous_is_sent_to_login(client, queues: Queues) -> None:
    response = page(client)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_export_is_a_json_download_of_the_peeked_messages(viewer_client, queues: Queues) -> None:
    queues.put("<script>x</script>")
    response = viewer_client.get(reverse("operations:dlq_export", args=["orders-dlq"]))
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)["messages"][0]["Body"] == "<script>x</script>"


def test_redrive_loop_is_reported_on_the_dlq_and_operation_pages(
    viewer_client, queues: Queues
) -> None:
    op = Operation.objects.create(
        kind="redrive", target=queues.dlq_url, reason="r", requested_by_name="t", state="succeeded"
    )
    TouchedCorrelation.objects.create(operation=op, correlation_id="corr-5")
    queues.put_event(5)
    assert 'id="redrive-loop"' in page(viewer_client).content.decode()
    detail = viewer_client.get(reverse("operations:detail", args=[op.pk])).content.decode()
    assert 'id="redrive-loop"' in detail and "corr-5" in detail


def test_no_loop_warning_for_ids_never_redriven(viewer_client, queues: Queues) -> None:
    queues.put_event(5)
    assert 'id="redrive-loop"' not in page(viewer_client).content.decode()


def test_aws_error_is_a_clear_page_not_a_500(viewer_client, queues: Queues, monkeypatch) -> None:
    from operations.aws import sqs
    from operations.aws.errors import AwsError

    def denied(url: str, **kwargs: object) -> list[sqs.SqsMessage]:
        raise AwsError("not allowed", code="AccessDenied", operation="ReceiveMessage")

    monkeypatch.setattr(sqs, "receive_messages", denied)
    response = page(viewer_client)
    assert response.status_code == 200 and "Could not read the queue" in response.content.decode()


def test_aws_error_while_finding_the_queue_is_a_502_page(
    viewer_client, queues: Queues, monkeypatch
) -> None:
    from operations.aws import sqs
    from operations.aws.errors import AwsError

    def throttled(name: str) -> str:
        raise AwsError("slow down", code="Throttling", operation="GetQueueUrl", transient=True)

    monkeypatch.setattr(sqs, "queue_url", throttled)
    response = page(viewer_client)
    assert response.status_code == 502 and 'id="aws-error"' in response.content.decode()
