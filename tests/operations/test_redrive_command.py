"""``manage.py redrive``: same Operation path as the UI, --wait inline, refuses without --yes."""

from __future__ import annotations

import getpass
import json
from io import StringIO

import boto3
import pytest
from django.core.management import CommandError, call_command

from operations.models import Operation

pytestmark = pytest.mark.django_db


@pytest.fixture
def dlq_url(aws: None) -> str:
    client = boto3.client("sqs", region_name="us-east-1")
    url = client.create_queue(QueueName="orders-dlq")["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3})
    client.create_queue(QueueName="orders", Attributes={"RedrivePolicy": policy})
    for i in range(12):
        kind = "OrderPaid" if i % 3 else "OrderShipped"
        body = {"detail-type": kind, "detail": {"correlationId": f"c-{i}"}}
        client.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    return str(url)


def redrive(*args: str) -> str:
    out = StringIO()
    call_command("redrive", *args, stdout=out)
    return out.getvalue()


def test_wait_runs_inline_and_prints_the_counts(dlq_url: str) -> None:
    output = redrive("orders-dlq", "--yes", "--wait", "--event-type", "OrderPaid")
    assert output.splitlines()[-1] == "moved=8 failed=0 skipped=4"


def test_it_records_the_same_operation_as_the_ui(dlq_url: str) -> None:
    redrive(dlq_url, "--yes", "--wait", "--max", "3", "--reason", "after the fix")
    op = Operation.objects.get()
    assert (op.kind, op.target, op.reason, op.moved) == ("redrive", dlq_url, "after the fix", 3)
    assert op.requested_by_name == f"cli:{getpass.getuser()}"


def test_without_yes_it_refuses(dlq_url: str) -> None:
    with pytest.raises(CommandError, match="--yes"):
        redrive("orders-dlq")
    assert not Operation.objects.exists()


def test_dry_run_previews_without_moving(dlq_url: str) -> None:
    output = redrive("orders-dlq", "--dry-run", "--event-type", "OrderShipped")
    assert output.startswith("4 of 12 examined messages match")
    assert not Operation.objects.exists()


def test_without_wait_it_queues_the_task(
    dlq_url: str, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:
    from operations import tasks

    queued: list[int] = []
    monkeypatch.setattr(tasks.redrive, "apply_async", lambda args, **kw: queued.append(args[0]))
    with django_capture_on_commit_callbacks(execute=True):
        output = redrive("orders-dlq", "--yes")
    assert queued == [Operation.objects.get().pk] and "queued" in output


def test_busy_dlq_is_refused_clearly(dlq_url: str) -> None:
    running = Operation.objects.create(
        kind="redrive", target=dlq_url, reason="r", requested_by_name="x"
    )
    with pytest.raises(CommandError, match=f"already active .*#{running.pk}"):
        redrive("orders-dlq", "--yes", "--wait")


def test_unknown_queue_is_a_clear_error(dlq_url: str) -> None:
    with pytest.raises(CommandError, match="GetQueueUrl"):
        redrive("no-such-queue", "--yes", "--wait")


def test_a_url_spelled_differently_is_stored_as_sqs_spells_it(dlq_url: str) -> None:
    """The one-active-operation constraint compares targets: one DLQ, one spelling."""
    path = dlq_url.split("://", 1)[1].split("/", 1)[1]
    other_spelling = f"https://queue.amazonaws.com/{path}"  # the legacy endpoint
    assert other_spelling != dlq_url
    redrive(other_spelling, "--yes", "--wait", "--max", "1")
    assert Operation.objects.get().target == dlq_url
