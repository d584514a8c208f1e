"""Re-publishing chosen events with PutEvents, as an audited Operation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from operations import archive, republish
from operations.aws import events
from operations.models import Operation, TouchedCorrelation
from operations.replay_tasks import republish as republish_task
from tests.operations import archive_world
from tests.operations.archive_world import ARCHIVE, detail

world = archive_world.world
pytestmark = pytest.mark.django_db


def _window() -> tuple[datetime, datetime]:
    now = datetime.now(tz=UTC)
    return now - timedelta(hours=1), now + timedelta(minutes=1)


def _republish(correlation_id: str) -> Operation:
    view = archive.load_archive(ARCHIVE)
    chosen = republish.events_of_correlation(view, correlation_id, *_window())
    op = republish.start_republish_operation(
        view,
        chosen,
        reason="consumer bug fixed",
        selector={"correlation_id": correlation_id},
        requested_by_name="t",
    )
    republish_task.run(op.pk)
    op.refresh_from_db()
    return op


def test_republishing_a_correlation_id_sends_exactly_its_events_marked(world):
    world.put("OrderPaid", detail("c-1"))
    world.put("OrderShipped", detail("c-1", carrier="dhl"))
    world.put("OrderPaid", detail("c-2"))
    world.drain("notify-rule")
    op = _republish("c-1")
    sent = world.drain("notify-rule")
    assert sorted((e["detail-type"], e["detail"]["correlationId"]) for e in sent) == [
        ("OrderPaid", "c-1"),
        ("OrderShipped", "c-1"),
    ]
    assert all(f"eventops:replay/{op.pk}" in e["resources"] for e in sent)


def test_republish_operation_is_audited_with_touched_correlation(world):
    world.put("OrderPaid", detail("c-1"))
    op = _republish("c-1")
    assert (op.kind, op.state, op.moved, op.failed) == ("republish", "succeeded", 1, 0)
    assert list(TouchedCorrelation.objects.values_list("correlation_id", flat=True)) == ["c-1"]


def test_republished_events_are_not_picked_again(world):
    world.put("OrderPaid", detail("c-1"))
    _republish("c-1")
    view = archive.load_archive(ARCHIVE)
    again = republish.events_of_correlation(view, "c-1", *_window())
    assert len(again) == 1 and not again[0].is_replayed


def test_refused_entries_are_counted_and_fail_the_operation(world, monkeypatch):
    world.put("OrderPaid", detail("c-1"))
    world.put("OrderPaid", detail("c-1", order="o-2"))
    refused = [
        events.PutResult("new-1", "", ""),
        events.PutResult("", "ThrottlingException", "slow down"),
    ]
    monkeypatch.setattr(events, "put_events", lambda entries: refused[: len(entries)])
    op = _republish("c-1")
    assert (op.state, op.moved, op.failed) == ("partial", 1, 1)
    assert op.outcome["reasons"] == {"refused by PutEvents: ThrottlingException": 1}


def test_every_event_refused_fails_the_operation(world, monkeypatch):
    world.put("OrderPaid", detail("c-1"))
    refused = events.PutResult("", "AccessDeniedException", "no")
    monkeypatch.setattr(events, "put_events", lambda entries: [refused] * len(entries))
    op = _republish("c-1")
    assert (op.state, op.moved, op.failed) == ("failed", 0, 1)
    assert "1 refused by PutEvents: AccessDeniedException" in op.error


def test_a_resumed_republish_sends_only_what_was_never_tried(world, monkeypatch):
    """The worker died during PutEvents: the events on their way may have gone out, and a
    second copy would carry a new event ID, so they are reported unknown, not re-sent."""
    for i in range(3):
        world.put("OrderPaid", detail("c-1", order=f"o-{i}"))
    op = _start("c-1")
    ids = [e["id"] for e in op.parameters["events"]]
    token = op.claim()
    op.report(token, progress={"sent": [{"original": ids[0], "new": "n-0"}], "in_flight": [ids[1]]})
    Operation.objects.filter(pk=op.pk).update(lease_expires_at=timezone.now())
    sent: list[str] = []
    original = events.put_events
    monkeypatch.setattr(
        events,
        "put_events",
        lambda entries: sent.extend(e["Detail"] for e in entries) or original(entries),
    )
    republish_task.run(op.pk)
    op.refresh_from_db()
    assert len(sent) == 1 and op.outcome["unknown"] == [ids[1]]
    assert (op.state, op.moved) == ("partial", 2)
    assert op.outcome["reasons"] == {"unknown: the worker stopped while PutEvents ran": 1}


def test_put_events_batches_of_ten_check_every_entry(aws):
    entries = [
        {"Source": "s", "DetailType": "t", "Detail": "{}", "EventBusName": "default"}
        for _ in range(23)
    ]
    calls = []
    original = events.client("events").put_events

    def spy(**kwargs):
        calls.append(len(kwargs["Entries"]))
        return original(**kwargs)

    events.client("events").put_events = spy
    results = events.put_events(entries)
    assert calls == [10, 10, 3]
    assert len(results) == 23 and all(r.ok for r in results)


def test_unknown_correlation_id_is_refused(world):
    view = archive.load_archive(ARCHIVE)
    with pytest.raises(republish.RepublishError, match="No events"):
        republish.events_of_correlation(view, "c-404", *_window())


def test_reason_is_required_and_nothing_is_written(world):
    world.put("OrderPaid", detail("c-1"))
    view = archive.load_archive(ARCHIVE)
    chosen = republish.events_of_correlation(view, "c-1", *_window())
    with pytest.raises(republish.RepublishError, match="reason"):
        republish.start_republish_operation(view, chosen, reason="", selector={})
    assert Operation.objects.count() == 0


def _start(correlation_id: str) -> Operation:
    view = archive.load_archive(ARCHIVE)
    chosen = republish.events_of_correlation(view, correlation_id, *_window())
    return republish.start_republish_operation(
        view, chosen, reason="r", selector={"correlation_id": correlation_id}
    )


def test_database_error_finishes_the_row_failed_and_keeps_the_audit(world, monkeypatch):
    from django.db import DatabaseError

    world.put("OrderPaid", detail("c-1"))
    op = _start("c-1")

    def broken(**kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(TouchedCorrelation.objects, "get_or_create", broken)
    with pytest.raises(DatabaseError):
        republish_task.run(op.pk)
    op.refresh_from_db()
    # Every event went out, but the run broke afterwards: not a clean success.
    assert (op.state, op.moved) == ("partial", 1) and "disk full" in op.error
    assert [s["original"] for s in op.outcome["sent"]] == [op.parameters["events"][0]["id"]]


def test_every_progress_report_saves_the_events_sent_so_far(world, monkeypatch):
    """A crash after the first batch (here: the row cannot even be finished) still
    leaves the events that went out in the row's progress."""
    for i in range(12):
        world.put("OrderPaid", detail("c-1", order=f"o-{i}"))
    op = _start("c-1")
    calls = []
    original = events.put_events

    def crash_on_second_batch(entries):
        calls.append(len(entries))
        if len(calls) == 2:
            raise RuntimeError("worker bug")
        return original(entries)

    def finish_fails(self, *args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(events, "put_events", crash_on_second_batch)
    monkeypatch.setattr(Operation, "finish", finish_fails)
    with pytest.raises(RuntimeError, match="worker bug"):
        republish_task.run(op.pk)
    op.refresh_from_db()
    assert calls == [10, 2] and op.moved == 10
    assert len(op.progress["sent"]) == 10 and op.progress["failures"] == []


def test_a_failed_republish_releases_the_bus(world, monkeypatch):
    world.put("OrderPaid", detail("c-1"))
    op = _start("c-1")

    def broken(entries):
        raise ValueError("unexpected")

    with monkeypatch.context() as patched:
        patched.setattr(events, "put_events", broken)
        with pytest.raises(ValueError):
            republish_task.run(op.pk)
    again = _start("c-1")
    assert Operation.objects.get(pk=op.pk).state == "failed" and again.state == "pending"
