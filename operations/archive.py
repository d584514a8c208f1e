"""Archive contents, read from the bus's event log (ARCHITECTURE.md decision 6).

EventBridge has no API that lists archived events, so the IaC sends every event
on the bus to a CloudWatch Logs group with the archive's retention, and this
module browses that log:

- windows up to ``FILTER_WINDOW`` (1 h) use ``FilterLogEvents`` and carry its
  ``nextToken`` from page to page;
- longer windows use a Logs Insights query, polled for at most
  ``QUERY_TIMEOUT_S`` seconds (then "query timed out"); the next page is the
  same query ending just before the oldest event shown.

Every filter is applied again here on the parsed event, so results are exact
even where the server-side filter is coarser (FilterLogEvents' quoted terms) or
ignored (the emulator's Insights). Pagination is bounded: ``PAGE_SIZE`` events a
page, at most ``MAX_CALLS_PER_PAGE`` FilterLogEvents calls to fill one.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from operations import event_pattern, masking
from operations.aws import events, logs
from operations.aws.errors import AwsError
from operations.cache import Cached, cached

logger = logging.getLogger(__name__)

FILTER_WINDOW = timedelta(hours=1)
PAGE_SIZE = 50
MAX_CALLS_PER_PAGE = 5
QUERY_TIMEOUT_S = 30.0
QUERY_POLL_S = 1.0
# Marker that the dashboard puts in Resources when it re-publishes an event.
REPUBLISH_RESOURCE_PREFIX = "eventops:replay/"
EVENT_ID_RE = re.compile(r"^[A-Za-z0-9\-]{1,64}$")
EVENT_LOG_PREFIX = "/aws/events/"
# EventBridge names the rule it creates for an archive "Events-Archive-<archive>".
MANAGED_ARCHIVE_RULE_PREFIX = "Events-Archive-"


class ArchiveNotFound(LookupError):
    pass


class QueryTimedOut(RuntimeError):
    """The Logs Insights query did not finish in time."""


class InvalidTime(ValueError):
    """A time from a URL or a form is not usable; the message says why, for the operator."""


# Times from untrusted input lie in [EARLIEST_TIME, LATEST_TIME): no event is older, and
# the bounds leave room for the windows computed around a time (+-15 minutes, an hour)
# without leaving datetime's range or going below epoch 0, which AWS refuses. Epoch
# milliseconds are ASCII digits only (str.isdigit() also accepts "²", which int()
# refuses), at most 15 of them.
EARLIEST_TIME = datetime(1970, 1, 2, tzinfo=UTC)
LATEST_TIME = datetime(9999, 1, 1, tzinfo=UTC)
MAX_EPOCH_MS_DIGITS = 15


def parse_epoch_ms(value: str, label: str = "time") -> int:
    """Epoch milliseconds from untrusted text (a URL, a form, a page token).

    Raises InvalidTime, with a message for the operator, for anything that is not a time
    in ``[EARLIEST_TIME, LATEST_TIME)``.
    """
    problem = f"The {label} is not a valid time in epoch milliseconds."
    if not (0 < len(value) <= MAX_EPOCH_MS_DIGITS and value.isascii() and value.isdigit()):
        raise InvalidTime(problem)
    ms = int(value)
    try:
        moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidTime(problem) from None
    if not EARLIEST_TIME <= moment < LATEST_TIME:
        raise InvalidTime(problem)
    return ms


def time_from_epoch_ms(value: str, label: str = "time") -> datetime:
    """``parse_epoch_ms`` as a UTC datetime."""
    return datetime.fromtimestamp(parse_epoch_ms(value, label) / 1000, tz=UTC)


@dataclass(frozen=True)
class EventFilters:
    source: str = ""
    detail_type: str = ""
    correlation_id: str = ""
    text: str = ""
    # For someone who may not see events unmasked: the filters look at the masked event,
    # so a search never finds a value they are not shown.
    masked: bool = False

    def matches(self, event: LoggedEvent) -> bool:
        """Masked: found in the original and still there once masked (the mask itself,
        ``••••1111``, is looked for in the masked event only)."""
        if not self._fields_match(event, lenient=self.masked):
            return False
        return not (self.masked and self.active and not self._fields_match(event.masked))

    def _fields_match(self, event: LoggedEvent, *, lenient: bool = False) -> bool:
        def wanted(value: str) -> bool:
            return bool(value) and not (lenient and masking.MASK in value)

        return (
            (not wanted(self.source) or event.source == self.source)
            and (not wanted(self.detail_type) or event.detail_type == self.detail_type)
            and (not wanted(self.correlation_id) or event.correlation_id == self.correlation_id)
            and (not wanted(self.text) or self.text in event.message)
        )

    @property
    def active(self) -> bool:
        return any((self.source, self.detail_type, self.correlation_id, self.text))


@dataclass(frozen=True)
class LoggedEvent:
    """One event from the event log: the envelope EventBridge delivered."""

    envelope: dict[str, Any]
    message: str
    timestamp_ms: int

    @property
    def id(self) -> str:
        return str(self.envelope.get("id", ""))

    @property
    def openable(self) -> bool:
        """Whether the event page can open this ID (EventBridge's are UUIDs; a log line
        written by something else, or an ID a configured mask pattern changed, may not be)."""
        return bool(EVENT_ID_RE.fullmatch(self.id))

    @property
    def source(self) -> str:
        return str(self.envelope.get("source", ""))

    @property
    def detail_type(self) -> str:
        return str(self.envelope.get("detail-type", ""))

    @property
    def detail(self) -> dict[str, Any]:
        detail = self.envelope.get("detail")
        return detail if isinstance(detail, dict) else {}

    @property
    def correlation_id(self) -> str:
        value = self.detail.get("correlationId", "")
        return value if isinstance(value, str) else ""

    @property
    def time(self) -> datetime:
        raw = self.envelope.get("time")
        if isinstance(raw, str):
            try:
                return datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                pass
        return datetime.fromtimestamp(self.timestamp_ms / 1000, tz=UTC)

    @property
    def resources(self) -> list[str]:
        value = self.envelope.get("resources")
        return [str(r) for r in value] if isinstance(value, list) else []

    @property
    def replay_name(self) -> str:
        """Set by EventBridge on events delivered by an archive replay."""
        return str(self.envelope.get("replay-name", "") or "")

    @property
    def republished_by(self) -> str:
        """The operation id, when the dashboard re-published this event."""
        for resource in self.resources:
            if resource.startswith(REPUBLISH_RESOURCE_PREFIX):
                return resource.removeprefix(REPUBLISH_RESOURCE_PREFIX)
        return ""

    @property
    def is_replayed(self) -> bool:
        return bool(self.replay_name or self.republished_by)

    @functools.cached_property
    def masked(self) -> LoggedEvent:
        """The event as someone who may not see secrets sees it (itself when nothing in it
        is masked). For showing and searching only: replays use the archive's bytes."""
        text = masking.mask_text(self.message)
        if text == self.message:
            return self
        return parse_message(text, self.timestamp_ms) or self

    @property
    def pretty(self) -> str:
        """Pretty-printed JSON, for an (auto-escaped) ``<pre>``; the raw line when the
        event is nested too deeply to print again."""
        try:
            return json.dumps(self.envelope, indent=2, sort_keys=True, ensure_ascii=False)
        except RecursionError:
            return self.message


