"""Correlation lookup: everything known about one business transaction.

Input is a correlation ID, an X-Ray trace ID (``1-8hex-24hex``), a W3C trace
ID (32 hex) or an event ID (UUID). Each source is a *panel* computed on its own
(the page loads each through htmx, so a slow source does not hold the others
back); :func:`timeline` runs them all and merges their entries by time, for the
``trace`` command and the page's combined timeline.

Panels are cached for ``EVENTOPS_CACHE_TTL`` seconds (so ten engineers opening
the same incident cost AWS one lookup, and the DLQ is peeked once), and the last
good value is kept longer, shown marked stale when a source fails.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache as django_cache
from django.utils import timezone

from operations import dlq, dlq_peek, event_pattern, topology
from operations.aws import dynamodb, events, logs, xray
from operations.aws.context import ContextThreadPoolExecutor
from operations.aws.errors import AwsError
from operations.cache import Cached, cache_key, cached, ttl
from operations.cache import lookup as cache_lookup
from operations.models import TouchedCorrelation

logger = logging.getLogger(__name__)

MAX_LENGTH = 128
ALLOWED_RE = re.compile(r"^[A-Za-z0-9._:-]+$")
XRAY_TRACE_RE = re.compile(r"^1-[0-9a-fA-F]{8}-[0-9a-fA-F]{24}$")
W3C_TRACE_RE = re.compile(r"^[0-9a-fA-F]{32}$")
UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)

SINCE_CHOICES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "3d": timedelta(days=3),
    "7d": timedelta(days=7),
}
DEFAULT_SINCE = "6h"
MAX_SINCE = timedelta(days=30)  # X-Ray keeps about 30 days.
MAX_EVENTS = 200
MAX_TRACES = 50


class InvalidLookup(ValueError):
    """The search input is not something we can look up; the message says why."""


@dataclass(frozen=True)
class Lookup:
    raw: str
    kind: str  # correlation_id, xray_trace_id, w3c_trace_id, event_id
    value: str  # normalised: a W3C trace ID becomes its X-Ray form

    @property
    def kind_label(self) -> str:
        return {
            "correlation_id": "correlation ID",
            "xray_trace_id": "X-Ray trace ID",
            "w3c_trace_id": "W3C trace ID",
            "event_id": "event ID",
        }[self.kind]


def parse_lookup(raw: str | None) -> Lookup:
    """Validate and classify the search input; ``InvalidLookup`` with a clear message."""
    value = (raw or "").strip()
    if not value:
        raise InvalidLookup("Enter a correlation ID, an X-Ray trace ID or an event ID.")
    if len(value) > MAX_LENGTH:
        raise InvalidLookup(f"An ID is at most {MAX_LENGTH} characters long (got {len(value)}).")
    if not ALLOWED_RE.fullmatch(value):
        raise InvalidLookup(
            "An ID may contain only letters A-Z and a-z, digits and the characters . _ : -"
        )
    if XRAY_TRACE_RE.fullmatch(value):
        return Lookup(raw=value, kind="xray_trace_id", value=value.lower())
    if W3C_TRACE_RE.fullmatch(value):
        low = value.lower()
        return Lookup(raw=value, kind="w3c_trace_id", value=f"1-{low[:8]}-{low[8:]}")
    if UUID_RE.fullmatch(value):
        return Lookup(raw=value, kind="event_id", value=value)
    return Lookup(raw=value, kind="correlation_id", value=value)


_DURATION_RE = re.compile(r"^(\d{1,4})([mhd])$")


def parse_since(raw: str | None) -> timedelta:
    """``"90m"``, ``"6h"``, ``"3d"`` as a timedelta (1 minute to 30 days)."""
    match = _DURATION_RE.fullmatch((raw or DEFAULT_SINCE).strip())
    if not match:
        raise InvalidLookup("The time range must look like 30m, 6h or 7d.")
    amount, unit = int(match.group(1)), match.group(2)
    delta = {
        "m": timedelta(minutes=amount),
        "h": timedelta(hours=amount),
        "d": timedelta(days=amount),
    }[unit]
    if not timedelta(minutes=1) <= delta <= MAX_SINCE:
        raise InvalidLookup("The time range must be between 1 minute and 30 days.")
    return delta


@dataclass(frozen=True)
class Entry:
    """One line of the timeline."""

    at: datetime | None
    source: str
    title: str
    detail: str = ""
    state: str = ""  # a badge modifier: ok, alarm, warn, pending...
    url: str = ""


@dataclass
class Panel:
    key: str
    title: str
    rows: list[Any] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    error: str = ""
    stale: bool = False
    notes: list[str] = field(default_factory=list)
    command_error: str = ""  # ``error`` worded for command output


# --- resolving trace and event IDs to a correlation ID -------------------------------


def _resolve_key(lookup: Lookup) -> str:
    return cache_key(f"correlation:resolve:{lookup.kind}:{lookup.value}")


def resolve_cached(lookup: Lookup) -> str:
    """The correlation ID already resolved for ``lookup``, or the input itself."""
    found = django_cache.get(_resolve_key(lookup))
    return found if isinstance(found, str) else lookup.value


def resolve(lookup: Lookup, since: timedelta) -> str:
    """The correlation ID behind ``lookup`` (a trace's annotation, an event's detail).

    Falls back to the input itself, so a UUID that is a correlation ID still works.
    """
    if lookup.kind == "correlation_id":
        return lookup.value
    known = django_cache.get(_resolve_key(lookup))
    if isinstance(known, str):
        return known
    found = lookup.value
    try:
        if lookup.kind in {"xray_trace_id", "w3c_trace_id"}:
            end = timezone.now()
            for trace in xray.get_traces([lookup.value], end - since, end):
                annotation = trace.annotation(xray.ANNOTATION)
                if isinstance(annotation, str) and ALLOWED_RE.fullmatch(annotation):
                    found = annotation
        else:
            for event in event_log_events(lookup.value, since, limit=20):
                cid = event.correlation_id
                if event.id == lookup.value and cid and ALLOWED_RE.fullmatch(cid):
                    found = cid
                    break
    except AwsError as exc:
        logger.info("Could not resolve %s %s: %s", lookup.kind, lookup.value, exc)
        return found
    django_cache.set(_resolve_key(lookup), found, settings.EVENTOPS_CACHE_TTL)
    return found


# --- sources: the event log, the bus's rules and the DLQs -------------------------------
# Reuses the shared adapters (logs, events), H7's local pattern matcher and H6's DLQ
# peek, so a message or an event reads the same here as on their pages.

EVENT_LOG_PREFIX = "/aws/events/"
REPLAY_RESOURCE_PREFIX = "eventops:replay/"
PEEK_MAX_MESSAGES = 100


@dataclass(frozen=True)
class LoggedEvent:
    """An event as the catch-all rule wrote it to a ``/aws/events/`` log group."""

    id: str
    detail_type: str
    source: str
    time: datetime | None
    resources: tuple[str, ...]
    replay_name: str
    detail: dict[str, Any]
    envelope: dict[str, Any]
    log_group: str

    @property
    def correlation_id(self) -> str:
        value = self.detail.get("correlationId")
        return value if isinstance(value, str) else ""

    @property
    def bus_name(self) -> str:
        return self.log_group.removeprefix(EVENT_LOG_PREFIX)

    @property
    def republished(self) -> bool:
        return any(r.startswith(REPLAY_RESOURCE_PREFIX) for r in self.resources)

    @property
    def pretty(self) -> str:
        return json.dumps(self.envelope, indent=2, sort_keys=True, default=str, ensure_ascii=False)

    def mentions(self, *ids: str) -> bool:
        return bool({self.id, self.correlation_id} & set(ids))


def _logged_event(message: str, log_group: str) -> LoggedEvent | None:
    data = _json_object(message)
    if "detail-type" not in data:
        return None
    detail = data.get("detail")
    resources = data.get("resources")
    return LoggedEvent(
        id=str(data.get("id", "")),
        detail_type=str(data.get("detail-type", "")),
        source=str(data.get("source", "")),
        time=_iso(data.get("time")),
        resources=tuple(str(r) for r in resources) if isinstance(resources, list) else (),
        replay_name=str(data.get("replay-name", "")),
        detail=detail if isinstance(detail, dict) else {},
        envelope=data,
        log_group=log_group,
    )


def _json_object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def event_log_groups() -> list[str]:
    """Log groups that EventBridge rules write events to (``/aws/events/...``), cached."""
    found = topology.event_logs()
    if found.value is None:
        raise AwsError(found.error, code=found.error_code, operation="DescribeLogGroups")
    return [group.name for group in found.value]


def filter_pattern(term: str) -> str:
    """A CloudWatch Logs filter pattern matching ``term`` as a quoted phrase.

    The term was validated to ``[A-Za-z0-9._:-]``; quotes and backslashes are
    escaped anyway so that nothing can end the quoted phrase early.
    """
    escaped = term.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def event_log_events(term: str, since: timedelta, limit: int = MAX_EVENTS) -> list[LoggedEvent]:
    """Events in the event-log groups containing ``term``, oldest first, at most ``limit``."""
    end = timezone.now()
    start_ms, end_ms = int((end - since).timestamp() * 1000), int(end.timestamp() * 1000)
    found: list[LoggedEvent] = []
    for group in event_log_groups():
        token = ""
        while len(found) < limit:
            page = logs.filter_log_events(
                group,
                start_ms=start_ms,
                end_ms=end_ms,
                filter_pattern=filter_pattern(term),
                next_token=token,
                limit=limit,
            )
            found.extend(e for e in (_logged_event(ev.message, group) for ev in page.events) if e)
            token = page.next_token
            if not token:
                break
    found.sort(key=lambda e: e.time or datetime.min.replace(tzinfo=UTC))
    return found[:limit]


def bus_rules(bus_name: str) -> list[tuple[str, str]]:
    """``(name, event pattern)`` of the bus's pattern rules (cached)."""
    rules = cached(
        f"correlation:rules:{bus_name}",
        lambda: [(r.name, r.event_pattern) for r in events.list_rules(bus_name) if r.event_pattern],
    )
    if rules.value is None:
        raise AwsError(rules.error, code=rules.error_code, operation="ListRules")
    return rules.value


