"""Notifications: an ended operation is announced to a webhook (a real local HTTP server)
and an SNS topic (moto); failures are retried, then logged and counted, never raised."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest

from operations import metrics, notifications
from operations.models import Operation

pytestmark = pytest.mark.django_db


class Receiver:
    def __init__(self, status: int) -> None:
        self.status = status
        self.bodies: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def webhook(settings: Any, aws: None) -> Iterator[Receiver]:
    """A local webhook receiver; AWS is moto (a DLQ operation's runbook is looked up)."""
    receiver = Receiver(200)
    settings.EVENTOPS_NOTIFY_WEBHOOKS = [receiver.url]
    settings.EVENTOPS_BASE_URL = "https://ops.example.com"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from dashboard.celery import app

    app.conf.task_always_eager = True
    yield receiver
    app.conf.task_always_eager = False
    receiver.server.shutdown()


@pytest.fixture(autouse=True)
def _no_retry_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notifications, "retry_delay", lambda retries: 0)


def running(**fields: Any) -> Operation:
    defaults: dict[str, Any] = {
        "kind": "redrive",
        "target": "https://sqs/orders-dlq",
        "target_label": "orders-dlq",
        "reason": "billing fixed",
        "requested_by_name": "alice",
        "state": "running",
    }
    return Operation.objects.create(**{**defaults, **fields})


def finish(op: Operation, django_capture_on_commit_callbacks: Any, **fields: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        op.finish(None, "succeeded", moved=40, total=40, **fields)


def test_an_ended_operation_posts_to_the_webhook(
    webhook: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    op = running(via="api", via_token="deploy-bot")
    finish(op, django_capture_on_commit_callbacks)
    (body,) = webhook.bodies
    assert (
        body["text"].startswith(":white_check_mark: DLQ redrive #") and "succeeded" in body["text"]
    )
    assert f"https://ops.example.com/env/default/operations/{op.pk}/" in json.dumps(body["blocks"])
    assert "Moved 40, failed 0, skipped 0 of 40" in body["text"] and "deploy-bot" in body["text"]


def test_a_cancelled_pending_operation_is_announced_too(
    webhook: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    op = running(state="pending")
    with django_capture_on_commit_callbacks(execute=True):
        op.request_cancel(by="bob", reason="wrong queue")
    assert "cancelled" in webhook.bodies[0]["text"]


def test_a_failing_webhook_is_retried_then_given_up_without_touching_the_operation(
    webhook: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    webhook.status = 500
    failed_before = metrics.NOTIFICATIONS.labels("webhook", "failed")._value.get()
    op = running()
    finish(op, django_capture_on_commit_callbacks)
    op.refresh_from_db()
    assert len(webhook.bodies) == notifications.MAX_RETRIES + 1 and op.state == "succeeded"
    assert metrics.NOTIFICATIONS.labels("webhook", "failed")._value.get() == failed_before + 1


def test_an_unreachable_webhook_never_raises(
    settings: Any, aws: None, django_capture_on_commit_callbacks: Any
) -> None:
    settings.EVENTOPS_NOTIFY_WEBHOOKS = ["http://127.0.0.1:9/nothing"]
    from dashboard.celery import app

    app.conf.task_always_eager = True
    try:
        op = running()
        finish(op, django_capture_on_commit_callbacks)
    finally:
        app.conf.task_always_eager = False
    op.refresh_from_db()
    assert op.state == "succeeded"


def test_sns_topic_gets_the_text(
    aws: None, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    topic = boto3.client("sns", region_name="us-east-1").create_topic(Name="ops")["TopicArn"]
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    boto3.client("sns", region_name="us-east-1").subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=arn
    )
    settings.EVENTOPS_NOTIFY_SNS_TOPIC_ARN = topic
    from dashboard.celery import app

    app.conf.task_always_eager = True
    try:
        finish(running(), django_capture_on_commit_callbacks)
    finally:
        app.conf.task_always_eager = False
    (received,) = sqs.receive_message(QueueUrl=url)["Messages"]
    envelope = json.loads(received["Body"])
    assert "orders-dlq succeeded" in envelope["Subject"] and "Moved 40" in envelope["Message"]


def test_no_destination_sends_nothing(
    settings: Any, django_capture_on_commit_callbacks: Any, monkeypatch
) -> None:
    settings.EVENTOPS_NOTIFY_WEBHOOKS = []
    sent: list[Any] = []
    monkeypatch.setattr(notifications.deliver, "delay", lambda *a: sent.append(a))
    finish(running(), django_capture_on_commit_callbacks)
    assert sent == []


class Group:
    title = "OrderPaid: KeyError 'amount'"
    environment = "default"
    count = 12
    pk = 3
    url = "/env/default/failures/3/"
    runbook = "https://runbooks.example.com/orders"


def test_a_failure_group_is_announced_with_its_runbook(webhook: Receiver) -> None:
    notifications.notify_failure_group(Group(), "regressed")
    (body,) = webhook.bodies
    assert "Failure group regressed: OrderPaid: KeyError 'amount'" in body["text"]
    assert "Runbook: https://runbooks.example.com/orders" in body["text"]


def test_slack_control_characters_are_escaped() -> None:
    note = notifications.message("t", ["<!channel> & co"], "")
    assert "&lt;!channel&gt; &amp; co" in note["blocks"][0]["text"]["text"]


def test_a_redrive_notification_carries_its_dlq_alarms_runbook(
    webhook: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="orders-dlq")
    boto3.client("cloudwatch", region_name="us-east-1").put_metric_alarm(
        AlarmName="orders-dlq-not-empty",
        AlarmDescription="Runbook: https://wiki.example/orders-dlq",
        MetricName="ApproximateNumberOfMessagesVisible",
        Namespace="AWS/SQS",
        Dimensions=[{"Name": "QueueName", "Value": "orders-dlq"}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )
    finish(running(), django_capture_on_commit_callbacks)
    assert "Runbook: https://wiki.example/orders-dlq" in webhook.bodies[0]["text"]