def parse_message(message: str, timestamp_ms: int) -> LoggedEvent | None:
    """The event in one log line, or None for lines that are not an event envelope."""
    try:
        envelope = json.loads(message)
    except (ValueError, TypeError, RecursionError):
        return None
    if not isinstance(envelope, dict) or "detail-type" not in envelope:
        return None
    return LoggedEvent(envelope=envelope, message=message, timestamp_ms=timestamp_ms)


@dataclass
class EventPage:
    events: list[LoggedEvent]
    next_token: str = ""
    mode: str = "filter"  # "filter" (FilterLogEvents) or "insights"
    scanned: int = 0


# --- archives and their buses --------------------------------------------------------------


@dataclass
class ArchiveView:
    """An archive with what the pages need: its bus, rules and event log."""

    archive: events.ArchiveDetail
    log_group: str
    rules: list[events.Rule] = field(default_factory=list)

    @property
    def bus_name(self) -> str:
        return self.archive.bus_name

    def retention_start(self, now: datetime | None = None) -> datetime | None:
        """The oldest time still retained (None when kept indefinitely)."""
        if not self.archive.retention_days:
            return None
        return (now or datetime.now(tz=UTC)) - timedelta(days=self.archive.retention_days)

    def rule(self, name: str) -> events.Rule | None:
        return next((r for r in self.consumer_rules if r.name == name), None)

    @property
    def consumer_rules(self) -> list[events.Rule]:
        """Rules with a pattern, minus the rules EventBridge manages for archives: a
        replay never goes back into an archive."""
        return [
            rule
            for rule in self.rules
            if rule.event_pattern and not rule.name.startswith(MANAGED_ARCHIVE_RULE_PREFIX)
        ]


