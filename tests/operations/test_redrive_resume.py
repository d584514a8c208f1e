"""A run that dies mid-pass, and the run that resumes it: per-message outcomes make every
message count once, keep the first run's moves, and stop what was sent from being sent
again. In process: the first run is stopped at the exact call (an exception no handler
catches, like the SIGKILL of tests/operations/test_redrive_worker.py), and the messages
it held are made visible again as their visibility timeout would.

Database-specific (multi-row upserts): CI runs it again on PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from operations import dlq
from operations import redrive as engine
from operations.aws import sqs
from operations.models import Operation, OperationMessage
from operations.redrive_ledger import Ledger
from tests.operations.redrive_world import Killed, drain, fill, fill_fifo, ids, make_queues, new_op

pytestmark = [pytest.mark.django_db, pytest.mark.integration, pytest.mark.usefixtures("pipelines")]


def die_at(monkeypatch: pytest.MonkeyPatch, name: str, call: int) -> None:
    """Make the ``call``-th call of ``sqs.<name>`` kill the run, before it reaches SQS
    (the calls after it, the next run's, go through)."""
    real = getattr(sqs, name)
    calls = Counter[str]()

    def maybe_die(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        if calls[name] == call:
            raise Killed(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(sqs, name, maybe_die)


def first_run_dies(op: Operation) -> None:
    token = op.claim()
    assert token is not None
    with pytest.raises(Killed):
        engine.Redrive(op, token, sleep=lambda s: None).run()


def resume(op: Operation, dlq_url: str, handles: list[str]) -> Operation:
    """The dead run's lease and its messages' hiding run out; a new worker takes over."""
    dlq.release(dlq_url, [sqs.SqsMessage(str(i), h, "", {}, {}) for i, h in enumerate(handles)])
    past = timezone.now() - timedelta(seconds=1)
    Operation.objects.filter(pk=op.pk).update(lease_expires_at=past)
    return engine.run_inline(Operation.objects.get(pk=op.pk), sleep=lambda s: None)


@pytest.mark.parametrize(
    ("where", "call"),
    [("delete_message_batch", 2), ("send_message_batch", 2)],
    ids=["between-send-and-delete", "between-receive-and-send"],
)
def test_a_resumed_pass_moves_each_message_once_and_counts_it_once(
    aws: None, monkeypatch: pytest.MonkeyPatch, handles: list[str], where: str, call: int
) -> None:
    client, source_url, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 30)
    op = new_op(dlq_url, engine.RedriveParams(destination_arn=source_arn, wait_seconds=0))
    die_at(monkeypatch, where, call)
    first_run_dies(op)
    done = resume(op, dlq_url, handles)
    arrived = ids(drain(client, source_url))
    assert sorted(arrived) == sorted(f"e-{i}" for i in range(30))  # each exactly once
    assert (done.state, done.moved, done.attempts) == ("succeeded", 30, 2)
    assert OperationMessage.objects.filter(operation=op, outcome="moved").count() == 30


@pytest.mark.parametrize(
    ("where", "call"),
    [("delete_message_batch", 2), ("send_message_batch", 3)],
    ids=["between-send-and-delete", "between-receive-and-send"],
)
def test_a_resumed_fifo_pass_keeps_every_group_in_order(
    aws: None, monkeypatch: pytest.MonkeyPatch, handles: list[str], where: str, call: int
) -> None:
    """With pipelines, sends of other groups were in flight when the run died: what they
    sent unrecorded is sent again with the same deduplication ID, which SQS drops."""
    client, source_url, source_arn, dlq_url = make_queues(fifo=True)
    fill_fifo(client, dlq_url, [(f"g{n % 12}", "OrderPaid") for n in range(60)])
    op = new_op(dlq_url, engine.RedriveParams(destination_arn=source_arn, wait_seconds=0))
    die_at(monkeypatch, where, call)
    first_run_dies(op)
    done = resume(op, dlq_url, handles)
    arrived = ids(drain(client, source_url))
    assert sorted(arrived) == sorted(f"g{n % 12}-{n}" for n in range(60))  # each once
    for group in range(12):
        in_group = [int(i.split("-")[1]) for i in arrived if i.startswith(f"g{group}-")]
        assert in_group == list(range(group, 60, 12)), group
    assert (done.state, done.moved, done.attempts) == ("succeeded", 60, 2)
    assert drain(client, dlq_url) == []


def test_what_was_sent_before_the_crash_is_deleted_not_sent_again(
    aws: None, monkeypatch: pytest.MonkeyPatch, handles: list[str]
) -> None:
    client, source_url, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 10)
    op = new_op(dlq_url, engine.RedriveParams(destination_arn=source_arn, wait_seconds=0))
    die_at(monkeypatch, "delete_message_batch", 1)
    first_run_dies(op)
    recorded = OperationMessage.objects.filter(operation=op).values_list("outcome", flat=True)
    assert Counter(recorded) == {"sent": 10}
    sends: list[int] = []
    monkeypatch.setattr(sqs, "send_message_batch", lambda url, entries: sends.append(len(entries)))
    done = resume(op, dlq_url, handles)
    assert (done.state, done.moved, sends) == ("succeeded", 10, [])
    assert len(drain(client, source_url)) == 10


def test_skipped_messages_count_once_across_runs(
    aws: None, monkeypatch: pytest.MonkeyPatch, handles: list[str]
) -> None:
    client, source_url, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 10, event_type="OrderShipped")
    fill(client, dlq_url, 10, event_type="OrderPaid")
    params = engine.RedriveParams(
        destination_arn=source_arn, wait_seconds=0, filters=dlq.Filters(event_type="OrderPaid")
    )
    op = new_op(dlq_url, params)
    die_at(monkeypatch, "delete_message_batch", 1)
    first_run_dies(op)
    done = resume(op, dlq_url, handles)
    assert (done.state, done.moved, done.skipped) == ("succeeded", 10, 10)
    assert len(drain(client, dlq_url)) == 10


