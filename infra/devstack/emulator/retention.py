"""Bounded history: what the emulator keeps expires or is capped, as on AWS.

moto keeps everything it is sent for as long as the process lives; AWS does not. A devstack
with live traffic therefore grew without bound. :func:`sweep` (run by the emulator about once
a minute) applies AWS's retention, and a cap per store so that a long demo stays flat:

====================  ================================================  =======================
store                 AWS                                               here
====================  ================================================  =======================
X-Ray traces          30 days                                           ``trace_retention``
                                                                        (2 h) and ``limit``
                                                                        traces
Logs events           the log group's retention (never, if unset)       the same, and ``limit``
                                                                        events per group
EventBridge archive   the archive's ``RetentionDays`` (0 = forever)     the same, and ``limit``
                                                                        events per archive
SQS messages          ``MessageRetentionPeriod`` (moto checks it only   the same, on every
                      when a message is received)                       sweep
DynamoDB              TTL deletes; stream records 24 h; shard           :mod:`.dynamodb`
                      iterators 15 min
Logs Insights         query results 7 days                              the newest
                                                                        ``QUERY_LIMIT``
alarm history         about 14 days                                     ``limit`` per alarm
====================  ================================================  =======================

Also bounded here: the receipt handles moto remembers for deleted SQS messages (so that a
repeated delete succeeds): the newest ``RECEIPT_HANDLE_LIMIT`` per queue.
CloudWatch metric samples have their own retention (:func:`.metrics.sample`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from infra.devstack.emulator import dynamodb, xray

log = logging.getLogger(__name__)

DEFAULT_TRACE_RETENTION = timedelta(hours=2)
DEFAULT_LIMIT = 10_000
QUERY_LIMIT = 100
RECEIPT_HANDLE_LIMIT = 10_000
_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class Limits:
    """How much history the emulator keeps (see the module docstring)."""

    trace_retention: timedelta = DEFAULT_TRACE_RETENTION
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("the history limit must be at least 1")
        if self.trace_retention <= timedelta(0):
            raise ValueError("the trace retention must be positive")


def _regions(backend_dict: Any) -> Iterator[Any]:
    for regions in list(backend_dict.values()):
        yield from list(regions.values())


def _leading(items: list[Any], expired: Any) -> int:
    """How many items at the front of ``items`` (oldest first) are expired."""
    count = 0
    while count < len(items) and expired(items[count]):
        count += 1
    return count


# --- X-Ray -------------------------------------------------------------------------------------


def _trace_last_activity(trace: dict[str, Any]) -> float:
    times = [
        float(t)
        for segment in list(trace.get("segments") or [])
        for t in (segment.start_time, segment.end_time)
        if isinstance(t, int | float)
    ]
    return max(times, default=0.0)


def trim_traces(now: datetime, limits: Limits) -> int:
    """Forget traces idle for longer than the retention, and the oldest past the limit."""
    from moto.xray.models import xray_backends

    cutoff = (now - limits.trace_retention - _EPOCH).total_seconds()
    dropped = 0
    for backend in _regions(xray_backends):
        traces = backend._segment_collection._traces
        doomed = [
            tid for tid, trace in list(traces.items()) if _trace_last_activity(trace) < cutoff
        ]
        for trace_id in doomed:
            traces.pop(trace_id, None)
        excess = len(traces) - limits.limit
        # Insertion-ordered: the traces seen first come first.
        for trace_id in list(traces)[: max(0, excess)]:
            traces.pop(trace_id, None)
        dropped += len(doomed) + max(0, excess)
        cache = backend.__dict__.get(xray.VIEW_CACHE)
        if cache:
            for trace_id in [tid for tid in list(cache) if tid not in traces]:
                cache.pop(trace_id, None)
    return dropped


# --- CloudWatch Logs ---------------------------------------------------------------------------


def _trim_group(group: Any, now_ms: float, limit: int) -> int:
    streams = list(group.streams.values())
    dropped = 0
    if group.retention_in_days:
        cutoff = now_ms - int(group.retention_in_days) * 86_400_000
        for stream in streams:
            count = _leading(stream.events, lambda e, c=cutoff: e.timestamp < c)
            del stream.events[:count]
            dropped += count
    total = sum(len(stream.events) for stream in streams)
    if total > limit:
        stamps = sorted(event.timestamp for stream in streams for event in list(stream.events))
        threshold = stamps[total - limit]
        for stream in streams:
            count = _leading(stream.events, lambda e, t=threshold: e.timestamp < t)
            del stream.events[:count]
            dropped += count
    # The event-log target writes one stream per event: drop the streams emptied here.
    for stream in streams:
        if not stream.events and stream.last_ingestion_time is not None:
            group.streams.pop(stream.log_stream_name, None)
    return dropped


def trim_logs(now: datetime, limits: Limits) -> int:
    from moto.logs.models import logs_backends

    now_ms = (now - _EPOCH).total_seconds() * 1000
    dropped = 0
    for backend in _regions(logs_backends):
        for group in list(backend.groups.values()):
            dropped += _trim_group(group, now_ms, limits.limit)
        queries = backend.queries
        for query_id in list(queries)[: max(0, len(queries) - QUERY_LIMIT)]:
            queries.pop(query_id, None)
    return dropped


# --- EventBridge archives ----------------------------------------------------------------------


def _event_time(event: dict[str, Any]) -> datetime:
    """An archived event's time, naive UTC: moto stores epoch seconds (an ISO string once a
    target delivery has formatted the same dict)."""
    value = event.get("time")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _EPOCH + timedelta(seconds=float(value))
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.max
    return moment.replace(tzinfo=None) - (moment.utcoffset() or timedelta(0))


def trim_archives(now: datetime, limits: Limits) -> int:
    from moto.events.models import events_backends

    dropped = 0
    for backend in _regions(events_backends):
        for archive in list(backend.archives.values()):
            events = archive.events
            count = 0
            if int(archive.retention or 0) > 0:
                cutoff = now - timedelta(days=int(archive.retention))
                count = _leading(events, lambda e, c=cutoff: _event_time(e) < c)
            count = max(count, len(events) - limits.limit)
            del events[:count]
            dropped += count
    return dropped


# --- SQS -----------------------------------------------------------------------------------------


class RecentSet:
    """A set that forgets its oldest members past ``limit`` (moto's deleted receipt handles)."""

    def __init__(self, items: Iterable[str] = (), limit: int = RECEIPT_HANDLE_LIMIT) -> None:
        self.limit = limit
        self._items: OrderedDict[str, None] = OrderedDict()
        self.update(items)

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: str) -> None:
        self.update([item])

    def update(self, items: Iterable[str]) -> None:
        for item in items:
            self._items[item] = None
            self._items.move_to_end(item)
        while len(self._items) > self.limit:
            self._items.popitem(last=False)

    def discard(self, item: str) -> None:
        self._items.pop(item, None)