def list_archive_details() -> Cached[list[events.ArchiveDetail]]:
    """Every archive with its event pattern (DescribeArchive each), cached."""

    def fetch() -> list[events.ArchiveDetail]:
        return [events.describe_archive(a.name) for a in events.list_archives()]

    return cached("archive:details", fetch)


def event_log_group(bus_name: str) -> str:
    """The log group that the bus's catch-all rule writes to.

    Discovered from the rules' CloudWatch Logs targets; falls back to the
    ``/aws/events/<bus>`` convention when no rule targets a log group.
    """
    for rule in events.list_rules(bus_name):
        for target in events.list_targets(rule.name, bus_name):
            if target.service == "logs" and ":log-group:" in target.arn:
                return target.arn.split(":log-group:", 1)[1].removesuffix(":*")
    return EVENT_LOG_PREFIX + bus_name


def load_archive(name: str) -> ArchiveView:
    """The archive, its bus's rules and its event log; ArchiveNotFound if unknown."""
    try:
        detail = events.describe_archive(name)
    except AwsError as exc:
        if exc.not_found:
            raise ArchiveNotFound(name) from exc
        raise
    bus = detail.bus_name
    return ArchiveView(archive=detail, log_group=event_log_group(bus), rules=events.list_rules(bus))


def cached_archive(name: str) -> Cached[ArchiveView]:
    """``load_archive`` through the read cache (ArchiveNotFound propagates)."""
    return cached(f"archive:view:{name}", lambda: load_archive(name))


# --- reading the event log ------------------------------------------------------------------


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _filter_pattern(filters: EventFilters) -> str:
    """A FilterLogEvents quoted term for the most selective filter, or "" (filter locally)."""
    for value in (filters.correlation_id, filters.text, filters.detail_type, filters.source):
        # The mask (••••1111) is never in the log: such a value is matched locally.
        if value and '"' not in value and "\\" not in value and masking.MASK not in value:
            return f'"{value}"'
    return ""


