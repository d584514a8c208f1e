"""The client-side redrive engine against moto: moves, filters, batching, failures."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine

from operations import dlq
from operations import redrive as engine
from operations.aws import sqs
from operations.models import Operation, OperationMessage, TouchedCorrelation
from tests.operations.redrive_world import drain, event_body, fill, make_queues, new_op, run

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("pipelines")]


def test_redrive_moves_every_message_to_its_destination(aws: None) -> None:
    client, source_url, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 25)
    op = run(dlq_url, destination_arn=source_arn)
    assert (op.state, op.moved, op.failed, op.skipped) == ("succeeded", 25, 0, 0)
    assert len({json.loads(m["Body"])["id"] for m in drain(client, source_url)}) == 25


def test_redrive_leaves_the_dlq_empty(aws: None) -> None:
    client, _, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 12)
    run(dlq_url, destination_arn=source_arn)
    assert drain(client, dlq_url) == []


def test_redrive_uses_dead_letter_queue_source_arn_first(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, source_url, source_arn, dlq_url = make_queues()
    other_url = client.create_queue(QueueName="other")["QueueUrl"]
    fill(client, dlq_url, 2)
    real = sqs.receive_messages

    # moto does not set DeadLetterQueueSourceArn: add it as SQS would.
    def with_source(url: str, **kwargs: Any) -> list[sqs.SqsMessage]:
        return [
            sqs.SqsMessage(
                m.message_id,
                m.receipt_handle,
                m.body,
                {**m.attributes, "DeadLetterQueueSourceArn": source_arn},
                m.message_attributes,
            )
            for m in real(url, **kwargs)
        ]

    monkeypatch.setattr(sqs, "receive_messages", with_source)
    other_arn = source_arn.replace(":orders", ":other")
    op = run(dlq_url, destination_arn=other_arn)
    assert op.moved == 2
    assert (len(drain(client, source_url)), len(drain(client, other_url))) == (2, 0)


def test_message_without_any_destination_stays_in_the_dlq(aws: None) -> None:
    client, _, _, dlq_url = make_queues()
    fill(client, dlq_url, 3)
    op = run(dlq_url)
    assert (op.state, op.moved, op.failed) == ("failed", 0, 3)
    assert op.outcome["reasons"] == {"no destination queue": 3}
    assert len(drain(client, dlq_url)) == 3


def test_filtered_redrive_moves_matches_and_releases_the_rest(aws: None) -> None:
    client, source_url, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 6, event_type="OrderPaid")
    fill(client, dlq_url, 4, event_type="OrderShipped")
    filters = dlq.Filters(event_type="OrderShipped")
    op = run(dlq_url, destination_arn=source_arn, filters=filters)
    assert (op.moved, op.skipped) == (4, 6)
    assert len(drain(client, dlq_url)) == 6  # released: visible again at once


def test_redrive_of_named_messages_moves_exactly_those_and_stops_early(aws: None) -> None:
    client, source_url, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 30)
    first = client.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10)["Messages"]
    client.change_message_visibility_batch(
        QueueUrl=dlq_url,
        Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(first)
        ],
    )
    wanted = frozenset(m["MessageId"] for m in first[:3])
    # One loop: the receives are counted (several pipelines receive at once).
    op = run(
        dlq_url,
        destination_arn=source_arn,
        filters=dlq.Filters(message_ids=wanted),
        concurrency=1,
    )
    assert op.moved == 3
    moved_bodies = {m["Body"] for m in drain(client, source_url)}
    assert moved_bodies == {m["Body"] for m in first[:3]}
    assert len(drain(client, dlq_url)) == 27
    # All three were in the first receives: the pass ended without reading the whole queue.
    assert op.progress["receives"] < 3


def test_max_messages_bounds_the_redrive(aws: None) -> None:
    client, source_url, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 15)
    op = run(dlq_url, destination_arn=source_arn, max_messages=7)
    assert op.moved == 7
    assert len(drain(client, dlq_url)) == 8


def test_redrive_preserves_message_attributes(aws: None) -> None:
    client, source_url, source_arn, dlq_url = make_queues()
    client.send_message(
        QueueUrl=dlq_url,
        MessageBody=event_body(1),
        MessageAttributes={"correlation_id": {"DataType": "String", "StringValue": "abc"}},
    )
    run(dlq_url, destination_arn=source_arn)
    (moved,) = drain(client, source_url)
    assert moved["MessageAttributes"]["correlation_id"]["StringValue"] == "abc"


def test_redrive_records_touched_correlation_ids(aws: None) -> None:
    client, _, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 3)
    op = run(dlq_url, destination_arn=source_arn)
    ids = set(
        TouchedCorrelation.objects.filter(operation=op).values_list("correlation_id", flat=True)
    )
    assert ids == {"corr-0", "corr-1", "corr-2"}


def test_fifo_dlq_is_redriven_with_group_ids_intact(aws: None) -> None:
    client, source_url, source_arn, dlq_url = make_queues(fifo=True)
    for i in range(12):
        client.send_message(
            QueueUrl=dlq_url,
            MessageBody=event_body(i),
            MessageGroupId=f"order-{i % 3}",
            MessageDeduplicationId=f"dedup-{i}",
        )
    op = run(dlq_url, destination_arn=source_arn)
    moved = drain(client, source_url)
    groups = {json.loads(m["Body"])["id"]: m["Attributes"]["MessageGroupId"] for m in moved}
    assert op.moved == 12
    assert groups == {f"e-{i}": f"order-{i % 3}" for i in range(12)}


def test_cancel_requested_stops_between_batches(aws: None) -> None:
    client, _, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 30)
    op = new_op(
        dlq_url, engine.RedriveParams(destination_arn=source_arn, wait_seconds=0, concurrency=1)
    )
    token = op.claim()
    assert token is not None
    redrive = engine.Redrive(op, token, sleep=lambda s: None)
    original = redrive._step

    def step_then_cancel() -> bool:
        more = original()
        op.request_cancel()
        return more

    redrive._step = step_then_cancel  # type: ignore[method-assign]
    assert redrive.run() == "cancelled"
    op.refresh_from_db()
    assert (op.state, op.moved) == ("cancelled", 10)


class FlakySend:
    """Wraps sqs.send_message_batch: fails some entries once, not by the sender's fault."""

    def __init__(self) -> None:
        self.real = sqs.send_message_batch
        self.failed_once: set[str] = set()

    def __call__(self, url: str, entries: list[dict[str, Any]]) -> sqs.BatchResult:
        flaky = [
            e
            for e in entries
            if e["Id"] in {"m1", "m4"} and e["MessageBody"] not in self.failed_once
        ]
        for entry in flaky:
            self.failed_once.add(entry["MessageBody"])
        result = self.real(url, [e for e in entries if e not in flaky])
        failures = [sqs.BatchFailure(e["Id"], "InternalError", "try again", False) for e in flaky]
        return sqs.BatchResult(result.succeeded, result.failed + failures)


