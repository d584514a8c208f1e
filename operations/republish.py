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
from operations.archive import ArchiveView, EventFilters, LoggedEvent
from operations.aws import events
from operations.aws.errors import AwsError
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
    """Write the Operation (with the exact events to send) and enqueue it on commit."""
    from operations.replay_tasks import republish as republish_task

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
            # celery-types does not know delay_on_commit (Celery 5.4+).
            republish_task.delay_on_commit(operation.pk)  # type: ignore[attr-defined]
    except IntegrityError:
        raise RepublishError(
            f"Another operation is already active on bus {view.bus_name}."
        ) from None
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

    Every progress report saves the events sent so far (``progress["sent"]``), so even
    a worker that dies mid-way leaves the audit of what went out. Any error finishes the
    row FAILED (an unexpected one is raised again afterwards): the task is not retried,
    as PutEvents is not idempotent, and a row left running would block its bus.
    """
    params = op.parameters
    stored: list[dict[str, Any]] = params.get("events", [])
    sent: list[dict[str, str]] = []
    failures: list[dict[str, str]] = []

    def record() -> dict[str, Any]:
        return {"sent": sent, "failures": failures}

    try:
        for start in range(0, len(stored), events.PUT_EVENTS_BATCH):
            if op.cancel_requested:
                op.finish(token, Operation.State.CANCELLED, outcome=record())
                return
            batch = stored[start : start + events.PUT_EVENTS_BATCH]
            results = events.put_events([put_entry(e, params["bus_name"], op.pk) for e in batch])
            for entry, result in zip(batch, results, strict=True):
                if result.ok:
                    sent.append({"original": entry["id"], "new": result.event_id})
                else:
                    failures.append(
                        {
                            "original": entry["id"],
                            "code": result.error_code,
                            "message": result.error_message,
                        }
                    )
            # The audit first: what this batch sent is saved before anything else can fail.
            op.report(
                token, LEASE_SECONDS, moved=len(sent), failed=len(failures), progress=record()
            )
            _touch(op, batch, sent)
    except AwsError as exc:
        _finish_failed(op, token, str(exc), sent, failures)
        return
    except Exception as exc:
        logger.exception("Re-publish operation %s failed", op.pk)
        _finish_failed(op, token, f"{type(exc).__name__}: {exc}", sent, failures)
        raise
    state = Operation.State.FAILED if failures else Operation.State.SUCCEEDED
    error = (
        f"{len(failures)} of {len(stored)} events were refused by PutEvents." if failures else ""
    )
    op.finish(
        token,
        state,
        error=error,
        moved=len(sent),
        failed=len(failures),
        outcome=record(),
    )
    logger.info("Re-publish operation %s: %s sent, %s failed", op.pk, len(sent), len(failures))


def _touch(op: Operation, batch: list[dict[str, Any]], sent: list[dict[str, str]]) -> None:
    """Record the correlation IDs of the batch's sent events (redrive-loop detection)."""
    sent_ids = {s["original"] for s in sent}
    for correlation_id in {e.get("correlation_id", "") for e in batch if e["id"] in sent_ids} - {
        ""
    }:
        TouchedCorrelation.objects.get_or_create(operation=op, correlation_id=correlation_id)


def _finish_failed(
    op: Operation,
    token: Any,
    error: str,
    sent: list[dict[str, str]],
    failures: list[dict[str, str]],
) -> None:
    outcome = {"sent": sent, "failures": failures}
    try:
        op.finish(
            token,
            Operation.State.FAILED,
            error=error,
            moved=len(sent),
            failed=len(failures),
            outcome=outcome,
        )
    except Exception:
        # The database itself may be what failed: the last progress report keeps the
        # events sent until then.
        logger.exception("Could not finish re-publish operation %s", op.pk)