def insights_string(value: str) -> str:
    """A Logs Insights string literal: user input never ends the quotes."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def insights_query(filters: EventFilters, before_ms: int, limit: int) -> str:
    # Values holding the mask (••••1111) are never in the log: they are matched locally.
    def sent(value: str) -> str:
        return "" if masking.MASK in value else value

    filters = EventFilters(
        source=sent(filters.source),
        detail_type=sent(filters.detail_type),
        correlation_id=sent(filters.correlation_id),
        text=sent(filters.text),
    )
    lines = ["fields @timestamp, @message"]
    lines.append(f"filter @timestamp < {int(before_ms)}")
    if filters.source:
        lines.append(f"filter source = {insights_string(filters.source)}")
    if filters.detail_type:
        lines.append(f"filter `detail-type` = {insights_string(filters.detail_type)}")
    if filters.correlation_id:
        lines.append(f"filter detail.correlationId = {insights_string(filters.correlation_id)}")
    if filters.text:
        lines.append(f"filter @message like {insights_string(filters.text)}")
    lines.append("sort @timestamp desc")
    lines.append(f"limit {int(limit)}")
    return " | ".join(lines)


def insights_timestamp(value: str) -> int:
    # AWS returns "2024-05-01 12:00:00.000" (UTC); the emulator returns epoch ms.
    if value.isascii() and value.isdigit():
        try:
            return parse_epoch_ms(value)
        except InvalidTime:
            return 0
    try:
        return _ms(datetime.fromisoformat(value).replace(tzinfo=UTC))
    except ValueError:
        return 0


def read_events(
    group: str,
    start: datetime,
    end: datetime,
    filters: EventFilters,
    *,
    token: str = "",
    page_size: int = PAGE_SIZE,
    sleep: Callable[[float], None] = time.sleep,
    query_timeout_s: float = QUERY_TIMEOUT_S,
) -> EventPage:
    """One page of events in ``[start, end]`` that pass ``filters``.

    ``token`` is the previous page's ``next_token``. Raises ``QueryTimedOut`` and
    ``AwsError``.
    """
    if end - start <= FILTER_WINDOW:
        return _read_filtered(group, start, end, filters, token, page_size)
    return _read_insights(group, start, end, filters, token, page_size, sleep, query_timeout_s)


def _read_filtered(
    group: str, start: datetime, end: datetime, filters: EventFilters, token: str, page_size: int
) -> EventPage:
    page = EventPage(events=[], mode="filter")
    next_token = token
    for _ in range(MAX_CALLS_PER_PAGE):
        result = logs.filter_log_events(
            group,
            start_ms=_ms(start),
            end_ms=_ms(end),
            filter_pattern=_filter_pattern(filters),
            next_token=next_token,
            limit=page_size - len(page.events),
        )
        page.scanned += len(result.events)
        for raw in result.events:
            event = parse_message(raw.message, raw.timestamp_ms)
            if event is not None and filters.matches(event):
                page.events.append(event)
        next_token = result.next_token
        if not next_token or len(page.events) >= page_size:
            break
    page.next_token = next_token
    return page


def _read_insights(
    group: str,
    start: datetime,
    end: datetime,
    filters: EventFilters,
    token: str,
    page_size: int,
    sleep: Callable[[float], None],
    timeout_s: float,
) -> EventPage:
    # The token is the previous page's oldest timestamp; it comes back from the URL.
    before_ms = parse_epoch_ms(token, "page token") if token else _ms(end) + 1
    rows = run_query(
        group,
        start_s=int(start.timestamp()),
        end_s=math.ceil(before_ms / 1000),
        query=insights_query(filters, before_ms, page_size + 1),
        limit=page_size + 1,
        sleep=sleep,
        timeout_s=timeout_s,
    )
    page = EventPage(events=[], mode="insights", scanned=len(rows))
    found = []
    for row in rows:
        stamp = insights_timestamp(row.get("@timestamp", ""))
        event = parse_message(row.get("@message", ""), stamp)
        # Filters again here: the emulator's Insights ignores "filter".
        if event is not None and stamp < before_ms and filters.matches(event):
            found.append(event)
    found.sort(key=lambda e: e.timestamp_ms, reverse=True)
    page.events = found[:page_size]
    if len(found) > page_size:
        page.next_token = str(page.events[-1].timestamp_ms)
    return page


def run_query(
    group: str | Sequence[str],
    *,
    start_s: int,
    end_s: int,
    query: str,
    limit: int,
    sleep: Callable[[float], None] = time.sleep,
    timeout_s: float = QUERY_TIMEOUT_S,
    poll_s: float = QUERY_POLL_S,
) -> list[dict[str, str]]:
    """Start a Logs Insights query and poll it, at most ``timeout_s`` seconds."""
    query_id = logs.start_query(group, start_s=start_s, end_s=end_s, query=query, limit=limit)
    polls = max(1, math.ceil(timeout_s / poll_s))
    for attempt in range(polls):
        results = logs.get_query_results(query_id)
        if results.status == "Complete":
            return results.rows
        if results.status in {"Failed", "Cancelled", "Timeout"}:
            raise QueryTimedOut(f"The Logs Insights query ended as {results.status}.")
        if attempt < polls - 1:
            sleep(poll_s)
    try:
        logs.stop_query(query_id)
    except AwsError as exc:
        logger.info("Could not stop query %s: %s", query_id, exc)
    raise QueryTimedOut(
        f"The Logs Insights query timed out after {timeout_s:.0f} s. Narrow the time window "
        "or add a filter."
    )


def collect_events(
    group: str,
    start: datetime,
    end: datetime,
    filters: EventFilters,
    *,
    cap: int,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[LoggedEvent], bool]:
    """Up to ``cap`` events of the window (all pages); returns (events, truncated)."""
    collected: list[LoggedEvent] = []
    token = ""
    while len(collected) < cap:
        page = read_events(
            group, start, end, filters, token=token, page_size=min(500, cap), sleep=sleep
        )
        collected.extend(page.events)
        token = page.next_token
        if not token:
            return collected[:cap], False
    return collected[:cap], True


def find_event(group: str, event_id: str, around: datetime) -> LoggedEvent | None:
    """One event by its ID, searched within 15 minutes of ``around``."""
    if not EVENT_ID_RE.match(event_id):
        return None
    window = timedelta(minutes=15)
    token = ""
    for _ in range(MAX_CALLS_PER_PAGE * 4):
        result = logs.filter_log_events(
            group,
            start_ms=_ms(around - window),
            end_ms=_ms(around + window),
            filter_pattern=f'"{event_id}"',
            next_token=token,
            limit=100,
        )
        for raw in result.events:
            event = parse_message(raw.message, raw.timestamp_ms)
            if event is not None and event.id == event_id:
                return event
        token = result.next_token
        if not token:
            break
    return None


def matching_rules(event: LoggedEvent, rules: Iterable[events.Rule]) -> list[events.Rule]:
    """The rules whose event pattern matches ``event`` (local matcher, no API calls)."""
    matched = []
    for rule in rules:
        if not rule.event_pattern:
            continue
        try:
            if event_pattern.matches(rule.event_pattern, event.envelope):
                matched.append(rule)
        except event_pattern.InvalidPattern:
            logger.warning("Rule %s has a pattern the local matcher rejects", rule.name)
    return matched
