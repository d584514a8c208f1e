"""The DLQ messages page: peek, escaping of hostile bodies, groups, export, loops."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from operations.models import Operation, TouchedCorrelation

from .conftest import Queues

pytestmark = pytest.mark.django_db


def page(client, name: str = "orders-dlq"):
    return client.get(reverse("operations:dlq_messages", args=["default", name]))


def test_page_shows_the_message_with_correlation_and_event_type(
    viewer_client, queues: Queues
) -> None:
    queues.put_event(7, "OrderShipped")
    html = page(viewer_client).content.decode()
    assert "corr-7" in html and "OrderShipped" in html
    assert 'id="peek-notice"' in html


def test_peek_notice_says_nothing_stays_hidden(viewer_client, queues: Queues, settings) -> None:
    settings.EVENTOPS_PEEK_VISIBILITY_SECONDS = 7
    queues.put_event(1)
    html = page(viewer_client).content.decode()
    assert "released them at once, so none is hidden from consumers" in html


def test_correlation_id_links_to_the_correlation_lookup(viewer_client, queues: Queues) -> None:
    queues.put_event(3)
    html = page(viewer_client).content.decode()
    assert f'href="{reverse("correlation", args=["default"])}?q=corr-3"' in html


def test_correlation_id_from_message_attribute_wins(viewer_client, queues: Queues) -> None:
    queues.put_event(3, correlation_id="from-attribute")
    html = page(viewer_client).content.decode()
    assert "?q=from-attribute" in html


@pytest.mark.parametrize(
    "body, shown",
    [
        ('<script>alert("x")</script>', "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"),
        (
            json.dumps(
                {"detail-type": "<script>alert(1)</script>", "detail": {"correlationId": "<b>"}}
            ),
            "&lt;script&gt;alert(1)&lt;/script&gt;",
        ),
        ("bytes \u00ff\u00fe\ufffd\udcff-like \x7f", "\ufffd-like"),
        (json.dumps({"blob": "x" * 250_000}), "x" * 1000),
        ("plain text, not JSON {", "plain text, not JSON {"),
        # Parses, and the view pretty-prints it (on a shallow stack): 900 levels of indent
        # pass the page's 64 KB, so it is cut, and says so.
        ("[" * 900 + '"<script>"' + "]" * 900, "&lt;script&gt;"),
        ('{"a":' * 900 + '"<script>"' + "}" * 900, "&lt;script&gt;"),
        ("[" * 100_000, "[" * 1000),  # too deep to parse: text
        # "\ud800" parses to a lone surrogate, which cannot be sent as UTF-8.
        (
            '{"detail-type": "\\ud800", "x": "<script>"}',
            "&quot;detail-type&quot;: &quot;\\ud800&quot;",
        ),
    ],
    ids=[
        "script",
        "script-in-json",
        "bad-utf8-like",
        "250kb-json",
        "not-json",
        "nested-900-lists",
        "nested-900-objects",
        "nested-100k-unparseable",
        "lone-surrogate-escape",
    ],
)
def test_hostile_bodies_render_escaped(
    viewer_client, queues: Queues, body: str, shown: str
) -> None:
    queues.put(body.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))
    response = page(viewer_client)
    html = response.content.decode()
    assert response.status_code == 200 and "<script>alert" not in html
    assert shown in html


def test_bodies_nested_near_the_recursion_limit_never_fail_the_page(
    viewer_client, queues: Queues, settings
) -> None:
    # Which depths parse but cannot be pretty-printed depends on the stack the page runs
    # on; this range straddles that edge, so some of them must take the fallback.
    settings.EVENTOPS_PEEK_VISIBILITY_SECONDS = 30
    for depth in range(800, 1000, 10):
        queues.put("[" * depth + "]" * depth)
    response = page(viewer_client)
    assert response.status_code == 200 and len(response.context["rows"]) == 20
    assert all(row["shown"].shown_body for row in response.context["rows"])  # every body shown


def test_hostile_body_exports_as_json(viewer_client, queues: Queues) -> None:
    body = '{"detail-type": "\\ud800", "deep": ' + "[" * 880 + "]" * 880 + "}"
    queues.put(body)
    response = viewer_client.get(reverse("operations:dlq_export", args=["default", "orders-dlq"]))
    exported = json.loads(response.content)["messages"][0]
    assert response.status_code == 200
    assert (exported["Body"], exported["EventType"]) == (body, "\\ud800")


def test_messages_are_grouped_by_event_type_and_failure(viewer_client, queues: Queues) -> None:
    queues.put_event(1, "OrderPaid")
    queues.put_event(2, "OrderPaid", ErrorMessage="timeout calling billing")
    queues.put_event(3, "OrderShipped")
    response = page(viewer_client)
    assert dict(response.context["by_event_type"]) == {"OrderPaid": 2, "OrderShipped": 1}
    by_group = {group.title: count for _, count, group in response.context["by_group"]}
    assert by_group == {"error: (no error recorded)": 2, "error: timeout calling billing": 1}


def test_unknown_queue_is_404(viewer_client, queues: Queues) -> None:
    assert page(viewer_client, "no-such-queue").status_code == 404


def test_invalid_queue_name_is_404(viewer_client, queues: Queues) -> None:
    # The URL pattern itself refuses it (dashboard/converters.py): no reverse() for it.
    assert viewer_client.get("/env/default/queues/bad%20name!/messages/").status_code == 404


def test_anonymous_is_sent_to_login(client, queues: Queues) -> None:
    response = page(client)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_export_is_a_json_download_of_the_peeked_messages(viewer_client, queues: Queues) -> None:
    queues.put("<script>x</script>")
    response = viewer_client.get(reverse("operations:dlq_export", args=["default", "orders-dlq"]))
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
    detail = viewer_client.get(
        reverse("operations:detail", args=["default", op.pk])
    ).content.decode()
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


def export(client, token: str | None = None, name: str = "orders-dlq"):
    query = {"peek": token} if token is not None else {}
    response = client.get(reverse("operations:dlq_export", args=["default", name]), query)
    return json.loads(response.content)


def test_export_has_the_messages_the_page_showed(viewer_client, queues: Queues, settings) -> None:
    settings.EVENTOPS_PEEK_VISIBILITY_SECONDS = 30  # the page's peek hides them from a new one
    sent = {queues.put_event(i) for i in range(3)}
    response = page(viewer_client)
    token = response.context["export_token"]
    assert f"?peek={token}" in response.content.decode()
    exported = export(viewer_client, token)
    assert {m["MessageId"] for m in exported["messages"]} == sent
    assert exported["source"] == "page peek" and "note" not in exported


def test_export_without_a_kept_export_is_the_shared_peek_and_says_so(
    viewer_client, queues: Queues, settings
) -> None:
    settings.EVENTOPS_PEEK_VISIBILITY_SECONDS = 30
    sent = queues.put_event(1)
    page(viewer_client)
    for token in (None, "expired-or-never-issued-token", "<b>bad</b>"):
        exported = export(viewer_client, token)
        assert [m["MessageId"] for m in exported["messages"]] == [sent]
        assert exported["source"] == "shared peek"
        assert "The page's export was not found" in exported["note"]


def test_export_token_of_another_queue_is_not_used(viewer_client, queues: Queues, settings) -> None:
    settings.EVENTOPS_PEEK_VISIBILITY_SECONDS = 30
    other = queues.client.create_queue(QueueName="billing-dlq")["QueueUrl"]
    other_arn = queues.client.get_queue_attributes(QueueUrl=other, AttributeNames=["QueueArn"])
    policy = json.dumps(
        {"deadLetterTargetArn": other_arn["Attributes"]["QueueArn"], "maxReceiveCount": 3}
    )
    queues.client.create_queue(QueueName="billing", Attributes={"RedrivePolicy": policy})
    queues.put_event(1)
    token = page(viewer_client).context["export_token"]
    exported = export(viewer_client, token, name="billing-dlq")
    assert exported["source"] == "shared peek" and exported["queue"] == "billing-dlq"
    assert exported["messages"] == []


def test_too_large_an_export_is_not_kept(viewer_client, queues: Queues, monkeypatch) -> None:
    from dashboard.views import dlq_messages as messages

    monkeypatch.setattr(messages, "MAX_KEPT_EXPORT_CHARS", 10)
    queues.put_event(1)
    response = page(viewer_client)
    assert response.context["export_token"] == ""
    assert "the export takes the latest shared peek" in response.content.decode()


def test_a_live_queue_is_not_a_dlq_and_is_not_peeked(viewer_client, queues: Queues) -> None:
    queues.client.send_message(QueueUrl=queues.source_url, MessageBody="healthy")
    response = page(viewer_client, "orders")
    assert response.status_code == 404
    assert "orders is not a dead-letter queue" in response.content.decode()
    attrs = queues.client.get_queue_attributes(QueueUrl=queues.source_url, AttributeNames=["All"])
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "1"  # still visible


@pytest.mark.parametrize("view", ["dlq_export", "redrive"])
def test_other_dlq_pages_refuse_a_live_queue(viewer_client, queues: Queues, view: str) -> None:
    queues.client.send_message(QueueUrl=queues.source_url, MessageBody="healthy")
    response = viewer_client.get(
        reverse(f"operations:{view}", args=["default", "orders"]), {"x": ""}
    )
    assert response.status_code == 404 and queues.depth(queues.source_url) == 1
    message = queues.client.receive_message(
        QueueUrl=queues.source_url, AttributeNames=["ApproximateReceiveCount"]
    )["Messages"][0]
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"  # only this receive


def test_an_admin_cannot_delete_from_a_live_queue(admin_client, queues: Queues) -> None:
    sent = queues.client.send_message(QueueUrl=queues.source_url, MessageBody="healthy")
    url = reverse("operations:dlq_delete", args=["default", "orders"])
    response = admin_client.post(
        url, {"message_ids": sent["MessageId"], "reason": "x", "confirm": "on"}
    )
    assert response.status_code == 404 and queues.depth(queues.source_url) == 1
    assert not Operation.objects.exists()


def test_dlq_check_failing_is_a_502_page(viewer_client, queues: Queues, monkeypatch) -> None:
    from operations.aws import sqs
    from operations.aws.errors import AwsError

    def denied(url: str) -> list[str]:
        raise AwsError("no", code="AccessDenied", operation="ListDeadLetterSourceQueues")

    monkeypatch.setattr(sqs, "dead_letter_source_queue_urls", denied)
    response = page(viewer_client)
    assert response.status_code == 502
    assert "sqs:ListDeadLetterSourceQueues" in response.content.decode()


def test_peek_records_loops_for_the_queue_page(viewer_client, queues: Queues) -> None:
    from operations import dlq

    op = Operation.objects.create(
        kind="redrive", target=queues.dlq_url, reason="r", requested_by_name="t", state="succeeded"
    )
    TouchedCorrelation.objects.create(operation=op, correlation_id="corr-5")
    queues.put_event(5)
    queues.put_event(6)
    page(viewer_client)
    record = dlq.last_peek(queues.dlq_url)
    assert record is not None and (record.examined, record.loops) == (2, [("corr-5", [op.pk])])


def test_each_event_offers_why_did_this_fail_with_its_exact_body(
    viewer_client, queues: Queues
) -> None:
    queues.put(json.dumps({"detail-type": "OrderPaid", "source": "s", "detail": {"x": "<b>"}}))
    queues.put("not json at all")
    html = page(viewer_client).content.decode()
    assert html.count('class="inline why-failed"') == 1
    assert f'action="{reverse("schema_check", args=["default"])}"' in html
    # The body goes back as sent (escaped in the attribute), for the validator to parse.
    assert "&quot;x&quot;: &quot;&lt;b&gt;&quot;" in html


def test_why_did_this_fail_from_the_dlq_page_lists_the_schema_errors(
    viewer_client, queues: Queues
) -> None:
    """The message's own body, as the page hands it on, validated against its schema
    (EventSchemas is stubbed: moto lacks it)."""
    import html as html_lib
    import re

    from botocore.stub import Stubber

    from infra.schemas import json_schema_text, schema_name
    from operations.aws import client as aws_client

    detail = {"correlationId": "c-1", "orderId": "o-1", "occurredAt": "2026-01-01T00:00:00Z"}
    event = {"source": "eventops.orders", "detail-type": "OrderPaid", "detail": detail}
    queues.put(json.dumps(event))  # no paymentId, amount or currency: why it failed
    found = re.search(r'name="body" value="([^"]*)"', page(viewer_client).content.decode())
    assert found is not None
    body = html_lib.unescape(found.group(1))
    assert json.loads(body) == event
    paid = schema_name("OrderPaid")
    with Stubber(aws_client.client("schemas")) as stub:
        stub.add_response("list_registries", {"Registries": [{"RegistryName": "events"}]})
        stub.add_response("list_schemas", {"Schemas": [{"SchemaName": paid}]})
        stub.add_response(
            "describe_schema",
            {"SchemaName": paid, "SchemaVersion": "1", "Content": json_schema_text("OrderPaid")},
        )
        response = viewer_client.post(reverse("schema_check", args=["default"]), {"body": body})
    assert response.status_code == 200
    assert "paymentId" in response.content.decode()


def test_export_carries_binary_attributes_as_base64_that_round_trip(
    viewer_client, queues: Queues
) -> None:
    import base64

    payload = bytes(range(256))
    queues.client.send_message(
        QueueUrl=queues.dlq_url,
        MessageBody="{}",
        MessageAttributes={
            "blob": {"DataType": "Binary", "BinaryValue": payload},
            "note": {"DataType": "String", "StringValue": "kept"},
        },
    )
    exported = json.loads(
        viewer_client.get(reverse("operations:dlq_export", args=["default", "orders-dlq"])).content
    )
    attributes = exported["messages"][0]["MessageAttributes"]
    assert base64.b64decode(attributes["blob"]["BinaryValue"]) == payload
    assert (attributes["blob"]["BinaryEncoding"], exported["binary_encoding"]) == ("base64",) * 2
    assert attributes["note"] == {"DataType": "String", "StringValue": "kept"}