def pattern_matches(pattern: str, event: LoggedEvent) -> bool:
    """Whether a rule's pattern matches the event: locally, or by TestEventPattern for a
    pattern the local matcher does not understand."""
    try:
        return event_pattern.matches(pattern, event.envelope)
    except event_pattern.InvalidPattern:
        return events.test_event_pattern(pattern, json.dumps(event.envelope, default=str))


def rules_matching(event: LoggedEvent) -> list[str]:
    """Names of the rules on the event's bus whose pattern matches it."""
    if not event.bus_name:
        return []
    return [name for name, pattern in bus_rules(event.bus_name) if pattern_matches(pattern, event)]


def archives_of(bus_names: Iterable[str]) -> list[str]:
    """Names of the archives of these buses (from the cached discovery; [] if unavailable)."""
    wanted = set(bus_names)
    discovered = topology.buses().value or []
    return sorted(a.name for b in discovered if b.bus.name in wanted for a in b.archives)


@dataclass(frozen=True)
class FoundMessage:
    """A DLQ message (H6's ``DlqMessage``) and the queue it was found in."""

    queue_name: str
    queue_url: str
    message: dlq.DlqMessage

    @property
    def event_id(self) -> str:
        body = self.message.body_json
        return str(body.get("id", "")) if isinstance(body, dict) else ""