def test_entries_that_failed_without_the_senders_fault_are_retried(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, source_url, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 30)
    monkeypatch.setattr(sqs, "send_message_batch", FlakySend())
    op = run(dlq_url, destination_arn=source_arn)
    ids = [json.loads(m["Body"])["id"] for m in drain(client, source_url)]
    assert (op.moved, op.failed, len(ids), len(set(ids))) == (30, 0, 30, 30)
    assert drain(client, dlq_url) == []


def test_entries_refused_by_sqs_count_as_failed_and_stay(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, source_url, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 10)
    real = sqs.send_message_batch

    def refuse_first(url: str, entries: list[dict[str, Any]]) -> sqs.BatchResult:
        result = real(url, entries[1:])
        refused = sqs.BatchFailure(entries[0]["Id"], "InvalidParameterValue", "bad", True)
        return sqs.BatchResult(result.succeeded, [*result.failed, refused])

    monkeypatch.setattr(sqs, "send_message_batch", refuse_first)
    op = run(dlq_url, destination_arn=source_arn)
    assert (op.state, op.moved, op.failed) == ("partial", 9, 1)
    assert op.outcome["reasons"] == {"refused by SQS: InvalidParameterValue": 1}
    assert len(drain(client, dlq_url)) == 1


def test_only_sent_entries_are_deleted(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    client, _, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 10)
    deleted: list[int] = []
    real_delete = sqs.delete_message_batch

    def send_half(url: str, entries: list[dict[str, Any]]) -> sqs.BatchResult:
        refused = [
            sqs.BatchFailure(e["Id"], "InvalidParameterValue", "", True) for e in entries[5:]
        ]
        return sqs.BatchResult([e["Id"] for e in entries[:5]], refused)

    def count_delete(url: str, handles: dict[str, str]) -> sqs.BatchResult:
        deleted.append(len(handles))
        return real_delete(url, handles)

    monkeypatch.setattr(sqs, "send_message_batch", send_half)
    monkeypatch.setattr(sqs, "delete_message_batch", count_delete)
    run(dlq_url, destination_arn=source_arn)
    assert deleted == [5]
    assert len(drain(client, dlq_url)) == 5


