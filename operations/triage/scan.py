"""Scanning a DLQ: read up to ``EVENTOPS_SCAN_MAX`` messages, store one row per message and
group them by their error. A scan never deletes or moves anything.

Cost: one ReceiveMessage per 10 messages and one ChangeMessageVisibilityBatch per 10 to
release them, 0.2 calls per message (bench/scan.py). The messages stay hidden until the scan
ends and are then released, 10 per call: releasing them as it goes would cost the same calls
but let the next receives return the same messages again, so a scan of a deep queue would
spend its receives on repeats. The visibility timeout is long enough for the whole scan; a
scan that ends for any reason (done, cancelled, an AWS error) releases what it holds, and a
worker that dies leaves them to reappear when that timeout ends.

It stops at its maximum, after two empty receives in a row, or when a receive returns only
messages it has already seen (the queue went round). Each batch reports progress, and the
cancel flag is checked between batches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction

from operations import dlq, environments
from operations.aws import sqs
from operations.aws.errors import AwsError
from operations.enqueue import enqueue
from operations.models import Operation
from operations.triage import groups
from operations.triage.errors import errors_for
from operations.triage.models import ScannedMessage

logger = logging.getLogger(__name__)

LEASE_SECONDS = 120
# Messages described, looked up, grouped and written together.
BATCH = 200
# Long polling on each receive (as the redrive does): short polling samples a few servers.
WAIT_SECONDS = 1
EMPTY_RECEIVES_TO_STOP = 2
MAX_VISIBILITY = 12 * 3600


def scan_max() -> int:
    """The most messages one scan reads (EVENTOPS_SCAN_MAX)."""
    return int(getattr(settings, "EVENTOPS_SCAN_MAX", 10_000))


def visibility_for(max_messages: int) -> int:
    """How long the scan hides what it read: five minutes plus 0.1 s a message, ample for
    a receive per 10 messages and the writes between them."""
    return min(MAX_VISIBILITY, 300 + max_messages // 10)


def start_scan(
    dlq_url: str, *, max_messages: int | None, reason: str, user: Any = None, user_name: str = ""
) -> Operation:
    """Write the scan operation and enqueue it. ``IntegrityError`` if another operation is
    active on the DLQ; ``QueueUnavailable`` if the broker cannot take it."""
    op = create_scan(
        dlq_url, max_messages=max_messages, reason=reason, user=user, user_name=user_name
    )
    enqueue(op)
    return op


def create_scan(
    dlq_url: str, *, max_messages: int | None, reason: str, user: Any = None, user_name: str = ""
) -> Operation:
    limit = min(max_messages or scan_max(), scan_max())
    approximate = sqs.queue_attributes(dlq_url).visible
    parameters = {
        "max": limit,
        "approximate_total": approximate,
        "visibility_seconds": visibility_for(limit),
    }
    with transaction.atomic():
        return Operation.objects.create(
            kind=Operation.Kind.SCAN,
            target=dlq_url,
            target_label=sqs.queue_name_from_url(dlq_url),
            parameters=parameters,
            reason=reason or "scan",
            requested_by=user,
            requested_by_name=user_name,
            total=min(limit, approximate) or None,
        )


@dataclass
class _Held:
    """What the scan holds hidden: receipt handles by message ID (released at the end)."""

    handles: dict[str, str] = field(default_factory=dict)

    def release(self, url: str) -> int:
        """Make them visible again, 10 per call; returns how many could not be released."""
        items = list(self.handles.items())
        self.handles.clear()
        failed = 0
        for start in range(0, len(items), sqs.MAX_BATCH_ENTRIES):
            chunk = {f"r{i}": h for i, (_, h) in enumerate(items[start : start + 10])}
            try:
                result = sqs.change_visibility_batch(url, chunk, 0)
            except AwsError as exc:
                logger.warning("scan of %s: could not release %d: %s", url, len(chunk), exc)
                failed += len(chunk)
                continue
            failed += len(result.failed)
        return failed


class Scan:
    """One run of a scan operation (claimed by the task; ``run`` returns the final state)."""

    def __init__(self, op: Operation, token: Any) -> None:
        self.op = op
        self.token = token
        self.url = op.target
        params = op.parameters or {}
        self.limit = int(params.get("max") or scan_max())
        self.visibility = int(params.get("visibility_seconds") or visibility_for(self.limit))
        self.held = _Held()
        self.seen: set[str] = set(
            ScannedMessage.objects.filter(operation=op).values_list("message_id", flat=True)
        )
        self.stopped = ""

    def run(self) -> str:
        error = ""
        try:
            for batch in self._batches():
                self._store(batch)
                self.op.report(self.token, LEASE_SECONDS, moved=len(self.seen))
                if self.op.cancel_requested:
                    self.stopped = "cancelled"
                    break
        except AwsError as exc:
            logger.warning("operation %s: scan stopped: %s", self.op.pk, exc)
            error = str(exc)
        finally:
            not_released = self.held.release(self.url)
        return self._finish(error, not_released)

    def _batches(self) -> Iterator[list[sqs.SqsMessage]]:
        batch: list[sqs.SqsMessage] = []
        empty = 0
        while len(self.seen) + len(batch) < self.limit:
            want = min(sqs.MAX_BATCH_ENTRIES, self.limit - len(self.seen) - len(batch))
            received = sqs.receive_messages(
                self.url,
                max_messages=want,
                visibility_timeout=self.visibility,
                wait_seconds=WAIT_SECONDS,
            )
            if not received:
                empty += 1
                if empty >= EMPTY_RECEIVES_TO_STOP:
                    self.stopped = "empty"
                    break
                continue
            empty = 0
            fresh = [m for m in received if m.message_id not in self.held.handles]
            fresh = [m for m in fresh if m.message_id not in self.seen]
            for message in received:
                self.held.handles[message.message_id] = message.receipt_handle
            if not fresh:
                self.stopped = "repeat"
                break
            batch.extend(fresh)
            if len(batch) >= BATCH:
                yield batch
                batch = []
        else:
            self.stopped = "max"
        if batch:
            yield batch

    def _store(self, batch: list[sqs.SqsMessage]) -> None:
        described = [dlq.describe(m) for m in batch]
        seen = groups.classify(described, errors_for(self.url, described))
        groups.record(self.op.environment, self.url, self.op.target_label or self.url, seen)
        ScannedMessage.objects.bulk_create(
            [_row(self.op, item) for item in seen], ignore_conflicts=True
        )
        self.seen.update(m.message_id for m in batch)

    def _finish(self, error: str, not_released: int) -> str:
        scanned = len(self.seen)
        if error:
            state = Operation.State.PARTIAL if scanned else Operation.State.FAILED
        elif self.stopped == "cancelled":
            state = Operation.State.CANCELLED
        else:
            state = Operation.State.SUCCEEDED
        outcome = {
            "scanned": scanned,
            "approximate_total": (self.op.parameters or {}).get("approximate_total"),
            "stopped": self.stopped or "error",
            "not_released": not_released,
        }
        if not_released:
            outcome["reasons"] = {
                f"not released (visible again within {self.visibility} s)": not_released
            }
        self.op.finish(self.token, state, error=error, moved=scanned, outcome=outcome)
        return state


def _row(op: Operation, item: groups.Seen) -> ScannedMessage:
    message = item.message
    return ScannedMessage(
        operation=op,
        message_id=message.message_id[:128],
        sent_at=message.sent_at,
        receive_count=min(message.receive_count, 2**31 - 1),
        event_type=message.event_type[:128],
        correlation_id=message.correlation_id[:256],
        size=len(message.raw.body.encode("utf-8", "replace")),
        excerpt=groups.excerpt(message),
        group_key=item.signature.key,
        error=item.error.summary[:500],
    )


def run_scan(op: Operation, token: Any) -> str:
    """The task's entry point: run the claimed scan, return its final state."""
    return Scan(op, token).run()


def latest_scan(dlq_url: str) -> Operation | None:
    """The most recent scan of this DLQ in the current environment (running or finished)."""
    return (
        Operation.objects.filter(
            environment=environments.current_name(), kind=Operation.Kind.SCAN, target=dlq_url
        )
        .exclude(state=Operation.State.PENDING)
        .order_by("-created_at", "-pk")
        .first()
    )
