"""The client-side redrive engine, shared by the Celery task and ``manage.py redrive``.

ARCHITECTURE.md decision 5: receive a batch with all attributes, keep the
messages that match the filters, send them to their source queue preserving
body, message attributes and FIFO group / deduplication IDs, and delete from
the DLQ only the entries whose send succeeded. A crash between send and delete
duplicates at most that one batch; nothing is ever deleted unsent.

One run makes one pass over the DLQ: it remembers the message ids it has seen
and stops when a receive brings nothing new. Messages it skips (no match) or
could not send stay hidden until the end of the pass, then are released.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from operations import dlq, environments
from operations.aws import sqs
from operations.aws.errors import AwsError
from operations.models import Operation, TouchedCorrelation

logger = logging.getLogger(__name__)

# Retries of throttled calls and of entries that failed without the sender's fault.
MAX_ATTEMPTS = 6
BACKOFF_BASE_SECONDS = 0.2
BACKOFF_MAX_SECONDS = 5.0
# Correlation IDs buffered before they are written as TouchedCorrelation rows.
TOUCHED_FLUSH = 100
# SQS FIFO deduplication interval, plus a margin for clock skew.
FIFO_DEDUP_WINDOW = timedelta(minutes=5, seconds=30)


def lease_seconds() -> int:
    """How long a worker's claim lasts without a progress report; a killed worker's
    operation is resumed after this (EVENTOPS_REDRIVE_LEASE_SECONDS)."""
    return int(getattr(settings, "EVENTOPS_REDRIVE_LEASE_SECONDS", 60))


def native_redrive_enabled() -> bool:
    """Whole-queue redrives use SQS StartMessageMoveTask (real AWS only)."""
    return (
        bool(getattr(settings, "EVENTOPS_NATIVE_REDRIVE", False)) and not settings.AWS_ENDPOINT_URL
    )


def use_native(params: RedriveParams) -> bool:
    """Whether this redrive goes to SQS's own move task: only a whole-queue move with no
    count limit, and a rate limit the API can express (whole messages per second)."""
    return (
        native_redrive_enabled()
        and params.filters.is_empty
        and params.max_messages is None
        and (params.rate is None or params.rate >= 1)
    )


@dataclass(frozen=True)
class RedriveParams:
    """What a redrive operation does; stored in ``Operation.parameters``."""

    filters: dlq.Filters = field(default_factory=dlq.Filters)
    max_messages: int | None = None
    rate: float | None = None
    # Where messages without DeadLetterQueueSourceArn go: one of the DLQ's sources.
    destination_arn: str = ""
    dlq_arn: str = ""
    # Receive visibility: bounded by the lease, so a resumed run finds them visible.
    visibility_timeout: int | None = None
    wait_seconds: int = 1

    def to_parameters(self) -> dict[str, Any]:
        return {
            "filters": self.filters.to_dict(),
            "max_messages": self.max_messages,
            "rate": self.rate,
            "destination_arn": self.destination_arn,
            "dlq_arn": self.dlq_arn,
            "visibility_timeout": self.visibility_timeout,
            "wait_seconds": self.wait_seconds,
        }

    @classmethod
    def from_parameters(cls, data: dict[str, Any]) -> RedriveParams:
        return cls(
            filters=dlq.Filters.from_dict(data.get("filters") or {}),
            max_messages=data.get("max_messages") or None,
            rate=data.get("rate") or None,
            destination_arn=str(data.get("destination_arn") or ""),
            dlq_arn=str(data.get("dlq_arn") or ""),
            visibility_timeout=data.get("visibility_timeout") or None,
            wait_seconds=int(data.get("wait_seconds", 1)),
        )


def in_fifo_dedup_window(message: dlq.DlqMessage) -> bool:
    """Whether re-sending would be silently dropped: a FIFO queue accepts but does not
    deliver a message whose deduplication ID it saw in the last 5 minutes, and the
    source queue saw this ID when the message was first sent."""
    if not message.raw.attributes.get("MessageDeduplicationId") or message.sent_at is None:
        return False
    return datetime.now(UTC) - message.sent_at < FIFO_DEDUP_WINDOW


def send_entry(message: sqs.SqsMessage, entry_id: str) -> dict[str, Any]:
    """The SendMessageBatch entry that re-sends ``message`` unchanged."""
    entry: dict[str, Any] = {"Id": entry_id, "MessageBody": message.body}
    attributes = {
        name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
        for name, value in message.message_attributes.items()
    }
    if attributes:
        entry["MessageAttributes"] = attributes
    for name in ("MessageGroupId", "MessageDeduplicationId"):
        if message.attributes.get(name):
            entry[name] = message.attributes[name]
    if message.attributes.get("AWSTraceHeader"):
        entry["MessageSystemAttributes"] = {
            "AWSTraceHeader": {
                "DataType": "String",
                "StringValue": message.attributes["AWSTraceHeader"],
            }
        }
    return entry


def entry_size(entry: dict[str, Any]) -> int:
    """Bytes an entry counts towards the batch payload limit (body plus attributes)."""
    size = len(str(entry["MessageBody"]).encode("utf-8"))
    for name, value in entry.get("MessageAttributes", {}).items():
        size += len(name.encode()) + len(str(value.get("DataType", "")).encode())
        payload = value.get("StringValue", value.get("BinaryValue", b""))
        size += len(payload.encode("utf-8") if isinstance(payload, str) else payload)
    return size


def split_batches(
    entries: list[dict[str, Any]],
    max_entries: int = sqs.MAX_BATCH_ENTRIES,
    max_bytes: int = sqs.MAX_BATCH_BYTES,
) -> Iterator[list[dict[str, Any]]]:
    """Consecutive batches of at most ``max_entries`` entries and ``max_bytes`` payload."""
    batch: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        this = entry_size(entry)
        if batch and (len(batch) >= max_entries or size + this > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += this
    if batch:
        yield batch


@dataclass
class Counters:
    moved: int = 0
    failed: int = 0
    skipped: int = 0
    receives: int = 0
    batches: int = 0
    delete_failed: int = 0
    # Messages first sent after the pass began, left in the DLQ: mostly copies this pass
    # moved that failed again (a loop), else new failures; either way not this pass's.
    returned: int = 0


class Redrive:
    """One run of a redrive operation by the worker that holds its lease."""

    def __init__(
        self,
        op: Operation,
        token: uuid.UUID,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.op = op
        self.token = token
        self.params = RedriveParams.from_parameters(op.parameters)
        self.sleep = sleep
        self.clock = clock
        self.url = op.target
        self.lease = lease_seconds()
        self.visibility = self.params.visibility_timeout or self.lease
        self.count = Counters(
            moved=op.moved,
            failed=op.failed,
            skipped=op.skipped,
            returned=int((op.progress or {}).get("returned") or 0),
        )
        self.seen: set[str] = set()
        # Skipped or unsendable messages stay hidden until the pass ends: id -> receipt handle.
        self.held: dict[str, str] = {}
        self.destinations: dict[str, str] = {}
        self.touched: set[str] = set()
        self.moved_this_run = 0
        self.started = clock()
        # Copies this run sent (their new message IDs): one whose consumer fails again comes
        # back to the DLQ under that ID, and moving it again would loop forever.
        self.copies: set[str] = set()
        # Messages sent after this are copies an earlier run of the operation sent, or new
        # failures: not this pass's either way. SentTimestamp has millisecond resolution, so
        # the start is compared at that resolution, and a message sent in the very millisecond
        # the pass began counts as one from before it (``copies`` catches this run's own).
        started = op.started_at or datetime.now(UTC)
        self.pass_started = started.replace(microsecond=started.microsecond // 1000 * 1000)
        # Receives in a row that brought only messages already seen (their hiding lapsed).
        self.stale_receives = 0
        self.lost_lease = False
        # Seconds an empty receive may wait for messages hidden by someone else.
        self.hidden_budget = float(dlq.peek_visibility_seconds() + 10)

    # --- the pass ------------------------------------------------------------------

    def run(self) -> str:
        """Run to the end of the pass (or cancel); returns the final state."""
        state, error = Operation.State.SUCCEEDED, ""
        try:
            if self.op.total is None:
                self._report(total=self._initial_total())
            while not self.lost_lease:
                if self.op.cancel_requested:
                    state = Operation.State.CANCELLED
                    break
                if not self._step():
                    break
        except AwsError as exc:
            logger.warning("operation %s failed: %s", self.op.pk, exc)
            state, error = Operation.State.FAILED, str(exc)
        finally:
            dlq.release(self.url, self._held_messages())
            self._record_correlations([], flush=True)
        if self.lost_lease:
            logger.warning("operation %s: lease lost, another worker resumes it", self.op.pk)
            return str(self.op.state)
        self.op.finish(self.token, state, error=error, outcome=self._outcome(), **self._fields())
        return str(state)

    def _step(self) -> bool:
        """One batch: receive, filter, move. False when the pass is over."""
        remaining = self._remaining()
        if remaining <= 0:
            return False
        batch = self._retry(
            lambda: sqs.receive_messages(
                self.url,
                max_messages=min(sqs.MAX_BATCH_ENTRIES, remaining),
                visibility_timeout=self.visibility,
                wait_seconds=self.params.wait_seconds,
            )
        )
        self.count.receives += 1
        if not batch:
            return self._wait_for_hidden()
        fresh = [m for m in batch if m.message_id not in self.seen]
        for message in batch:
            if message.message_id in self.held or message.message_id not in self.seen:
                self.held[message.message_id] = message.receipt_handle
        if not fresh:
            return self._stale(batch)
        self.stale_receives = 0
        self.seen.update(m.message_id for m in fresh)
        described = [dlq.describe(m) for m in fresh]
        returned = {
            m.message_id
            for m in described
            if m.message_id in self.copies or (m.sent_at and m.sent_at > self.pass_started)
        }
        self.count.returned += len(returned)
        matching = [
            m for m in described if m.message_id not in returned and self.params.filters.matches(m)
        ]
        # Returned messages are counted apart: they were not in the DLQ when the pass began.
        self.count.skipped += len(described) - len(returned) - len(matching)
        # Beyond max_messages: neither moved nor skipped, just released at the end.
        matching = matching[:remaining]
        for message in matching:
            self.held.pop(message.message_id, None)
        moved = self._move(matching)
        self._record_correlations(moved)
        self.count.batches += 1
        self._throttle()
        wanted = self.params.filters.message_ids
        # A redrive of named messages ends once it has seen them all.
        return self._report(**self._fields()) and not (wanted and wanted <= self.seen)

    def _stale(self, batch: list[sqs.SqsMessage]) -> bool:
        """A receive brought only messages this pass has already seen: the ones it skipped or
        could not send became visible again (a long or rate-limited pass outlives their
        hiding). Hide them again and read on; once as many such receives as there are
        held messages (plus one) found nothing new, every visible message has been seen."""
        self.stale_receives += 1
        if self.stale_receives * sqs.MAX_BATCH_ENTRIES > len(self.held) + sqs.MAX_BATCH_ENTRIES:
            return False
        handles = {f"h{i}": m.receipt_handle for i, m in enumerate(batch)}
        try:
            sqs.change_visibility_batch(self.url, handles, self.visibility)
        except AwsError as exc:
            logger.warning("operation %s: could not hide seen messages: %s", self.op.pk, exc)
            return False
        return self._report()

    def _wait_for_hidden(self) -> bool:
        """An empty receive while other messages are in flight (a peek, or the batch of a
        killed worker, hid them): wait for them to come back, within a bounded budget."""
        if self.hidden_budget <= 0:
            return False
        try:
            in_flight = sqs.queue_attributes(self.url).in_flight
        except AwsError:
            return False
        if in_flight <= len(self.held) + self.count.delete_failed:
            return False
        pause = min(self.hidden_budget, 2.0)
        self.sleep(pause)
        self.hidden_budget -= pause
        return self._report()

    def _remaining(self) -> int:
        if self.params.max_messages is None:
            return sqs.MAX_BATCH_ENTRIES
        return int(self.params.max_messages) - self.count.moved

    def _initial_total(self) -> int:
        try:
            depth = sqs.queue_attributes(self.url).visible
        except AwsError as exc:
            logger.warning("operation %s: no queue depth: %s", self.op.pk, exc)
            depth = 0
        if self.params.max_messages is not None:
            depth = min(depth, int(self.params.max_messages))
        return depth

    # --- moving one batch ----------------------------------------------------------

    def _move(self, messages: list[dlq.DlqMessage]) -> list[dlq.DlqMessage]:
        """Send ``messages`` to their destinations and delete the sent ones. Returns the moved."""
        by_destination: dict[str, list[dlq.DlqMessage]] = {}
        for message in messages:
            if in_fifo_dedup_window(message):
                self._fail([message], "inside the FIFO deduplication window")
                continue
            url = self._destination(message.source_arn or self.params.destination_arn)
            if url is None:
                self._fail([message], "no destination queue")
                continue
            by_destination.setdefault(url, []).append(message)
        moved: list[dlq.DlqMessage] = []
        for url, group in by_destination.items():
            index = {f"m{i}": m for i, m in enumerate(group)}
            entries = [send_entry(m.raw, key) for key, m in index.items()]
            for batch in split_batches(entries):
                sent = self._send(url, batch)
                sent_messages = [index[key] for key in sent]
                self._delete(sent_messages)
                moved.extend(sent_messages)
                self._fail([index[e["Id"]] for e in batch if e["Id"] not in sent], "send failed")
        self.count.moved += len(moved)
        self.moved_this_run += len(moved)
        return moved

    def _destination(self, arn: str) -> str | None:
        if not arn:
            return None
        if arn not in self.destinations:
            try:
                self.destinations[arn] = self._retry(lambda: sqs.queue_url_for_arn(arn))
            except AwsError as exc:
                logger.warning("operation %s: destination %s: %s", self.op.pk, arn, exc)
                return None
        return self.destinations[arn]

    def _send(self, url: str, batch: list[dict[str, Any]]) -> set[str]:
        """Send a batch, retrying throttled calls and failed entries that were not the
        sender's fault, with backoff. Returns the ids of the entries sent."""
        pending = {entry["Id"]: entry for entry in batch}
        sent: set[str] = set()
        for attempt in range(MAX_ATTEMPTS):
            try:
                result = sqs.send_message_batch(url, list(pending.values()))
            except AwsError as exc:
                if not exc.transient:
                    logger.warning("operation %s: send to %s: %s", self.op.pk, url, exc)
                    break
                self._backoff(attempt)
                continue
            for key in result.succeeded:
                sent.add(key)
                pending.pop(key, None)
            self.copies.update(result.message_ids.values())
            for failure in result.failed:
                if failure.sender_fault:
                    logger.warning("operation %s: entry refused: %s", self.op.pk, failure.code)
                    pending.pop(failure.entry_id, None)
            if not pending:
                break
            self._backoff(attempt)
        return sent

    def _delete(self, messages: list[dlq.DlqMessage]) -> None:
        pending = {f"d{i}": m.raw.receipt_handle for i, m in enumerate(messages)}
        for attempt in range(MAX_ATTEMPTS):
            if not pending:
                return
            try:
                result = sqs.delete_message_batch(self.url, pending)
            except AwsError as exc:
                if not exc.transient:
                    break
                self._backoff(attempt)
                continue
            for key in result.succeeded:
                pending.pop(key, None)
            if all(f.sender_fault for f in result.failed):
                break
            self._backoff(attempt)
        # Sent but still in the DLQ: it will come back, a duplicate (consumers are idempotent).
        self.count.delete_failed += len(pending)

    def _fail(self, messages: list[dlq.DlqMessage], why: str) -> None:
        for message in messages:
            self.held[message.message_id] = message.raw.receipt_handle
        if messages:
            logger.warning(
                "operation %s: %d messages not moved: %s", self.op.pk, len(messages), why
            )
        self.count.failed += len(messages)

    def _held_messages(self) -> list[sqs.SqsMessage]:
        return [sqs.SqsMessage(key, handle, "", {}, {}) for key, handle in self.held.items()]

    def _record_correlations(self, moved: list[dlq.DlqMessage], *, flush: bool = False) -> None:
        """Remember the moved correlation IDs; written every few batches and at the end
        (one INSERT per batch would cost as much as the batch's three AWS calls)."""
        self.touched.update(m.correlation_id[:256] for m in moved if m.correlation_id)
        if not self.touched or not (flush or len(self.touched) >= TOUCHED_FLUSH):
            return
        try:
            TouchedCorrelation.record(self.op.pk, self.touched)
        except IntegrityError:
            logger.warning("operation %s: could not record correlation IDs", self.op.pk)
        self.touched.clear()

    # --- pacing, retries, reporting --------------------------------------------------

    def _retry(self, call: Callable[[], Any]) -> Any:
        for attempt in range(MAX_ATTEMPTS):
            try:
                return call()
            except AwsError as exc:
                if not exc.transient or attempt == MAX_ATTEMPTS - 1:
                    raise
                self._backoff(attempt)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> None:
        self.sleep(min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt))

    def _throttle(self) -> None:
        """Sleep so the run stays under ``rate`` messages per second, reporting meanwhile
        so the lease does not lapse during a slow redrive."""
        if not self.params.rate:
            return
        due = self.moved_this_run / float(self.params.rate) - (self.clock() - self.started)
        while due > 0 and not self.lost_lease and not self.op.cancel_requested:
            pause = min(due, self.lease / 3)
            self.sleep(pause)
            due -= pause
            if due > 0:
                self._report()

    def _fields(self) -> dict[str, Any]:
        return {
            "moved": self.count.moved,
            "failed": self.count.failed,
            "skipped": self.count.skipped,
            "progress": {
                "receives": self.count.receives,
                "batches": self.count.batches,
                "delete_failed": self.count.delete_failed,
                "returned": self.count.returned,
                "held": len(self.held),
            },
        }

    def _outcome(self) -> dict[str, Any]:
        return {
            "moved": self.count.moved,
            "failed": self.count.failed,
            "skipped": self.count.skipped,
            "delete_failed": self.count.delete_failed,
            "returned": self.count.returned,
            "destinations": sorted(self.destinations),
        }

    def _report(self, **fields: Any) -> bool:
        if not self.op.report(self.token, lease_seconds=self.lease, **fields):
            self.lost_lease = True
        return not self.lost_lease