def test_rate_limit_sleeps_between_batches(aws: None) -> None:
    client, _, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 20)
    op = new_op(
        dlq_url,
        engine.RedriveParams(destination_arn=source_arn, rate=5, wait_seconds=0, concurrency=1),
    )
    token = op.claim()
    assert token is not None
    slept: list[float] = []
    engine.Redrive(op, token, sleep=slept.append, clock=lambda: 0.0).run()
    # The clock stands still, so each wait is the whole debt: 10/5 s, then 20/5 s, slept a
    # second at a time (a cancel or a new rate is seen within a second).
    assert (sum(slept), max(slept)) == (6.0, 1.0)


def test_task_runs_the_operation(aws: None) -> None:
    from operations import tasks

    client, _, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 5)
    op = new_op(dlq_url, engine.RedriveParams(destination_arn=source_arn, wait_seconds=0))
    tasks.redrive(op.pk)
    op.refresh_from_db()
    assert (op.state, op.moved, op.attempts) == ("succeeded", 5, 1)


def test_task_copy_for_a_leased_operation_checks_again_later(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from operations import tasks

    op = new_op("https://sqs/q/x-dlq", engine.RedriveParams())
    op.claim(lease_seconds=30)
    countdowns: list[int] = []

    def retry(countdown: int) -> Exception:
        countdowns.append(countdown)
        return RuntimeError("retry")

    monkeypatch.setattr(tasks.redrive, "retry", retry)
    with pytest.raises(RuntimeError, match="retry"):
        tasks.redrive(op.pk)
    assert 25 <= countdowns[0] <= 31


def test_task_resumes_an_operation_whose_worker_died(aws: None) -> None:
    from django.utils import timezone

    from operations import tasks

    client, source_url, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 8)
    op = new_op(dlq_url, engine.RedriveParams(destination_arn=source_arn, wait_seconds=0))
    op.claim()
    # The worker that died had moved 10 messages and recorded them.
    OperationMessage.objects.bulk_create(
        OperationMessage(operation=op, message_id=f"gone-{i}", outcome="moved") for i in range(10)
    )
    Operation.objects.filter(pk=op.pk).update(moved=10, total=18, lease_expires_at=timezone.now())
    tasks.redrive(op.pk)
    op.refresh_from_db()
    assert (op.state, op.moved, op.attempts) == ("succeeded", 18, 2)
    assert OperationMessage.objects.filter(operation=op, outcome="moved").count() == 18


def test_task_ignores_a_finished_operation(aws: None) -> None:
    from operations import tasks

    op = new_op("https://sqs/q/x-dlq", engine.RedriveParams())
    op.request_cancel()
    tasks.redrive(op.pk)
    op.refresh_from_db()
    assert (op.state, op.attempts) == ("cancelled", 0)


