"""Queues in moto and helpers for the redrive engine tests.

Import them: ``from tests.operations.redrive_world import make_queues, fill, drain, run``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3

from operations import redrive as engine
from operations.aws import sqs
from operations.models import Operation


def make_queues(fifo: bool = False, name: str = "orders") -> tuple[Any, str, str, str]:
    """A source queue redriving to a DLQ: (client, source url, source arn, dlq url)."""
    client = boto3.client("sqs", region_name="us-east-1")
    suffix = ".fifo" if fifo else ""
    extra = {"FifoQueue": "true"} if fifo else {}
    dlq_url = client.create_queue(QueueName=f"{name}-dlq{suffix}", Attributes=extra)["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    source_url = client.create_queue(
        QueueName=f"{name}{suffix}", Attributes={**extra, "RedrivePolicy": policy}
    )["QueueUrl"]
    source_arn = client.get_queue_attributes(QueueUrl=source_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    return client, source_url, source_arn, dlq_url


def event_body(i: int, event_type: str = "OrderPaid") -> str:
    detail = {
        "correlationId": f"corr-{i}",
        "orderId": f"o-{i}",
        "occurredAt": "2026-01-01T00:00:00Z",
    }
    return json.dumps({"id": f"e-{i}", "detail-type": event_type, "source": "x", "detail": detail})


def fill(client: Any, dlq_url: str, count: int, **kwargs: Any) -> None:
    for i in range(count):
        client.send_message(QueueUrl=dlq_url, MessageBody=event_body(i, **kwargs))


def fill_fifo(client: Any, dlq_url: str, messages: list[tuple[str, str]]) -> None:
    """Send (group, event type) messages in this order; bodies say "<group>-<n>"."""
    for n, (group, event_type) in enumerate(messages):
        body = json.loads(event_body(n, event_type))
        body["id"] = f"{group}-{n}"
        client.send_message(
            QueueUrl=dlq_url,
            MessageBody=json.dumps(body),
            MessageGroupId=group,
            MessageDeduplicationId=f"d-{n}",
        )


def drain(client: Any, url: str) -> list[dict[str, Any]]:
    """Receive and delete every message of ``url``."""
    out: list[dict[str, Any]] = []
    while batch := client.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
        VisibilityTimeout=300,
    ).get("Messages", []):
        out.extend(batch)
        # Delete as it goes: a FIFO queue holds back a group while one of its messages is hidden.
        client.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
            ],
        )
    return out


def ids(messages: list[dict[str, Any]]) -> list[str]:
    """The event ids of drained messages, in the order received."""
    return [json.loads(m["Body"])["id"] for m in messages]


def new_op(dlq_url: str, params: engine.RedriveParams) -> Operation:
    return Operation.objects.create(
        kind=Operation.Kind.REDRIVE,
        target=dlq_url,
        parameters=params.to_parameters(),
        reason="test",
        requested_by_name="test",
    )


def run(dlq_url: str, **kwargs: Any) -> Operation:
    kwargs.setdefault("wait_seconds", 0)
    return engine.run_inline(new_op(dlq_url, engine.RedriveParams(**kwargs)), sleep=lambda s: None)


class Refuse:
    """Wraps ``sqs.send_message_batch``: entries whose body satisfies ``refused`` are refused
    by "SQS" (sender fault) and never reach the queue; the rest are really sent. Records
    what each call asked SQS to do."""

    def __init__(
        self, refused: Callable[[dict[str, Any]], bool], code: str = "InvalidParameterValue"
    ):
        self.real = sqs.send_message_batch
        self.refused = refused
        self.code = code
        self.calls: list[list[dict[str, Any]]] = []

    def __call__(self, url: str, entries: list[dict[str, Any]]) -> sqs.BatchResult:
        self.calls.append(entries)
        refused = [e for e in entries if self.refused(e)]
        sent = [e for e in entries if not self.refused(e)]
        result = self.real(url, sent) if sent else sqs.BatchResult([], [])
        failures = [sqs.BatchFailure(e["Id"], self.code, "refused", True) for e in refused]
        return sqs.BatchResult(result.succeeded, result.failed + failures, result.message_ids)

    def sent_bodies(self) -> list[str]:
        """Bodies SQS was asked to accept and did, in order."""
        return [
            json.loads(e["MessageBody"])["id"]
            for call in self.calls
            for e in call
            if not self.refused(e)
        ]


class Killed(BaseException):
    """The worker dies here (not an Exception: nothing in the engine handles it)."""