@dataclass
class StartRequest:
    """What an operator (UI or command line) asks for."""

    dlq_url: str
    params: RedriveParams
    reason: str
    user: Any = None
    user_name: str = ""
    native: bool = False


def create(request: StartRequest) -> Operation:
    """Write the Operation row (``IntegrityError`` if another is active on this DLQ)."""
    kind = Operation.Kind.NATIVE_REDRIVE if request.native else Operation.Kind.REDRIVE
    with transaction.atomic():
        return Operation.objects.create(
            kind=kind,
            target=request.dlq_url,
            target_label=sqs.queue_name_from_url(request.dlq_url),
            parameters=request.params.to_parameters(),
            reason=request.reason,
            requested_by=request.user,
            requested_by_name=request.user_name,
        )


def start(request: StartRequest) -> Operation:
    """Write the Operation row and enqueue its task once the row is committed.

    Raises ``IntegrityError`` when another operation is active on this DLQ."""
    from operations.enqueue import enqueue

    op = create(request)
    enqueue(op)  # QueueUnavailable (the row failed) when the broker cannot take it
    return op


def active_operation(target: str) -> Operation | None:
    """The pending or running operation on ``target``, if any (for "already running" links)."""
    return Operation.objects.filter(
        environment=environments.current_name(), target=target, state__in=Operation.ACTIVE_STATES
    ).first()


def run_inline(op: Operation, *, sleep: Callable[[float], None] = time.sleep) -> Operation:
    """Claim and run ``op`` in this process (``manage.py redrive --wait``, tests)."""
    token = op.claim(lease_seconds())
    if token is None:
        return op
    Redrive(op, token, sleep=sleep).run()
    op.refresh_from_db()
    return op
