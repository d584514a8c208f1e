"""Nothing stuck: a start whose task the broker refused fails its row; the sweeper
re-enqueues pending rows nobody took and resumes running rows whose worker died."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from operations import enqueue, sweep
from operations.models import Operation

pytestmark = pytest.mark.django_db

KINDS_AND_TASKS = [
    ("redrive", "operations.redrive"),
    ("native_redrive", "operations.redrive"),
    ("replay", "operations.replay"),
    ("republish", "operations.republish"),
    ("delete_messages", "operations.delete_messages"),
    ("edit_resend", "operations.edit_resend"),
]


def make(
    kind: str = "redrive", target: str = "https://sqs/q/orders-dlq", **fields: Any
) -> Operation:
    return Operation.objects.create(
        kind=kind, target=target, reason="r", requested_by_name="oncall", **fields
    )


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, dict[str, Any]]]:
    """What reaches the broker: (task name, operation id, options)."""
    calls: list[tuple[str, int, dict[str, Any]]] = []
    for _kind, name in KINDS_AND_TASKS:
        task = enqueue.task_for(_kind)

        def publish(args: tuple[int], _name: str = name, **options: Any) -> None:
            calls.append((_name, args[0], options))

        monkeypatch.setattr(task, "apply_async", publish)
    return calls


@pytest.fixture
def broker_down(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("[Errno 111] Connection refused")

    for kind, _name in KINDS_AND_TASKS:
        monkeypatch.setattr(enqueue.task_for(kind), "apply_async", refuse)


@pytest.mark.django_db(transaction=True)
def test_a_refused_enqueue_fails_the_row_so_it_locks_nothing(broker_down) -> None:
    op = make()
    with pytest.raises(enqueue.QueueUnavailable, match="unreachable"):
        enqueue.enqueue(op)
    op.refresh_from_db()
    assert op.state == "failed" and "task queue is unreachable" in op.error
    make()  # the DLQ is free for the next attempt


def test_inside_a_transaction_the_task_is_sent_on_commit(sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        op = make()
        enqueue.enqueue(op)
        assert sent == []
    assert len(callbacks) == 1 and sent[0][:2] == ("operations.redrive", op.pk)


def test_a_refused_enqueue_on_commit_still_fails_the_row(
    broker_down, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        op = make()
        enqueue.enqueue(op)
    op.refresh_from_db()
    assert op.state == "failed"


def later(minutes: float = 2) -> Any:
    return timezone.now() + timedelta(minutes=minutes)


def test_sweep_re_enqueues_pending_rows_older_than_a_minute_only(sent) -> None:
    old = make()
    young = make(target="https://sqs/q/other-dlq")
    Operation.objects.filter(pk=young.pk).update(updated_at=later(1.5))
    report = sweep.run(now=later(2))
    assert report.requeued == [old.pk] and [c[1] for c in sent] == [old.pk]
    assert sent[0][2]["expires"] == 5 * 60


def test_a_re_enqueued_row_waits_another_minute_before_the_next_try(sent) -> None:
    make()
    sweep.run(now=later(2))
    assert sweep.run(now=later(2.5)).requeued == []
    assert len(sweep.run(now=later(3.5)).requeued) == 1


@pytest.mark.parametrize(("kind", "task"), KINDS_AND_TASKS)
def test_sweep_resumes_a_running_row_whose_lease_expired_with_its_kinds_task(
    sent, kind: str, task: str
) -> None:
    op = make(kind=kind)
    op.claim()
    report = sweep.run(now=later(3))
    assert report.resumed == [op.pk] and sent[0][:2] == (task, op.pk)


def test_sweep_leaves_live_and_finished_rows_alone(sent) -> None:
    live = make()
    live.claim(lease_seconds=600)
    done = make(target="https://sqs/q/done-dlq")
    done.claim()
    done.finish(None, Operation.State.SUCCEEDED)
    report = sweep.run(now=later(3))
    assert (report.requeued, report.resumed, sent) == ([], [], [])


def test_a_sweep_the_broker_refuses_leaves_rows_for_the_next_one(broker_down) -> None:
    op = make()
    report = sweep.run(now=later(2))
    op.refresh_from_db()
    assert report.unsent == [op.pk] and op.state == "pending"


def test_a_resumed_delete_finishes_in_the_worker(aws, settings, monkeypatch) -> None:
    """End to end: its worker died; the sweep's copy of the task claims and finishes it."""
    import boto3

    from dashboard.celery import app

    settings.EVENTOPS_PEEK_VISIBILITY_SECONDS = 0
    client = boto3.client("sqs", region_name="us-east-1")
    url = client.create_queue(QueueName="orders-dlq")["QueueUrl"]
    message_id = client.send_message(QueueUrl=url, MessageBody="{}")["MessageId"]
    op = make(kind="delete_messages", target=url, parameters={"message_ids": [message_id]})
    op.claim()
    Operation.objects.filter(pk=op.pk).update(lease_expires_at=timezone.now())
    monkeypatch.setattr(app.conf, "task_always_eager", True)
    sweep.run(now=later(1))
    op.refresh_from_db()
    assert (op.state, op.moved, op.attempts) == ("succeeded", 1, 2)


def test_beat_runs_the_sweep_every_configured_interval(settings) -> None:
    from dashboard.celery import app

    entry = app.conf.beat_schedule["operations-sweep"]
    assert entry["task"] == "operations.sweep"
    assert entry["schedule"] == settings.EVENTOPS_SWEEP_SECONDS == 60


def test_the_command_sweeps_once_for_cron(sent, capsys) -> None:
    op = make()
    Operation.objects.filter(pk=op.pk).update(updated_at=timezone.now() - timedelta(minutes=2))
    call_command("operations", "sweep")
    assert "re-enqueued 1 pending" in capsys.readouterr().out and sent[0][1] == op.pk


def test_the_command_cancels_with_a_reason_and_lists_who_asked(capsys) -> None:
    op = make()
    op.claim()
    call_command("operations", "cancel", str(op.pk), "--reason", "wrong queue")
    call_command("operations", "list", "--active")
    out = capsys.readouterr().out
    assert "Cancellation requested" in out and ": wrong queue]" in out


def test_the_command_says_when_there_is_nothing_to_cancel() -> None:
    with pytest.raises(CommandError, match="No operation") as nothing:
        call_command("operations", "cancel", "404", "--reason", "x")
    assert nothing.value.returncode == 2


def test_read_only_mode_refuses_the_cancel_command(settings) -> None:
    settings.EVENTOPS_READ_ONLY = True
    op = make()
    op.claim()
    with pytest.raises(CommandError, match="read-only mode") as refused:
        call_command("operations", "cancel", str(op.pk), "--reason", "wrong queue")
    op.refresh_from_db()
    assert refused.value.returncode == 2 and not op.cancel_requested