def test_a_resumed_pass_retries_what_failed_and_counts_it_once(
    aws: None, monkeypatch: pytest.MonkeyPatch, handles: list[str]
) -> None:
    """The first run's refusal was transient in truth: the next run moves the message, and
    it counts as moved only."""
    client, source_url, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 5)
    op = new_op(dlq_url, engine.RedriveParams(destination_arn=source_arn, wait_seconds=0))
    OperationMessage.objects.bulk_create(
        OperationMessage(operation=op, message_id=m["MessageId"], outcome="failed", reason="x")
        for m in client.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=2, VisibilityTimeout=0
        )["Messages"]
    )
    done = engine.run_inline(op, sleep=lambda s: None)
    assert (done.state, done.moved, done.failed) == ("succeeded", 5, 0)


def test_outcomes_are_upserted_in_one_statement_per_chunk(django_assert_num_queries: Any) -> None:
    op = new_op("https://sqs/q/x-dlq", engine.RedriveParams())
    ledger = Ledger(op.pk)
    for i in range(200):
        ledger.note(f"m{i}", "sent")
    with django_assert_num_queries(2):  # 150 rows, then 50
        ledger.flush()
    for i in range(200):
        ledger.note(f"m{i}", "moved" if i % 2 else "failed", "refused by SQS: X")
    ledger.flush()
    rows = Counter(OperationMessage.objects.filter(operation=op).values_list("outcome", flat=True))
    assert rows == {"moved": 100, "failed": 100}


def test_a_sent_message_whose_delete_failed_is_counted_failed_with_its_reason(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, source_url, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 3)

    def refuse_deletes(url: str, receipt_handles: dict[str, str]) -> sqs.BatchResult:
        failed = [sqs.BatchFailure(k, "ReceiptHandleIsInvalid", "", True) for k in receipt_handles]
        return sqs.BatchResult([], failed)

    monkeypatch.setattr(sqs, "delete_message_batch", refuse_deletes)
    op = engine.run_inline(
        new_op(dlq_url, engine.RedriveParams(destination_arn=source_arn, wait_seconds=0)),
        sleep=lambda s: None,
    )
    assert (op.state, op.moved, op.failed) == ("failed", 0, 3)
    assert op.outcome["reasons"] == {
        "sent, but still in the DLQ: the delete failed (ReceiptHandleIsInvalid)": 3
    }
    assert (op.outcome["delete_failed"], len(drain(client, source_url))) == (3, 3)


def test_what_an_earlier_run_sent_and_deleted_is_recorded_moved_at_the_end(aws: None) -> None:
    """The dead run deleted a batch but died before writing its "moved" rows."""
    client, source_url, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 3)
    op = new_op(dlq_url, engine.RedriveParams(destination_arn=source_arn, wait_seconds=0))
    OperationMessage.objects.bulk_create(
        OperationMessage(operation=op, message_id=f"gone-{i}", outcome="sent") for i in range(4)
    )
    done = engine.run_inline(op, sleep=lambda s: None)
    recorded = OperationMessage.objects.filter(operation=op).values_list("outcome", flat=True)
    assert (done.state, done.moved, Counter(recorded)) == ("succeeded", 7, {"moved": 7})
