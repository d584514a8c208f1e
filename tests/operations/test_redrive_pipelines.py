"""Several pipelines in one redrive (operations/redrive_pipelines.py): every guarantee of
the one loop, with calls in flight at once; the shared pacer and the rate change."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from operations import redrive as engine
from operations import redrive_rate
from operations.aws import sqs
from operations.models import Operation, OperationMessage
from operations.redrive_rate import Pacer, RateError, parse_rate, set_rate
from tests.operations.redrive_world import drain, fill, make_queues, new_op, run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _switch_often(threads_switch_often: None) -> None:
    """Every test here runs with threads switching as often as they can (conftest)."""


class InFlight:
    """Wraps an adapter call and records the most calls of it that ran at once."""

    def __init__(self, real: Any, hold: float = 0.02) -> None:
        self.real = real
        self.hold = hold
        self.now = 0
        self.most = 0
        self.lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(self.hold)  # a network round trip: the others get to start
            return self.real(*args, **kwargs)
        finally:
            with self.lock:
                self.now -= 1


def bodies(client: Any, url: str) -> list[str]:
    return sorted(json.loads(m["Body"])["id"] for m in drain(client, url))


def test_eight_pipelines_move_every_message_once_with_calls_in_flight_at_once(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, source_url, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 95)
    sends = InFlight(sqs.send_message_batch)
    monkeypatch.setattr(sqs, "send_message_batch", sends)
    op = run(dlq_url, destination_arn=source_arn, concurrency=8)
    assert (op.state, op.moved, op.failed) == ("succeeded", 95, 0), (op.outcome, op.error)
    assert bodies(client, source_url) == sorted(f"e-{i}" for i in range(95))
    assert drain(client, dlq_url) == []
    assert sends.most > 1
    assert OperationMessage.objects.filter(operation=op, outcome="moved").count() == 95


def test_max_messages_is_never_exceeded_across_pipelines(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, source_url, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 60)
    monkeypatch.setattr(sqs, "send_message_batch", InFlight(sqs.send_message_batch))
    op = run(dlq_url, destination_arn=source_arn, concurrency=8, max_messages=7)
    assert (op.state, op.moved) == ("succeeded", 7)
    assert len(drain(client, source_url)) == 7
    assert len(drain(client, dlq_url)) == 53


def test_a_cancel_stops_every_pipeline_and_loses_nothing(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, source_url, source_arn, dlq_url = make_queues()
    # More than 8 pipelines hold at once (80), so the cancel finds work left.
    fill(client, dlq_url, 300)
    monkeypatch.setattr(sqs, "send_message_batch", InFlight(sqs.send_message_batch))
    real_report = Operation.report

    def cancel_once_something_moved(self: Operation, *args: Any, **fields: Any) -> bool:
        if fields.get("moved"):
            Operation.objects.filter(pk=self.pk).update(cancel_requested=True)
        return real_report(self, *args, **fields)

    monkeypatch.setattr(Operation, "report", cancel_once_something_moved)
    op = run(dlq_url, destination_arn=source_arn, concurrency=8)
    moved, left = bodies(client, source_url), bodies(client, dlq_url)
    assert (op.state, op.moved) == ("cancelled", len(moved))
    assert 0 < len(moved) < 300
    # Nothing lost, nothing in both places: what was sent was deleted, the rest released.
    assert sorted(moved + left) == sorted(f"e-{i}" for i in range(300))


def test_what_an_earlier_run_sent_is_deleted_not_sent_again(aws: None) -> None:
    client, source_url, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 30)
    op = new_op(dlq_url, engine.RedriveParams(destination_arn=source_arn, concurrency=8))
    # An earlier run sent (and recorded) five of them, and died before deleting them.
    received = client.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=5)["Messages"]
    client.change_message_visibility_batch(
        QueueUrl=dlq_url,
        Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(received)
        ],
    )
    client.send_message_batch(
        QueueUrl=source_url,
        Entries=[{"Id": str(i), "MessageBody": m["Body"]} for i, m in enumerate(received)],
    )
    OperationMessage.objects.bulk_create(
        OperationMessage(operation=op, message_id=m["MessageId"], outcome="sent") for m in received
    )
    done = engine.run_inline(op, sleep=lambda s: None)
    assert (done.state, done.moved) == ("succeeded", 30)
    assert bodies(client, source_url) == sorted(f"e-{i}" for i in range(30))


def test_progress_shows_the_pipelines_and_the_live_rate(aws: None) -> None:
    client, _, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 20)
    op = run(dlq_url, destination_arn=source_arn, concurrency=4)
    assert op.progress["concurrency"] == 4
    assert "live_rate" in op.progress and op.progress["rate_limit"] is None
    assert "4 pipelines" in engine.progress_line(op)


def test_a_fifo_dlq_runs_the_pipelines_it_is_given(aws: None) -> None:
    """Group order with pipelines: test_redrive_fifo.py and test_redrive_fifo_pipelines.py."""
    client, _, source_arn, dlq_url = make_queues(fifo=True)
    client.send_message(
        QueueUrl=dlq_url, MessageBody="{}", MessageGroupId="g", MessageDeduplicationId="1"
    )
    op = run(dlq_url, destination_arn=source_arn, concurrency=8)
    assert (op.moved, op.progress["concurrency"]) == (1, 8)


# --- the pacer and the rate change --------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_pacer_books_each_batch_after_the_last_whoever_sends() -> None:
    pacer = Pacer(5.0, Clock())
    # Three pipelines ask at the same instant: 10 messages at 5/s is 2 s apart.
    assert [pacer.book(10, before=True) for _ in range(3)] == [0.0, 2.0, 4.0]


def test_a_lower_rate_applies_to_the_next_batches() -> None:
    clock = Clock()
    pacer = Pacer(10.0, clock)
    assert pacer.book(10, before=True) == 0.0
    clock.now += 1.0
    pacer.set_rate(1.0)
    assert pacer.book(10, before=True) == 0.0
    assert pacer.book(10, before=True) == 10.0


def test_no_rate_never_waits() -> None:
    assert Pacer(None, Clock()).book(10, before=True) == 0.0


def test_a_stopped_pacer_returns_at_once() -> None:
    stop = threading.Event()
    stop.set()
    pacer = Pacer(0.01, Clock())
    pacer.book(10, before=True)
    assert pacer.wait(10, stop) is False


@pytest.mark.parametrize("value", ["fast", "-1", "501", "nan"])
def test_a_bad_rate_is_refused(value: str) -> None:
    with pytest.raises(RateError):
        parse_rate(value)


def test_none_or_empty_lifts_the_limit() -> None:
    assert (parse_rate(""), parse_rate("none"), parse_rate("12.5")) == (None, None, 12.5)


def test_set_rate_records_who_and_when_and_the_run_applies_it(aws: None) -> None:
    _, _, source_arn, dlq_url = make_queues()
    op = new_op(dlq_url, engine.RedriveParams(destination_arn=source_arn, rate=50))
    assert set_rate(op.pk, 5.0, by="alice")
    op.refresh_from_db()
    change = op.parameters["rate_changes"][-1]
    assert (op.parameters["rate"], change["by"], change["from"], change["to"]) == (
        5.0,
        "alice",
        50,
        5.0,
    )
    token = op.claim()
    assert token is not None
    clock = Clock()
    redrive = engine.Redrive(op, token, clock=clock)
    assert redrive.pacer.rate == 5.0
    set_rate(op.pk, 2.0, by="bob")
    clock.now += 1.5
    redrive._report()
    assert redrive.pacer.rate == 2.0


def test_set_rate_refuses_a_finished_operation(aws: None) -> None:
    _, _, source_arn, dlq_url = make_queues()
    op = new_op(dlq_url, engine.RedriveParams(destination_arn=source_arn))
    op.finish(None, Operation.State.SUCCEEDED)
    assert set_rate(op.pk, 5.0, by="alice") is False
    op.refresh_from_db()
    assert "rate_changes" not in op.parameters


def test_the_live_rate_is_messages_per_second_over_the_window() -> None:
    clock = Clock()
    live = redrive_rate.LiveRate(clock)
    live.update(0)
    clock.now += 2.0
    assert live.update(100) == 50.0


# --- manage.py operations set-rate ----------------------------------------------------


def set_rate_command(*args: str) -> str:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("operations", "set-rate", *args, stdout=out)
    return out.getvalue()


def test_the_command_lowers_a_running_redrives_rate(aws: None) -> None:
    _, _, source_arn, dlq_url = make_queues()
    op = new_op(dlq_url, engine.RedriveParams(destination_arn=source_arn, rate=100))
    assert "rate limit set to 10 messages/s" in set_rate_command(str(op.pk), "10")
    op.refresh_from_db()
    assert op.parameters["rate"] == 10.0
    assert op.parameters["rate_changes"][-1]["by"].startswith("cli:")


@pytest.mark.parametrize("rate", ["fast", "0.0001x", "600"])
def test_the_command_refuses_a_bad_rate_with_exit_2(aws: None, rate: str) -> None:
    from django.core.management.base import CommandError

    _, _, source_arn, dlq_url = make_queues()
    op = new_op(dlq_url, engine.RedriveParams(destination_arn=source_arn, rate=100))
    with pytest.raises(CommandError) as refused:
        set_rate_command(str(op.pk), rate)
    assert refused.value.returncode == 2
    op.refresh_from_db()
    assert op.parameters["rate"] == 100


def test_the_command_refuses_an_unknown_operation(aws: None) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No running client-side redrive #404"):
        set_rate_command("404", "5")


def test_a_message_deleted_by_an_earlier_chunk_is_not_deleted_again() -> None:
    """Received again while its first delete was in flight (its hiding lapsed), a message is
    queued for a second delete; once the first delete went through and dropped its handle,
    the second chunk leaves it out instead of failing the pass (seen with 8 pipelines)."""
    from types import SimpleNamespace

    from operations.redrive_outbox import Outbox

    handles = {"m-1": "h-1", "m-2": "h-2"}
    outbox = Outbox(
        operation_id=1,
        url="https://sqs/q",
        fifo=False,
        ledger=SimpleNamespace(flush=lambda moved: None),  # type: ignore[arg-type]
        groups=SimpleNamespace(),  # type: ignore[arg-type]
        mover=SimpleNamespace(),  # type: ignore[arg-type]
        handles=handles,
        clock=lambda: 0.0,
    )
    outbox.add_sent("m-1", None)
    outbox.add_sent("m-2", None)
    (chunk,) = outbox.deletes()
    del handles["m-1"]  # the earlier delete of m-1 went through
    assert outbox.handles_of(chunk) == {"d1": "h-2"}
    assert chunk == {"d1": "m-2"}
    handles.clear()
    (chunk,) = [{"d0": "m-2"}]
    assert outbox.handles_of(chunk) == {} and not outbox
