"""The error a consumer recorded for a DLQ message.

This module is the contract the pages, the scan and the failure groups use:
``errors_for(dlq_url, messages)`` returns one ``ConsumerError`` per message ID. The sources,
best first: the consumer's own structured log line for the message (Logs Insights, then
FilterLogEvents: :mod:`operations.triage.logs`), the X-Ray fault of the message's trace,
Lambda's DLQ attributes (``ErrorCode``/``ErrorMessage``), then "no error recorded".

The consumer is found from the message's source queue (:mod:`operations.triage.consumers`).
A lookup is a cached read keyed by the DLQ and the set of message IDs, kept
``ERRORS_MAX_AGE`` seconds; an error found is also kept per message for a day (a message's
recorded failure does not change). A source that fails is skipped with a note and the next
one is tried.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from django.core.cache import cache

from operations.aws import xray
from operations.aws.errors import AwsError
from operations.cache import cache_key, cached, ttl
from operations.dlq import DlqMessage
from operations.triage import consumers as consumer_lookup
from operations.triage import logs as consumer_logs

logger = logging.getLogger(__name__)

NO_ERROR = "(no error recorded)"
# How long a lookup is kept (at least the read TTL), and an error found for a message.
ERRORS_MAX_AGE = 300
RECORDED_MAX_AGE = 24 * 3600
# The log window starts this long before the oldest message's first send.
WINDOW_MARGIN = timedelta(minutes=5)
# Without a send time, the window goes back this far.
DEFAULT_WINDOW = timedelta(days=1)
# Traces asked for per lookup (BatchGetTraces takes 5 a call).
MAX_TRACES = 50
_TRACE_ROOT = re.compile(r"(?:^|;)Root=(1-[0-9a-f]{8}-[0-9a-f]{24})(?:;|$)")


class Source(StrEnum):
    LOGS = "logs"
    XRAY = "xray"
    ATTRIBUTES = "attributes"
    NONE = "none"


@dataclass(frozen=True)
class ConsumerError:
    """What a consumer said about one message; ``consumer`` is its function name, if known."""

    message_id: str
    source: Source
    consumer: str = ""
    exception_name: str = ""
    message: str = ""
    location: str = ""
    correlation_id: str = ""
    logged_at: datetime | None = None
    # The exception's traceback as logged, and the log line's own message.
    traceback: str = ""
    log_message: str = ""

    @property
    def recorded(self) -> bool:
        return self.source is not Source.NONE

    @property
    def summary(self) -> str:
        """One line for a table cell: ``ValueError: amount must be positive``."""
        if not self.recorded:
            return NO_ERROR
        if self.exception_name and self.message:
            return f"{self.exception_name}: {self.message}"
        return self.exception_name or self.message or NO_ERROR


def from_attributes(message: DlqMessage) -> ConsumerError:
    """The last fallbacks: Lambda's DLQ attributes or an on-failure payload, else nothing."""
    error = message.error
    if not error:
        return ConsumerError(message_id=message.message_id, source=Source.NONE)
    code = message.attributes.get("ErrorCode", "")
    text = message.attributes.get("ErrorMessage", "") or error
    return ConsumerError(
        message_id=message.message_id,
        source=Source.ATTRIBUTES,
        exception_name=code if code and code != text else "",
        message=text,
        correlation_id=message.correlation_id,
    )


@dataclass
class Lookup:
    """Recorded errors (logs or X-Ray) by message ID, and notes on sources that failed."""

    errors: dict[str, ConsumerError] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def _memo_key(dlq_url: str, message_id: str) -> str:
    return cache_key(f"triage-error:{_digest(dlq_url, message_id)}")


def lookup(dlq_url: str, messages: Iterable[DlqMessage]) -> Lookup:
    """The consumers' and X-Ray's errors for ``messages`` (cached; see the module doc).

    An error once found is kept per message for ``RECORDED_MAX_AGE`` (a message's failure
    does not change), so a later peek that sees some of the same messages only looks up the
    others."""
    batch = list({m.message_id: m for m in messages}.values())
    if not batch:
        return Lookup()
    keys = {m.message_id: _memo_key(dlq_url, m.message_id) for m in batch}
    memo = cache.get_many(list(keys.values()))
    known = {i: memo[k] for i, k in keys.items() if isinstance(memo.get(k), ConsumerError)}
    rest = [m for m in batch if m.message_id not in known]
    if not rest:
        return Lookup(errors=known)
    ids = sorted(m.message_id for m in rest)
    found = cached(
        f"triage-errors:{_digest(dlq_url, *ids)}",
        lambda: _look_up(dlq_url, rest),
        max_age=max(ERRORS_MAX_AGE, ttl()),
    )
    if found.value is None:
        return Lookup(errors=known, notes=[found.error] if found.error else [])
    fresh = {keys[i]: e for i, e in found.value.errors.items() if i in keys and i not in known}
    if fresh:
        cache.set_many(fresh, RECORDED_MAX_AGE)
    return Lookup(errors={**known, **found.value.errors}, notes=found.value.notes)


