"""Delete and edit-and-resend as worker operations: honest outcomes, resumable, audited."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from operations import dlq_actions
from operations.aws import sqs
from operations.models import Operation

pytestmark = pytest.mark.django_db

TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


@pytest.fixture
def dlq(aws: None, settings: Any) -> dict[str, Any]:
    """orders -> orders-dlq, and a FIFO pair; peeks hide nothing between steps."""
    settings.EVENTOPS_PEEK_VISIBILITY_SECONDS = 0
    client = boto3.client("sqs", region_name="us-east-1")
    urls = {}
    for suffix, extra in (("", {}), (".fifo", {"FifoQueue": "true"})):
        dlq_url = client.create_queue(QueueName=f"orders-dlq{suffix}", Attributes=extra)["QueueUrl"]
        arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3})
        source = client.create_queue(
            QueueName=f"orders{suffix}", Attributes={"RedrivePolicy": policy, **extra}
        )["QueueUrl"]
        urls[f"dlq{suffix}"], urls[f"source{suffix}"] = dlq_url, source
        urls[f"source_arn{suffix}"] = arn.replace("orders-dlq", "orders")
    return {"client": client, **urls}


def put(dlq: dict[str, Any], body: str = '{"n": 1}', fifo: bool = False, **attrs: Any) -> str:
    kwargs: dict[str, Any] = {"MessageBody": body}
    if attrs:
        kwargs["MessageAttributes"] = attrs
    if fifo:
        kwargs.update(MessageGroupId="g-1", MessageDeduplicationId="same-business-key")
    kwargs["MessageSystemAttributes"] = {
        "AWSTraceHeader": {"DataType": "String", "StringValue": TRACE}
    }
    url = dlq["dlq.fifo"] if fifo else dlq["dlq"]
    return str(dlq["client"].send_message(QueueUrl=url, **kwargs)["MessageId"])


def received(dlq: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return (
        dlq["client"]
        .receive_message(
            QueueUrl=dlq[key],
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            VisibilityTimeout=0,
        )
        .get("Messages", [])
    )


def actor() -> dlq_actions.Actor:
    return dlq_actions.Actor("poison", None, "oncall")


def run_edit(dlq: dict[str, Any], message_id: str, body: str, fifo: bool = False) -> Operation:
    url = dlq["dlq.fifo"] if fifo else dlq["dlq"]
    fallback = dlq["source_arn.fifo"] if fifo else dlq["source_arn"]
    op = dlq_actions.start_edit_resend(url, message_id, body, actor(), fallback_arn=fallback)
    dlq_actions.run_edit_resend(op, op.claim())
    op.refresh_from_db()
    return op


def test_the_edited_copy_keeps_attributes_and_trace_and_names_the_operation(dlq) -> None:
    message_id = put(dlq, correlation_id={"DataType": "String", "StringValue": "corr-1"})
    op = run_edit(dlq, message_id, '{"n": 2}')
    (copy,) = received(dlq, "source")
    assert op.state == "succeeded" and json.loads(copy["Body"]) == {"n": 2}
    assert copy["MessageAttributes"]["correlation_id"]["StringValue"] == "corr-1"
    assert copy["MessageAttributes"]["eventops_operation"]["StringValue"] == str(op.pk)
    assert copy["Attributes"]["AWSTraceHeader"] == TRACE and received(dlq, "dlq") == []


def test_a_fifo_copy_keeps_its_group_with_a_fresh_deduplication_id(dlq) -> None:
    message_id = put(dlq, fifo=True)
    op = run_edit(dlq, message_id, '{"n": 3}', fifo=True)
    (copy,) = received(dlq, "source.fifo")
    assert copy["Attributes"]["MessageGroupId"] == "g-1"
    assert copy["Attributes"]["MessageDeduplicationId"] == f"edit-{op.pk}-{message_id}"


def test_ten_attributes_are_kept_whole_without_the_marker(dlq) -> None:
    attrs = {f"a{i}": {"DataType": "String", "StringValue": str(i)} for i in range(10)}
    op = run_edit(dlq, put(dlq, **attrs), '{"n": 4}')
    (copy,) = received(dlq, "source")
    assert sorted(copy["MessageAttributes"]) == sorted(attrs) and op.progress["marked"] is False


@pytest.mark.parametrize("how", ["refused", "error"])
def test_a_failed_delete_of_the_original_is_partial_never_succeeded(
    dlq, monkeypatch, how: str
) -> None:
    """The edited copy went out, but the poison original is still in the DLQ."""
    from operations.aws.errors import AwsError

    def delete(url: str, handles: dict[str, str]) -> sqs.BatchResult:
        if how == "error":
            raise AwsError("denied", code="AccessDenied", operation="DeleteMessageBatch")
        failure = sqs.BatchFailure("original", "ReceiptHandleIsInvalid", "stale", True)
        return sqs.BatchResult([], [failure])

    monkeypatch.setattr(sqs, "delete_message_batch", delete)
    op = run_edit(dlq, put(dlq), '{"n": 5}')
    assert (op.state, op.moved) == ("partial", 1)
    assert "still in the DLQ" in op.error and len(received(dlq, "dlq")) == 1
    (reason,) = op.outcome["reasons"]
    assert reason.startswith("original not deleted from the DLQ")


def test_a_resumed_edit_whose_copy_was_sent_only_deletes_the_original(dlq, monkeypatch) -> None:
    message_id = put(dlq)
    op = dlq_actions.start_edit_resend(dlq["dlq"], message_id, '{"n": 6}', actor())
    token = op.claim()
    op.report(token, progress={"sent_message_id": "m-1", "destination": dlq["source"]})
    monkeypatch.setattr(sqs, "send_message", lambda url, entry: pytest.fail("sent twice"))
    dlq_actions.run_edit_resend(op, token)
    op.refresh_from_db()
    assert op.state == "succeeded" and received(dlq, "dlq") == []


def run_delete(dlq: dict[str, Any], ids: set[str]) -> Operation:
    op = dlq_actions.start_delete(dlq["dlq"], ids, actor())
    dlq_actions.run_delete(op, op.claim())
    op.refresh_from_db()
    return op


def test_deleting_some_found_and_some_gone_is_partial_with_the_reason(dlq) -> None:
    present = put(dlq)
    op = run_delete(dlq, {present, "00000000-0000-0000-0000-000000000000"})
    assert (op.state, op.moved, op.failed) == ("partial", 1, 1)
    assert op.outcome["reasons"] == {"not found in the DLQ (searched within bounded receives)": 1}


def test_deleting_nothing_found_fails(dlq) -> None:
    op = run_delete(dlq, {"00000000-0000-0000-0000-000000000000"})
    assert (op.state, op.moved) == ("failed", 0)


def test_deletes_sqs_refused_are_counted_by_code_and_released(dlq, monkeypatch) -> None:
    present = put(dlq)

    def refuse(url: str, handles: dict[str, str]) -> sqs.BatchResult:
        return sqs.BatchResult(
            [], [sqs.BatchFailure(k, "InternalError", "", False) for k in handles]
        )

    monkeypatch.setattr(sqs, "delete_message_batch", refuse)
    op = run_delete(dlq, {present})
    assert op.state == "failed" and op.outcome["reasons"] == {
        "delete refused by SQS: InternalError": 1
    }
    assert len(received(dlq, "dlq")) == 1


def test_a_resumed_delete_counts_what_the_first_run_deleted(dlq) -> None:
    kept, gone = put(dlq), "deleted-by-the-first-run"
    op = dlq_actions.start_delete(dlq["dlq"], {kept, gone}, actor())
    token = op.claim()
    op.report(token, progress={"deleted": [{"MessageId": gone, "CorrelationId": ""}]})
    dlq_actions.run_delete(op, token)
    op.refresh_from_db()
    assert (op.state, op.moved) == ("succeeded", 2) and received(dlq, "dlq") == []
