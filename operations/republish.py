"""Re-publish chosen events from the event log with PutEvents, as an Operation.

One event, or every event of one correlation ID in a window, is sent again to
its bus with the same source, detail-type, detail and time. The ``Resources``
list gets ``eventops:replay/<operation id>`` (COMMON.md): the strict detail
schemas forbid a marker inside ``detail``, and this is how consumers and the
dashboard tell a re-published event from a live one. EventBridge gives each
re-published event a new ID, so consumers' idempotency records (keyed on the
event ID) do not skip it.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction

from operations import archive as archive_reads
from operations import outcomes
from operations.archive import ArchiveView, EventFilters, LoggedEvent
from operations.aws import events
from operations.aws.errors import AwsError
from operations.enqueue import enqueue
from operations.models import Operation, TouchedCorrelation

logger = logging.getLogger(__name__)

MAX_EVENTS = 100
LEASE_SECONDS = 120


class RepublishError(ValueError):
    """The request is invalid; the message says why."""


def events_of_correlation(
    view: ArchiveView, correlation_id: str, start: datetime, end: datetime
) -> list[LoggedEvent]:
    """The original events (not replays, not re-publications) of one correlation ID."""
    if not correlation_id.strip():
        raise RepublishError("A correlation ID is required.")
    if end <= start:
        raise RepublishError("The end of the window must be after its start.")
    found, truncated = archive_reads.collect_events(
        view.log_group,
        start,
        end,
        EventFilters(correlation_id=correlation_id.strip()),
        cap=MAX_EVENTS * 2,
    )
    originals = [e for e in found if not e.is_replayed]
    if truncated or len(originals) > MAX_EVENTS:
        raise RepublishError(f"More than {MAX_EVENTS} events match: re-publish a narrower window.")
    if not originals:
        raise RepublishError("No events of this correlation ID in the window.")
    return sorted(originals, key=lambda e: e.time)


def _entry(event: LoggedEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "source": event.source,
        "detail_type": event.detail_type,
        "detail": event.detail,
        "resources": [r for r in event.resources if not r.startswith("eventops:replay/")],
        "time": event.time.isoformat(),
        "correlation_id": event.correlation_id,
    }


def start_republish_operation(
    view: ArchiveView,
    chosen: list[LoggedEvent],
    *,
    reason: str,
    selector: dict[str, str],
    user: Any = None,
    requested_by_name: str = "",
) -> Operation:
    """Write the Operation (with the exact events to send) and enqueue it on commit.

    ``QueueUnavailable`` when the broker cannot take the task (the row is then failed)."""
    reason = reason.strip()
    if not reason:
        raise RepublishError("A reason is required: it goes into the audit trail.")
    if not chosen:
        raise RepublishError("No events to re-publish.")
    bus_arn = view.archive.source_arn
    try:
        with transaction.atomic():
            operation = Operation.objects.create(
                kind=Operation.Kind.REPUBLISH,
                target=bus_arn,
                target_label=view.bus_name,
                reason=reason,
                requested_by=user if getattr(user, "is_authenticated", False) else None,
                requested_by_name=requested_by_name or getattr(user, "username", "") or "unknown",
                total=len(chosen),
                parameters={
                    "archive_name": view.archive.name,
                    "bus_name": view.bus_name,
                    "bus_arn": bus_arn,
                    "selector": selector,
                    "events": [_entry(e) for e in chosen],
                },
            )
    except IntegrityError:
        raise RepublishError(
            f"Another operation is already active on bus {view.bus_name}."
        ) from None
    enqueue(operation)
    return operation


def put_entry(entry: dict[str, Any], bus_name: str, operation_id: int) -> dict[str, Any]:
    """The PutEvents request entry for one stored event, marked as re-published."""
    return {
        "Source": entry["source"],
        "DetailType": entry["detail_type"],
        "Detail": _json(entry["detail"]),
        "Resources": [*entry.get("resources", []), f"eventops:replay/{operation_id}"],
        "Time": datetime.fromisoformat(entry["time"]).astimezone(UTC),
        "EventBusName": bus_name,
    }


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def run(op: Operation, token: Any) -> None:
    """Send the operation's events, 10 per PutEvents call, checking every entry.

    Before each call the row records which events are on their way, and after it which
    went out, so even a worker that dies mid-way leaves the audit of what went out. A
    resumed run (the sweeper, after a worker died) sends only the events never tried:
    those on their way when the worker died may have gone out, and a second copy would
    get a new event ID that consumers' idempotency does not catch, so they are reported
    as unknown, not sent again. The row ends ``succeeded`` when every event was
    accepted, ``partial`` when some were, else ``failed``, with the reasons grouped.
    """
    params = op.parameters
    stored: list[dict[str, Any]] = params.get("events", [])
    done = Progress.of(op)
    todo = [e for e in stored if e["id"] not in done.settled]
    try:
        for start in range(0, len(todo), events.PUT_EVENTS_BATCH):
            if op.cancel_requested:
                _finish(op, token, done, len(stored), cancelled=True)
                return
            batch = todo[start : start + events.PUT_EVENTS_BATCH]
            op.report(token, LEASE_SECONDS, progress=done.record([e["id"] for e in batch]))
            try:
                results = events.put_events(
                    [put_entry(e, params["bus_name"], op.pk) for e in batch]
                )
            except AwsError as exc:
                done.refuse(batch, exc.code or "error", exc.message)
                logger.warning("Re-publish operation %s: PutEvents failed: %s", op.pk, exc)
                break
            for entry, result in zip(batch, results, strict=True):
                if result.ok:
                    done.sent.append({"original": entry["id"], "new": result.event_id})
                else:
                    done.refuse([entry], result.error_code, result.error_message)
            # The audit first: what this batch sent is saved before anything else can fail.
            op.report(token, LEASE_SECONDS, progress=done.record(), **done.counters())
            _touch(op, batch, done.sent)
    except Exception as exc:
        logger.exception("Re-publish operation %s failed", op.pk)
        _finish(op, token, done, len(stored), error=f"{type(exc).__name__}: {exc}")
        raise
    _finish(op, token, done, len(stored))
    logger.info("Re-publish operation %s: %s", op.pk, done.counters())


class Progress:
    """What a re-publish did with each event: sent, refused, or unknown (on its way when
    a worker died)."""

    def __init__(self, progress: dict[str, Any]) -> None:
        self.sent: list[dict[str, str]] = list(progress.get("sent") or [])
        self.failures: list[dict[str, str]] = list(progress.get("failures") or [])
        self.unknown: list[str] = list(progress.get("unknown") or [])
        answered = {s["original"] for s in self.sent} | {f["original"] for f in self.failures}
        for event_id in progress.get("in_flight") or []:
            if event_id not in answered and event_id not in self.unknown:
                self.unknown.append(event_id)

    @classmethod
    def of(cls, op: Operation) -> Progress:
        return cls(op.progress if isinstance(op.progress, dict) else {})

    @property
    def settled(self) -> set[str]:
        return (
            {s["original"] for s in self.sent}
            | {f["original"] for f in self.failures}
            | set(self.unknown)
        )

    def refuse(self, batch: list[dict[str, Any]], code: str, message: str) -> None:
        for entry in batch:
            self.failures.append({"original": entry["id"], "code": code, "message": message})

    def record(self, in_flight: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "failures": self.failures,
            "unknown": self.unknown,
            "in_flight": list(in_flight),
        }

    def counters(self) -> dict[str, int]:
        return {"moved": len(self.sent), "failed": len(self.failures) + len(self.unknown)}

    def reasons(self, total: int, *, error: str = "") -> dict[str, int]:
        reasons = [f"refused by PutEvents: {f['code']}" for f in self.failures]
        reasons += ["unknown: the worker stopped while PutEvents ran"] * len(self.unknown)
        untried = total - len(self.sent) - len(self.failures) - len(self.unknown)
        why = f"not sent: {error}" if error else "not sent: the operation stopped first"
        reasons += [why] * max(0, untried)
        return outcomes.group_reasons(reasons)


def _finish(
    op: Operation,
    token: Any,
    done: Progress,
    total: int,
    *,
    cancelled: bool = False,
    error: str = "",
) -> None:
    state: str
    if cancelled:
        state = Operation.State.CANCELLED
    else:
        state = outcomes.final_state(len(done.sent), total)
        if error and state == Operation.State.SUCCEEDED:
            state = Operation.State.PARTIAL  # all went out, but the run broke afterwards
    reasons = done.reasons(total, error=error)
    if not error and reasons and state != Operation.State.CANCELLED:
        error = "; ".join(outcomes.reason_lines({"reasons": reasons}))
    outcome = {**done.record(), "reasons": reasons}
    outcome.pop("in_flight")
    try:
        op.finish(token, state, error=error, outcome=outcome, **done.counters())
    except Exception:
        # The database itself may be what failed: the last progress report keeps the
        # events sent until then.
        logger.exception("Could not finish re-publish operation %s", op.pk)


def _touch(op: Operation, batch: list[dict[str, Any]], sent: list[dict[str, str]]) -> None:
    """Record the correlation IDs of the batch's sent events (redrive-loop detection)."""
    sent_ids = {s["original"] for s in sent}
    for correlation_id in {e.get("correlation_id", "") for e in batch if e["id"] in sent_ids} - {
        ""
    }:
        TouchedCorrelation.objects.get_or_create(operation=op, correlation_id=correlation_id)