def test_copies_that_fail_again_are_not_moved_twice_in_one_pass(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A consumer that fails at once sends each redriven copy straight back to the DLQ.
    The copy is new to the pass (a new message id); its SentTimestamp says this pass sent it."""
    client, _, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 15)
    real_send = sqs.send_message_batch
    calls = []

    def fail_at_once(url: str, entries: list[dict[str, Any]]) -> Any:
        calls.append(url)
        if len(calls) > 20:
            raise AssertionError("the redrive keeps moving its own copies")
        return real_send(dlq_url, entries)  # straight back into the DLQ

    monkeypatch.setattr(sqs, "send_message_batch", fail_at_once)
    op = run(dlq_url, destination_arn=source_arn)
    assert (op.state, op.moved, op.progress["returned"]) == ("succeeded", 15, 15)
    assert (op.skipped, op.outcome["returned"]) == (0, 15)  # counted apart, not as skipped
    assert len(calls) == 2
    assert len(drain(client, dlq_url)) == 15  # the returned copies stay for someone to look at


def within_this_millisecond() -> datetime:
    """A frozen instant inside the current millisecond (not a fixed date): the queues are
    read again after the frozen block, and moto drops messages past their retention."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000 + 500)


def test_messages_sent_in_the_millisecond_the_pass_began_are_moved(aws: None) -> None:
    """SentTimestamp counts milliseconds: a message sent in the same millisecond as the start
    is one from before the pass, not a returned copy (this used to strand it, now and then)."""
    client, source_url, source_arn, dlq_url = make_queues()
    with time_machine.travel(within_this_millisecond(), tick=False):
        fill(client, dlq_url, 12)
        op = run(dlq_url, destination_arn=source_arn)
    assert (op.state, op.moved, op.progress["returned"]) == ("succeeded", 12, 0)
    assert len(drain(client, source_url)) == 12


def test_copies_are_known_by_their_message_id_even_within_the_same_millisecond(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _, source_arn, dlq_url = make_queues()
    real_send = sqs.send_message_batch
    monkeypatch.setattr(sqs, "send_message_batch", lambda url, e: real_send(dlq_url, e))
    with time_machine.travel(within_this_millisecond(), tick=False):
        fill(client, dlq_url, 15)
        # One loop: with pipelines a receive may bring a copy back before its send's answer
        # names it (see redrive_pipelines: only a copy of the pass's very first millisecond).
        op = run(dlq_url, destination_arn=source_arn, concurrency=1)
    assert (op.state, op.moved, op.progress["returned"]) == ("succeeded", 15, 15)
    assert len(drain(client, dlq_url)) == 15


def test_skipped_messages_that_reappear_do_not_end_the_pass_early(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long pass outlives the hiding of the messages it skipped: when they come back
    first, the pass hides them again and reads on to the ones it has not seen."""
    client, source_url, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 20, event_type="OrderShipped")
    fill(client, dlq_url, 10, event_type="OrderPaid")
    real_receive = sqs.receive_messages
    received: list[sqs.SqsMessage] = []

    def lapse_once(url: str, **kwargs: Any) -> list[sqs.SqsMessage]:
        if len(received) == 10:  # the first batch's hiding lapses before the second receive
            handles = {f"x{i}": m.receipt_handle for i, m in enumerate(received)}
            sqs.change_visibility_batch(url, handles, 0)
        batch = real_receive(url, **kwargs)
        received.extend(batch)
        return batch

    monkeypatch.setattr(sqs, "receive_messages", lapse_once)
    op = run(dlq_url, destination_arn=source_arn, filters=dlq.Filters(event_type="OrderPaid"))
    assert (op.moved, op.skipped) == (10, 20)
    assert len(drain(client, source_url)) == 10
    assert len(drain(client, dlq_url)) == 20


def test_a_resumed_redrive_counts_from_the_recorded_outcomes(aws: None) -> None:
    """Counters come from the rows of every run, not from the row's last report."""
    op = new_op("https://sqs/q/x-dlq", engine.RedriveParams(wait_seconds=0))
    outcomes = ["moved"] * 3 + ["sent"] * 2 + ["not_matching"] * 4 + ["returned"] * 5
    OperationMessage.objects.bulk_create(
        OperationMessage(operation=op, message_id=f"m{i}", outcome=o)
        for i, o in enumerate(outcomes)
    )
    Operation.objects.filter(pk=op.pk).update(moved=99, skipped=99)
    op.refresh_from_db()
    token = op.claim()
    assert token is not None
    fields = engine.Redrive(op, token)._fields()
    assert (fields["moved"], fields["skipped"], fields["progress"]["returned"]) == (5, 4, 5)


def test_a_crash_of_the_task_after_some_moves_ends_partial_not_failed(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from operations import tasks

    client, _, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 30)
    real = sqs.receive_messages
    calls: list[int] = []

    def third_receive_crashes(url: str, **kwargs: Any) -> list[sqs.SqsMessage]:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("a bug")
        return real(url, **kwargs)

    monkeypatch.setattr(sqs, "receive_messages", third_receive_crashes)
    op = new_op(
        dlq_url, engine.RedriveParams(destination_arn=source_arn, wait_seconds=0, concurrency=1)
    )
    with pytest.raises(RuntimeError):
        tasks.redrive(op.pk)
    op.refresh_from_db()
    assert (op.state, op.moved, op.error) == ("partial", 20, "RuntimeError: a bug")