def expire_messages(now: datetime) -> int:
    """Remove messages older than their queue's ``MessageRetentionPeriod``."""
    from moto.sqs.models import sqs_backends

    now_ms = (now - _EPOCH).total_seconds() * 1000
    dropped = 0
    for backend in _regions(sqs_backends):
        for queue in list(backend.queues.values()):
            if not isinstance(queue.deleted_messages, RecentSet):
                queue.deleted_messages = RecentSet(queue.deleted_messages)
            keep_ms = int(getattr(queue, "message_retention_period", 4 * 86_400)) * 1000
            with queue._messages_lock:
                expired = [
                    m
                    for m in queue._messages
                    if m.sent_timestamp is not None and m.sent_timestamp + keep_ms <= now_ms
                ]
                for message in expired:
                    queue._messages.remove(message)
                    queue.pending_messages.discard(message)
            dropped += len(expired)
    return dropped


# --- CloudWatch alarms ---------------------------------------------------------------------------


def trim_alarm_history(limits: Limits) -> int:
    from moto.cloudwatch.models import cloudwatch_backends

    dropped = 0
    for backend in _regions(cloudwatch_backends):
        for alarm in list(backend.alarms.values()):
            excess = len(alarm.history) - limits.limit
            if excess > 0:
                del alarm.history[:excess]
                dropped += excess
    return dropped


def sweep(now: datetime, limits: Limits) -> dict[str, int]:
    """Apply every retention and cap once; ``now`` is naive UTC. Returns what was dropped."""
    dropped = {
        "traces": trim_traces(now, limits),
        "log_events": trim_logs(now, limits),
        "archived_events": trim_archives(now, limits),
        "sqs_messages": expire_messages(now),
        "alarm_history": trim_alarm_history(limits),
    }
    dropped.update(dynamodb.sweep(now, limits.limit))
    if any(dropped.values()):
        log.debug("emulator housekeeping dropped %s", dropped)
    return dropped
