"""Fixtures for the DLQ operation views: a source queue with a DLQ in moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from django.core.cache import cache


@dataclass
class Queues:
    client: Any
    source_url: str
    source_arn: str
    dlq_url: str
    dlq_name: str = "orders-dlq"

    def put(self, body: str, **attributes: str) -> str:
        """Send ``body`` straight into the DLQ (with String message attributes)."""
        extra = {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}
        kwargs: dict[str, Any] = {"QueueUrl": self.dlq_url, "MessageBody": body}
        if extra:
            kwargs["MessageAttributes"] = extra
        return str(self.client.send_message(**kwargs)["MessageId"])

    def put_event(self, i: int, event_type: str = "OrderPaid", **attributes: str) -> str:
        return self.put(event(i, event_type), **attributes)

    def depth(self, url: str) -> int:
        attrs = self.client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )


def event(i: int, event_type: str = "OrderPaid") -> str:
    detail = {
        "correlationId": f"corr-{i}",
        "orderId": f"o-{i}",
        "occurredAt": "2026-01-01T00:00:00Z",
    }
    return json.dumps({"id": f"e-{i}", "detail-type": event_type, "source": "s", "detail": detail})


@pytest.fixture
def queues(aws: None, settings: Any) -> Iterator[Queues]:
    """orders -> orders-dlq (RedrivePolicy). Peeks hide messages for 0 s in these tests, so
    a page view does not hide messages from the next request."""
    settings.EVENTOPS_PEEK_VISIBILITY_SECONDS = 0
    client = boto3.client("sqs", region_name="us-east-1")
    dlq_url = client.create_queue(QueueName="orders-dlq")["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
    source_url = client.create_queue(QueueName="orders", Attributes={"RedrivePolicy": policy})[
        "QueueUrl"
    ]
    source_arn = dlq_arn.replace("orders-dlq", "orders")
    yield Queues(client, source_url, source_arn, dlq_url)


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    """MD5 hashing for the personas (STYLE.md: fast tests)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    """Peeks leave loop records, export copies and cached source lists: none outlives a test."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def worker(django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Tasks the views enqueue run in this process (Celery's eager mode) once the
    request's transaction commits: ``with worker(): client.post(...)``."""
    from dashboard.celery import app

    monkeypatch.setattr(app.conf, "task_always_eager", True)
    monkeypatch.setattr(app.conf, "task_eager_propagates", True)
    return lambda: django_capture_on_commit_callbacks(execute=True)