@dataclass
class DlqPeek:
    messages: list[FoundMessage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def dead_letter_queues() -> dict[str, str]:
    """Name -> URL of every discovered DLQ (a queue some RedrivePolicy points at)."""
    inventory = topology.queues()
    if inventory.value is None:
        raise AwsError(inventory.error, code=inventory.error_code, operation="ListQueues")
    queues = inventory.value.queues
    return {name: queues[name].url for name in sorted(inventory.value.dlq_names) if name in queues}


def peek_queue(name: str, url: str, limit: int = PEEK_MAX_MESSAGES) -> list[FoundMessage]:
    """A bounded sample of one DLQ: the shared peek of it (``operations.dlq_peek``), read
    once per cache period for every viewer and every lookup."""
    messages = dlq_peek.shared_messages(url)[:limit]
    return [FoundMessage(queue_name=name, queue_url=url, message=m) for m in messages]


def dlq_messages_with(ids: set[str], max_per_queue: int = PEEK_MAX_MESSAGES) -> DlqPeek:
    """Messages in any DLQ whose correlation ID or event ID is one of ``ids``."""
    peek = DlqPeek()
    queues = dead_letter_queues()
    if not queues:
        peek.notes.append("No dead-letter queues were found.")
        return peek
    with ContextThreadPoolExecutor(
        max_workers=min(8, len(queues)), thread_name_prefix="dlq"
    ) as pool:
        sampled = list(pool.map(lambda kv: peek_queue(kv[0], kv[1], max_per_queue), queues.items()))
    for name, messages in zip(queues, sampled, strict=True):
        peek.messages.extend(
            m for m in messages if m.message.correlation_id in ids or m.event_id in ids
        )
        if len(messages) >= max_per_queue:
            peek.notes.append(f"{name}: only the first {max_per_queue} messages were looked at.")
    peek.notes.append(
        "DLQ messages come from the peek shared by every viewer (one per DLQ every "
        f"{ttl()} s): it releases what it receives at once; their receive count went up by one."
    )
    return peek


# --- panels ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WaterfallRow:
    depth: int
    name: str
    origin: str
    offset_ms: float
    duration_ms: float
    # Position on a 0..1000 axis, drawn as an SVG <rect> (no inline styles under the CSP).
    x: int
    width: int
    error: bool
    fault: bool
    throttle: bool
    in_progress: bool
    cause: str
    annotations: dict[str, Any]

    @property
    def state(self) -> str:
        if self.fault:
            return "fault"
        if self.error:
            return "error"
        if self.throttle:
            return "throttle"
        return "ok"


@dataclass(frozen=True)
class TraceView:
    id: str
    start: datetime | None
    duration_ms: float
    has_error: bool
    has_fault: bool
    rows: tuple[WaterfallRow, ...]
    summary_only: bool = False


def waterfall(trace: xray.Trace, max_depth: int = 8) -> list[WaterfallRow]:
    """The trace's segments and subsegments as rows positioned on a 0..1000 axis."""
    spans = list(trace.walk())
    if not spans:
        return []
    begin = min(seg.start for _d, seg in spans)
    finish = max((seg.end if seg.end is not None else seg.start) for _d, seg in spans)
    total = max(finish - begin, 1e-6)
    rows = []
    for depth, seg in spans:
        x = round((seg.start - begin) / total * 1000)
        width = max(2, round(seg.duration / total * 1000))
        rows.append(
            WaterfallRow(
                depth=min(depth, max_depth),
                name=seg.name,
                origin=seg.origin,
                offset_ms=round((seg.start - begin) * 1000, 1),
                duration_ms=round(seg.duration * 1000, 1),
                x=min(x, 998),
                width=min(width, 1000 - min(x, 998)),
                error=seg.error,
                fault=seg.fault,
                throttle=seg.throttle,
                in_progress=seg.in_progress,
                cause=seg.cause,
                annotations={str(k): v for k, v in seg.annotations.items()},
            )
        )
    return rows


def _epoch(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if value else None


def traces_panel(lookup: Lookup, since: timedelta) -> Panel:
    panel = Panel(key="traces", title="X-Ray traces")
    cid = resolve(lookup, since)
    end = timezone.now()
    start = end - since
    summaries = xray.find_trace_summaries(xray.correlation_filter(cid), start, end)
    ids = [s.id for s in summaries][:MAX_TRACES]
    if lookup.kind in {"xray_trace_id", "w3c_trace_id"} and lookup.value not in ids:
        ids.insert(0, lookup.value)
    if len(summaries) > MAX_TRACES:
        panel.notes.append(f"Showing the first {MAX_TRACES} of {len(summaries)} traces.")
    traces = {t.id: t for t in xray.get_traces(ids, start, end)}
    by_id = {s.id: s for s in summaries}
    for trace_id in ids:
        summary = by_id.get(trace_id)
        trace = traces.get(trace_id)
        rows = tuple(waterfall(trace)) if trace else ()
        first = (
            min((r for _d, r in trace.walk()), key=lambda s: s.start, default=None)
            if trace
            else None
        )
        start_at = summary.start if summary else (_epoch(first.start) if first else None)
        duration = (summary.duration if summary and summary.duration is not None else None) or (
            trace.duration if trace and trace.duration else 0.0
        )
        view = TraceView(
            id=trace_id,
            start=start_at,
            duration_ms=round(float(duration) * 1000, 1),
            has_error=bool(summary and summary.has_error) or any(r.error for r in rows),
            has_fault=bool(summary and summary.has_fault) or any(r.fault for r in rows),
            rows=rows,
            summary_only=trace is None,
        )
        panel.rows.append(view)
        state = "alarm" if view.has_fault or view.has_error else "ok"
        entry_name = rows[0].name if rows else (summary.entry_point if summary else "")
        panel.entries.append(
            Entry(
                view.start,
                "X-Ray",
                f"Trace {trace_id}",
                f"{entry_name} {view.duration_ms} ms",
                state,
            )
        )
    if summaries and not traces:
        panel.notes.append(
            "Trace summaries were found but their segments could not be fetched "
            "(Transaction Search retrieval returned nothing yet)."
        )
    return panel


def events_panel(lookup: Lookup, since: timedelta) -> Panel:
    panel = Panel(key="events", title="Events on the bus")
    cid = resolve(lookup, since)
    terms = [cid] if lookup.kind != "event_id" or cid == lookup.value else [cid, lookup.value]
    seen: set[str] = set()
    for term in terms:
        for event in event_log_events(term, since, limit=MAX_EVENTS):
            if event.id in seen or not event.mentions(cid, lookup.value):
                continue
            seen.add(event.id)
            rules = rules_matching(event)
            panel.rows.append({"event": event, "rules": rules})
            panel.entries.append(event_entry(event, rules))
    panel.rows.sort(key=lambda row: row["event"].time or datetime.min.replace(tzinfo=UTC))
    return panel


def event_entry(event: LoggedEvent, rules: list[str]) -> Entry:
    title = f"{event.detail_type} ({event.source})"
    detail = "rules: " + (", ".join(rules) if rules else "none")
    state = "warn" if event.replay_name or event.republished else ""
    return Entry(event.time, "EventBridge", title, detail, state)


def dlq_panel(lookup: Lookup, since: timedelta) -> Panel:
    panel = Panel(key="dlq", title="Dead-letter queue messages")
    cid = resolve(lookup, since)
    peek = dlq_messages_with({cid, lookup.value})
    panel.rows = peek.messages
    panel.notes.extend(peek.notes)
    panel.entries.extend(dlq_entry(found) for found in peek.messages)
    return panel


def dlq_entry(found: FoundMessage) -> Entry:
    message = found.message
    detail = f"received {message.receive_count} times"
    if message.error:
        detail += f"; error: {message.error}"
    title = f"In {found.queue_name}: {message.event_type or 'message'}"
    return Entry(message.sent_at, "SQS DLQ", title, detail, "alarm")


@dataclass(frozen=True)
class IdempotencyRecord:
    table: str
    id: str
    consumer: str
    event_type: str
    status: str
    expires_at: datetime | None

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()


def idempotency_panel(lookup: Lookup, since: timedelta) -> Panel:
    panel = Panel(key="idempotency", title="Idempotency records")
    cid = resolve(lookup, since)
    for table in topology.idempotency_tables():
        for item in dynamodb.query_index(table, "correlation_id", cid):
            expiration = item.get("expiration")
            record = IdempotencyRecord(
                table=table,
                id=str(item.get("id", "")),
                consumer=str(item.get("consumer", "")),
                event_type=str(item.get("event_type", "")),
                status=str(item.get("status", "")),
                expires_at=_epoch(float(expiration))
                if isinstance(expiration, int | float)
                else None,
            )
            panel.rows.append(record)
            state = {"COMPLETED": "ok", "INPROGRESS": "pending"}.get(record.status, "warn")
            title = f"{record.consumer or table}: {record.status or 'unknown'}"
            until = record.expires_at.isoformat() if record.expires_at else "no expiry"
            panel.entries.append(
                Entry(None, "Idempotency", title, f"{record.event_type}, until {until}", state)
            )
    return panel


@dataclass(frozen=True)
class OutboxRecord:
    table: str
    order_id: str
    event_id: str
    event_type: str
    status: str
    created_at: datetime | None
    published_at: datetime | None


def _iso(value: Any) -> datetime | None:
    if isinstance(value, int | float):
        return _epoch(float(value))
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def outbox_panel(lookup: Lookup, since: timedelta) -> Panel:
    panel = Panel(key="outbox", title="Outbox")
    cid = resolve(lookup, since)
    for table in topology.outbox_tables():
        for item in dynamodb.query_index(table, "correlationId", cid):
            pk, sk = str(item.get("pk", "")), str(item.get("sk", ""))
            if not pk.startswith("OUTBOX#"):
                continue
            record = OutboxRecord(
                table=table,
                order_id=pk.removeprefix("OUTBOX#"),
                event_id=sk.removeprefix("EVENT#"),
                event_type=str(item.get("eventType", "")),
                status=str(item.get("status", "")),
                created_at=_iso(item.get("createdAt")),
                published_at=_iso(item.get("publishedAt")),
            )
            panel.rows.append(record)
            state = "ok" if record.status == "PUBLISHED" else "pending"
            title = f"Outbox {record.event_type}: {record.status}"
            panel.entries.append(
                Entry(record.created_at, "Outbox", title, f"order {record.order_id}", state)
            )
    panel.rows.sort(key=lambda r: r.created_at or datetime.min.replace(tzinfo=UTC))
    return panel


def operations_panel(lookup: Lookup, since: timedelta) -> Panel:
    panel = Panel(key="operations", title="Operations that touched this ID")
    cid = resolve(lookup, since)
    touched = (
        TouchedCorrelation.objects.filter(correlation_id__in={cid, lookup.value})
        .select_related("operation")
        .order_by("-operation__created_at")[:100]
    )
    for row in touched:
        op = row.operation
        panel.rows.append(op)
        state = {"succeeded": "ok", "failed": "alarm"}.get(op.state, op.state)
        title = f"{op.get_kind_display()} #{op.pk} on {op.target_label or op.target}"
        panel.entries.append(
            Entry(op.created_at, "Operation", title, f"by {op.requested_by_name}", state)
        )
    return panel


PanelFunction = Callable[[Lookup, timedelta], Panel]
PANELS: dict[str, tuple[str, PanelFunction]] = {
    "traces": ("X-Ray traces", traces_panel),
    "events": ("Events on the bus", events_panel),
    "dlq": ("Dead-letter queue messages", dlq_panel),
    "idempotency": ("Idempotency records", idempotency_panel),
    "outbox": ("Outbox", outbox_panel),
    "operations": ("Operations that touched this ID", operations_panel),
}
# Panels that only read the local database: run in the caller's thread (a test's
# transaction is invisible to other threads' connections) and never cached.
LOCAL_PANELS = frozenset({"operations"})


def _panel_cache_name(key: str, lookup: Lookup, since: timedelta) -> str:
    return f"correlation:{key}:{lookup.kind}:{lookup.value}:{int(since.total_seconds())}"


def cached_panel(key: str, lookup: Lookup, since: timedelta) -> Panel | None:
    """The panel if it was read (fresh, stale or failed), without fetching anything."""
    if key in LOCAL_PANELS:
        return PANELS[key][1](lookup, since)
    found = cache_lookup(_panel_cache_name(key, lookup, since))
    if found is None:
        return None
    return _panel_of(key, found)


def panel(key: str, lookup: Lookup, since: timedelta) -> Panel:
    """One panel, cached; on an AWS error the last good value marked stale, with the error."""
    function = PANELS[key][1]
    if key in LOCAL_PANELS:
        return function(lookup, since)
    result = cached(_panel_cache_name(key, lookup, since), lambda: function(lookup, since))
    return _panel_of(key, result)


def _panel_of(key: str, result: Cached[Any]) -> Panel:
    if not isinstance(result.value, Panel):
        title = PANELS[key][0]
        return Panel(key=key, title=title, error=result.error, command_error=result.command_error)
    if result.error:
        return replace(
            result.value, error=result.error, command_error=result.command_error, stale=True
        )
    return result.value


@dataclass
class Timeline:
    lookup: Lookup
    correlation_id: str
    since: timedelta
    panels: dict[str, Panel]
    missing: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        """Titles of the panels that failed with nothing to show."""
        return [p.title for p in self.panels.values() if p.error and not p.stale]

    @property
    def entries(self) -> list[Entry]:
        merged = [entry for p in self.panels.values() for entry in p.entries]
        floor = datetime.min.replace(tzinfo=UTC)
        return sorted(merged, key=lambda e: (e.at is None, e.at or floor))

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready form (the ``trace --json`` output)."""
        return {
            "query": self.lookup.raw,
            "kind": self.lookup.kind,
            "correlation_id": self.correlation_id,
            "since_seconds": int(self.since.total_seconds()),
            "timeline": [_entry_json(e) for e in self.entries],
            "panels": {
                key: {
                    "title": p.title,
                    "error": p.error,
                    "stale": p.stale,
                    "notes": p.notes,
                    "count": len(p.rows),
                }
                for key, p in self.panels.items()
            },
        }


def _entry_json(entry: Entry) -> dict[str, Any]:
    return {
        "at": entry.at.isoformat() if entry.at else None,
        "source": entry.source,
        "title": entry.title,
        "detail": entry.detail,
        "state": entry.state,
    }


def timeline_so_far(lookup: Lookup, since: timedelta) -> Timeline:
    """The timeline of the panels already loaded (cached); ``missing`` lists the others."""
    panels: dict[str, Panel] = {}
    missing = []
    for key in PANELS:
        found = cached_panel(key, lookup, since)
        if found is None:
            missing.append(key)
        else:
            panels[key] = found
    return Timeline(lookup, resolve_cached(lookup), since, panels, missing)


def timeline(lookup: Lookup, since: timedelta, keys: Iterable[str] | None = None) -> Timeline:
    """Every panel (AWS ones in parallel), merged into one timeline."""
    wanted = list(keys) if keys is not None else list(PANELS)
    remote = [k for k in wanted if k not in LOCAL_PANELS]
    panels: dict[str, Panel] = {}
    with ContextThreadPoolExecutor(
        max_workers=max(1, len(remote)), thread_name_prefix="correlation"
    ) as pool:
        futures = {key: pool.submit(panel, key, lookup, since) for key in remote}
        for key in wanted:
            if key in LOCAL_PANELS:
                panels[key] = panel(key, lookup, since)
        for key, future in futures.items():
            panels[key] = future.result()
    ordered = {key: panels[key] for key in wanted}
    return Timeline(
        lookup=lookup, correlation_id=resolve(lookup, since), since=since, panels=ordered
    )
