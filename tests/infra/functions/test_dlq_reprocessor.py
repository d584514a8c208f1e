"""The DLQ reprocessor moves messages back to their source and never loses one."""

from __future__ import annotations

import json

import pytest

from infra.functions.config import new_client
from infra.functions.dlq_reprocessor import handler, reprocess


def _queue(sqs, name: str, **attributes: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def _dead_letter(sqs, count: int, fifo: bool = False) -> tuple[str, str]:
    """A source queue whose ``count`` messages were moved to its DLQ; returns (source, DLQ)."""
    suffix = ".fifo" if fifo else ""
    extra = {"FifoQueue": "true"} if fifo else {}
    dlq, dlq_arn = _queue(sqs, f"orders-dlq{suffix}", **extra)
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    source, _ = _queue(sqs, f"orders{suffix}", RedrivePolicy=policy, **extra)
    for index in range(count):
        fifo_ids = {"MessageGroupId": "g-1", "MessageDeduplicationId": f"d-{index}"} if fifo else {}
        sqs.send_message(
            QueueUrl=source,
            MessageBody=json.dumps({"n": index}),
            MessageAttributes={
                "correlation_id": {"DataType": "String", "StringValue": f"corr-{index}"}
            },
            **fifo_ids,
        )
    # A message received once (maxReceiveCount 1) moves to the DLQ on its next receive.
    for _ in range(2 * count + 2):
        sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10, VisibilityTimeout=0)
        if _depth(sqs, dlq) == count:
            return source, dlq
    raise AssertionError("messages did not reach the DLQ")


def _depth(sqs, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def _messages(sqs, url: str) -> list[dict]:
    found = []
    while batch := sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
        VisibilityTimeout=30,
    ).get("Messages"):
        found.extend(batch)
    return found


@pytest.fixture
def sqs(aws):
    return new_client("sqs")


def test_messages_move_back_to_their_source_with_their_attributes(sqs):
    source, dlq = _dead_letter(sqs, 3)

    counts = reprocess(dlq, wait_seconds=0, sqs=sqs)

    moved = _messages(sqs, source)
    assert counts == {"received": 3, "moved": 3, "failed": 0, "skipped": 0, "delete_failed": 0}
    assert sorted(m["MessageAttributes"]["correlation_id"]["StringValue"] for m in moved) == [
        "corr-0",
        "corr-1",
        "corr-2",
    ]


def test_dlq_is_empty_after_a_full_reprocess(sqs):
    source, dlq = _dead_letter(sqs, 12)

    counts = reprocess(dlq, wait_seconds=0, sqs=sqs)

    assert counts["moved"] == 12
    assert _messages(sqs, dlq) == []


def test_message_whose_send_failed_stays_in_the_dlq(sqs, monkeypatch):
    source, dlq = _dead_letter(sqs, 3)
    real_send = sqs.send_message_batch

    def first_entry_fails(QueueUrl, Entries):  # noqa: N803 (boto3 parameter names)
        response = real_send(QueueUrl=QueueUrl, Entries=Entries[1:])
        failed = {"Id": Entries[0]["Id"], "SenderFault": False, "Code": "InternalError"}
        return {**response, "Failed": [*response.get("Failed", []), failed]}

    monkeypatch.setattr(sqs, "send_message_batch", first_entry_fails)

    counts = reprocess(dlq, wait_seconds=0, sqs=sqs)

    assert (counts["moved"], counts["failed"]) == (2, 1)
    assert len(_messages(sqs, dlq)) == 1 and len(_messages(sqs, source)) == 2


def test_max_messages_limits_one_run(sqs):
    source, dlq = _dead_letter(sqs, 5)

    counts = reprocess(dlq, max_messages=2, wait_seconds=0, sqs=sqs)

    assert counts["moved"] == 2
    assert len(_messages(sqs, dlq)) == 3


def test_fifo_messages_keep_their_group_id(sqs):
    source, dlq = _dead_letter(sqs, 2, fifo=True)

    counts = reprocess(dlq, wait_seconds=0, sqs=sqs)

    groups = [m["Attributes"]["MessageGroupId"] for m in _messages(sqs, source)]
    assert counts["moved"] == 2
    assert groups == ["g-1", "g-1"]


def test_handler_needs_a_dlq_url(aws):
    with pytest.raises(ValueError, match="dlq_url"):
        handler({}, None)