def errors_for(dlq_url: str, messages: Iterable[DlqMessage]) -> dict[str, ConsumerError]:
    """The recorded error of each message, by message ID."""
    batch = list(messages)
    recorded = lookup(dlq_url, batch).errors
    return {m.message_id: recorded.get(m.message_id) or from_attributes(m) for m in batch}


def _look_up(dlq_url: str, batch: list[DlqMessage]) -> Lookup:
    result = Lookup()
    for start in range(0, len(batch), consumer_logs.BATCH_SIZE):
        _from_logs(dlq_url, batch[start : start + consumer_logs.BATCH_SIZE], result)
    missing = [m for m in batch if m.message_id not in result.errors]
    try:
        _from_traces(missing, result)
    except AwsError as exc:
        logger.info("X-Ray lookup failed: %s", exc)
        result.notes.append(f"X-Ray could not be read: {exc}")
    return result


def _from_logs(dlq_url: str, batch: list[DlqMessage], result: Lookup) -> None:
    try:
        sources = {m.source_arn for m in batch if m.source_arn}
        if any(not m.source_arn for m in batch):
            sources.update(consumer_lookup.source_queue_arns(dlq_url))
        by_queue = consumer_lookup.consumers_by_queue(sources)
    except AwsError as exc:
        result.notes.append(f"The consumers could not be found: {exc}")
        return
    groups = sorted({c.log_group for found in by_queue.values() for c in found})
    functions = {c.log_group: c.function for found in by_queue.values() for c in found}
    if not groups:
        return
    now = datetime.now(UTC)
    sent = [m.sent_at for m in batch if m.sent_at is not None]
    start = (min(sent) - WINDOW_MARGIN) if sent else now - DEFAULT_WINDOW
    try:
        search = consumer_logs.find_failures(
            groups[:50],
            (m.message_id for m in batch),
            start_ms=int(start.timestamp() * 1000),
            end_ms=int(now.timestamp() * 1000),
        )
    except AwsError as exc:
        result.notes.append(f"The consumers' logs could not be read: {exc}")
        return
    result.notes.extend(n for n in search.notes if n not in result.notes)
    for message_id, failure in search.found.items():
        result.errors[message_id] = ConsumerError(
            message_id=message_id,
            source=Source.LOGS,
            consumer=functions.get(failure.log_group, ""),
            exception_name=failure.exception_name,
            message=failure.message,
            location=failure.location,
            correlation_id=failure.correlation_id,
            logged_at=consumer_logs.logged_at(failure),
            traceback=failure.traceback,
            log_message=failure.log_message,
        )


def trace_id(message: DlqMessage) -> str:
    """The X-Ray trace ID of the message's ``AWSTraceHeader``, or ""."""
    match = _TRACE_ROOT.search(message.trace_header)
    return match.group(1) if match else ""


def _from_traces(missing: list[DlqMessage], result: Lookup) -> None:
    by_trace: dict[str, list[DlqMessage]] = {}
    for message in missing:
        if root := trace_id(message):
            by_trace.setdefault(root, []).append(message)
    if not by_trace:
        return
    for trace in xray.batch_get_traces(list(by_trace)[:MAX_TRACES]):
        fault = _fault_of(trace)
        if fault is None:
            continue
        for message in by_trace.get(trace.id, []):
            result.errors[message.message_id] = ConsumerError(
                message_id=message.message_id,
                source=Source.XRAY,
                consumer=fault.name,
                exception_name=fault.cause_type,
                message=fault.cause,
                location=fault.cause_location,
                correlation_id=message.correlation_id,
                logged_at=datetime.fromtimestamp(fault.start, tz=UTC) if fault.start else None,
            )


def _fault_of(trace: xray.Trace) -> xray.Segment | None:
    """The deepest segment with a recorded exception, preferring faults over errors."""
    best: tuple[int, int, xray.Segment] | None = None
    for depth, segment in trace.walk():
        if not (segment.fault or segment.error) or not (segment.cause or segment.cause_type):
            continue
        rank = (1 if segment.fault else 0, depth)
        if best is None or rank > best[:2]:
            best = (*rank, segment)
    return best[2] if best is not None else None
