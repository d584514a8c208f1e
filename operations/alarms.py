"""Alarms and the alert drill-down: from an alarm to its cause and its fix.

The list reuses the cached discovery of ``operations.topology``. Every time the
dashboard sees alarms it records their state changes as ``AlarmTransition`` rows,
because ``DescribeAlarmHistory`` keeps only about 14 days. The detail of one
alarm shows the metric around each state change (±1 h), the merged history, the
tree of a composite alarm's children, and for a DLQ alarm the DLQ's messages
that arrived in the alarm's window, grouped by error and event type.

The detail's AWS reads (the graphs' ``GetMetricData`` and the DLQ peek) go through
the read cache like every other read: ten engineers opening one alarm's link cost
AWS one set of reads, and the DLQ is peeked (its messages hidden for a few seconds)
at most once per cache TTL.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.db.models import Max, Q
from django.utils import timezone

from operations import dlq_peek, environments, topology
from operations.aws import cloudwatch
from operations.aws.cloudwatch import Alarm, AlarmDetail, MetricQuery
from operations.aws.errors import AwsError
from operations.cache import cached
from operations.models import AlarmTransition

logger = logging.getLogger(__name__)

STATES = ("ALARM", "INSUFFICIENT_DATA", "OK")
STATE_CLASS = {"ALARM": "alarm", "OK": "ok", "INSUFFICIENT_DATA": "insufficient"}
HISTORY_DAYS = 14
GRAPH_MARGIN = timedelta(hours=1)
# State changes drawn, newest first (the older ones are listed but not graphed).
MAX_GRAPHS = 20
# Windows closer together than this many datapoints share one GetMetricData call
# (CloudWatch bills per metric requested, not per datapoint; a week of minutes).
MAX_POINTS_PER_FETCH = 7 * 24 * 60
# CloudWatch keeps 1-minute data for 15 days, 5-minute data for 63 days, then hourly
# data: a window older than that must ask for a coarser period or gets no datapoints.
PERIOD_BY_AGE = ((timedelta(days=63), 3600), (timedelta(days=15), 300))
MAX_TREE_DEPTH = 5
DLQ_METRICS = {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"}
DLQ_PEEK_LIMIT = 100
NO_ERROR = "(no error recorded)"
NO_TYPE = "(unknown type)"


class UnknownAlarm(LookupError):
    """No alarm has this name."""


# --- the list ----------------------------------------------------------------------------


@dataclass
class AlarmList:
    alarms: list[Alarm]
    error: str = ""
    stale: bool = False
    counts: dict[str, int] = field(default_factory=dict)


def list_alarms(state: str = "") -> AlarmList:
    """Every metric and composite alarm (optionally only those in ``state``), worst first.

    Records the state changes it sees. ``state`` must be one of ``STATES`` or empty.
    """
    if state and state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}")
    found = topology.alarms()
    alarms = list(found.value or [])
    if found.ok and alarms:
        record_transitions(alarms)
    counts = {s: sum(1 for a in alarms if a.state == s) for s in STATES}
    shown = [a for a in alarms if not state or a.state == state]
    shown.sort(key=lambda a: (topology.ALARM_STATE_RANK.get(a.state, 1), a.name))
    return AlarmList(alarms=shown, error=found.error, stale=found.stale, counts=counts)


def record_transitions(alarms: Iterable[Alarm]) -> int:
    """Upsert each alarm's current state as an ``AlarmTransition`` if it is newer than the
    last one recorded. Returns how many rows were added.

    The time is ``StateTransitionedTimestamp`` where AWS gives it: ``StateUpdatedTimestamp``
    also moves when only the reason changes, which is not a transition."""
    current = [a for a in alarms if a.changed_at is not None]
    if not current:
        return 0
    names = [a.name for a in current]
    here = environments.current_name()
    mine = AlarmTransition.objects.filter(environment=here)
    last_at = dict(
        mine.filter(alarm_name__in=names)
        .values("alarm_name")
        .annotate(last=Max("changed_at"))
        .values_list("alarm_name", "last")
    )
    last_state = {
        t.alarm_name: t.new_state
        for t in mine.filter(alarm_name__in=list(last_at), changed_at__in=list(last_at.values()))
        if last_at.get(t.alarm_name) == t.changed_at
    }
    rows = [
        AlarmTransition(
            environment=here,
            alarm_name=a.name,
            alarm_arn=a.arn,
            old_state=last_state.get(a.name, ""),
            new_state=a.state,
            reason=a.state_reason[:10_000],
            changed_at=a.changed_at,
        )
        for a in current
        if a.changed_at is not None
        and (last_at.get(a.name) is None or a.changed_at > last_at[a.name])
    ]
    AlarmTransition.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def record_history(items: Iterable[cloudwatch.AlarmHistoryItem], arn: str = "") -> None:
    """Keep AWS's state-change history beyond its 14 days (of the current environment)."""
    here = environments.current_name()
    rows = [
        AlarmTransition(
            environment=here,
            alarm_name=item.alarm_name,
            alarm_arn=arn,
            old_state=item.old_state,
            new_state=item.new_state,
            reason=item.reason[:10_000],
            changed_at=item.timestamp,
        )
        for item in items
        if item.new_state
    ]
    AlarmTransition.objects.bulk_create(rows, ignore_conflicts=True)


# --- the detail --------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    old_state: str
    new_state: str
    reason: str
    source: str  # "AWS", "dashboard" or "AWS + dashboard"


@dataclass
class Graph:
    """A metric around one state change, drawn as an SVG polyline (0..600 x 0..120)."""

    change: HistoryEntry | None
    start: datetime
    end: datetime
    points: str = ""
    threshold_y: float | None = None
    marker_x: float | None = None
    low: float = 0.0
    high: float = 0.0
    count: int = 0
    latest: float | None = None
    timestamps: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    threshold: float | None = None
    around: datetime | None = None  # the state change the graph is centred on

    @property
    def title(self) -> str:
        if self.change is None:
            return "Around the last update"
        when = self.change.at.strftime("%Y-%m-%d %H:%M:%S")
        return f"{self.change.old_state or '?'} → {self.change.new_state} at {when} UTC"

    def chart(self) -> dict[str, object]:
        """The data block the vendored uPlot charts (``static/js/charts.js``) draw."""
        labels = ["value"]
        data: list[list[float | None]] = [list(self.timestamps), list(self.values)]
        if self.threshold is not None:
            labels.append("threshold")
            data.append([self.threshold] * len(self.timestamps))
        chart: dict[str, object] = {"title": self.title, "unit": "", "labels": labels, "data": data}
        if self.around is not None:
            # Centred on the change (±1 h even where the hour after has not happened yet),
            # with a marker line at it.
            at = self.around.timestamp()
            margin = GRAPH_MARGIN.total_seconds()
            chart |= {"x_range": [at - margin, at + margin], "marker": at}
        return chart


@dataclass
class TreeNode:
    name: str
    state: str
    kind: str
    reason: str
    children: list[TreeNode] = field(default_factory=list)
    missing: bool = False
    truncated: bool = False


@dataclass
class MessageGroup:
    error: str
    event_type: str
    correlation_ids: list[str]
    count: int
    message_ids: list[str] = field(default_factory=list)


@dataclass
class DlqDrilldown:
    queue_name: str
    queue_url: str
    window_start: datetime
    window_end: datetime
    groups: list[MessageGroup] = field(default_factory=list)
    examined: int = 0
    error: str = ""
    stale: bool = False  # the groups come from an earlier sample; ``error`` says why
    sampled: datetime | None = None

    @property
    def correlation_ids(self) -> list[str]:
        return sorted({cid for g in self.groups for cid in g.correlation_ids})

    @property
    def message_ids(self) -> list[str]:
        return [mid for g in self.groups for mid in g.message_ids]

    @property
    def matching(self) -> int:
        return sum(g.count for g in self.groups)


@dataclass
class Drilldown:
    detail: AlarmDetail
    history: list[HistoryEntry] = field(default_factory=list)
    history_error: str = ""
    graphs: list[Graph] = field(default_factory=list)
    graph_error: str = ""
    graphs_omitted: int = 0  # older state changes that have no graph
    tree: TreeNode | None = None
    dlq: DlqDrilldown | None = None

    @property
    def alarm(self) -> Alarm:
        return self.detail.alarm


def get_alarm(name: str) -> AlarmDetail:
    """The alarm called ``name``; ``UnknownAlarm`` if none (AwsError on AWS failures)."""
    found = cached(f"alarm:{name}", lambda: cloudwatch.describe_alarm(name))
    if found.value is None:
        if found.error:
            raise AwsError(found.error, code=found.error_code, operation="DescribeAlarms")
        raise UnknownAlarm(name)
    return found.value


def drilldown(name: str) -> Drilldown:
    """Everything the alarm detail page shows; ``UnknownAlarm`` if there is no such alarm."""
    detail = get_alarm(name)
    record_transitions([detail.alarm])
    result = Drilldown(detail=detail)
    result.history, result.history_error = history(detail.alarm)
    if detail.alarm.kind == "composite":
        result.tree = children_tree(detail.alarm)
    else:
        result.graphs, result.graph_error = graphs(detail, result.history)
        result.graphs_omitted = max(0, len(result.history) - MAX_GRAPHS)
    queue = dlq_queue_name(detail.alarm)
    if queue:
        result.dlq = dlq_messages(queue, alarm_window(detail.alarm, result.history))
    return result


def history(alarm: Alarm) -> tuple[list[HistoryEntry], str]:
    """AWS's history merged with the recorded transitions, newest first, and any error."""
    end = timezone.now()
    error = ""
    aws_items: list[cloudwatch.AlarmHistoryItem] = []
    found = cached(
        f"alarm-history:{alarm.name}",
        lambda: cloudwatch.describe_alarm_history(
            alarm.name, end - timedelta(days=HISTORY_DAYS), end
        ),
    )
    if found.value is not None:
        aws_items = found.value
        if found.ok:
            record_history(aws_items, alarm.arn)
    error = found.error
    merged: dict[tuple[int, str], HistoryEntry] = {}
    for item in aws_items:
        if item.new_state:
            key = (int(item.timestamp.timestamp()), item.new_state)
            merged[key] = HistoryEntry(
                item.timestamp, item.old_state, item.new_state, item.reason, "AWS"
            )
    shown = AlarmTransition.objects.filter(
        Q(environment=environments.current_name()) | Q(environment=""), alarm_name=alarm.name
    )
    for row in shown[:500]:
        key = (int(row.changed_at.timestamp()), row.new_state)
        if key in merged:
            entry = merged[key]
            merged[key] = HistoryEntry(
                entry.at,
                entry.old_state or row.old_state,
                entry.new_state,
                entry.reason,
                "AWS + dashboard",
            )
        else:
            merged[key] = HistoryEntry(
                row.changed_at, row.old_state, row.new_state, row.reason, "dashboard"
            )
    return sorted(merged.values(), key=lambda e: e.at, reverse=True), error


def _points(
    stamps: list[datetime], values: list[float], start: datetime, end: datetime, ceiling: float
) -> str:
    span = max((end - start).total_seconds(), 1.0)
    coords = []
    for stamp, value in zip(stamps, values, strict=False):
        x = (stamp - start).total_seconds() / span * 600
        y = 120 - (value / ceiling * 110 if ceiling else 0)
        coords.append(f"{x:.1f},{y:.1f}")
    return " ".join(coords)


@dataclass(frozen=True)
class _Window:
    change: HistoryEntry | None
    around: datetime
    start: datetime
    end: datetime
    period: int


def _period(detail: AlarmDetail, start: datetime, now: datetime) -> int:
    """The alarm's period in whole minutes, coarsened to what CloudWatch still keeps
    for data as old as ``start``."""
    period = max(60, detail.period - detail.period % 60)
    for age, step in PERIOD_BY_AGE:
        if now - start > age:
            return -(-period // step) * step
    return period


def _window(detail: AlarmDetail, change: HistoryEntry | None, around: datetime) -> _Window:
    now = timezone.now()
    start = around - GRAPH_MARGIN
    return _Window(
        change, around, start, min(around + GRAPH_MARGIN, now), _period(detail, start, now)
    )


def _fetch_ranges(windows: list[_Window]) -> list[list[_Window]]:
    """The windows grouped into time ranges that one GetMetricData call each covers:
    neighbours with the same period share a call while the range stays under
    ``MAX_POINTS_PER_FETCH`` datapoints."""
    groups: list[list[_Window]] = []
    for window in sorted(windows, key=lambda w: w.start):
        if groups:
            group = groups[-1]
            end = max(max(w.end for w in group), window.end)
            points = (end - group[0].start).total_seconds() / window.period
            if group[0].period == window.period and points <= MAX_POINTS_PER_FETCH:
                group.append(window)
                continue
        groups.append([window])
    return groups


def _draw(detail: AlarmDetail, window: _Window, pairs: list[tuple[datetime, float]]) -> Graph:
    start, end = window.start, window.end
    result = Graph(change=window.change, start=start, end=end, around=window.around)
    stamps = [t for t, _ in pairs]
    values = [v for _, v in pairs]
    ceiling = max([*values, detail.threshold or 0.0, 1.0]) * 1.05
    result.points = _points(stamps, values, start, end, ceiling)
    span = (end - start).total_seconds()
    if detail.threshold is not None:
        result.threshold_y = round(120 - detail.threshold / ceiling * 110, 1)
    result.marker_x = round((window.around - start).total_seconds() / span * 600, 1)
    result.low = min(values, default=0.0)
    result.high = max(values, default=0.0)
    result.count = len(values)
    result.latest = values[-1] if values else None
    result.timestamps = [t.timestamp() for t in stamps]
    result.values = values
    result.threshold = detail.threshold
    return result


def draw_graphs(
    detail: AlarmDetail, moments: list[tuple[HistoryEntry | None, datetime]]
) -> list[Graph]:
    """The alarm's first metric from 1 h before to 1 h after (capped at now) each moment,
    in the order given. Overlapping and nearby windows are fetched together, so N
    state changes cost far fewer than N GetMetricData calls (AwsError on failure)."""
    windows = [_window(detail, change, around) for change, around in moments]
    metric = detail.alarm.metrics[0] if detail.alarm.metrics else None
    if metric is None:
        return [Graph(change=w.change, start=w.start, end=w.end) for w in windows]
    drawn: dict[int, Graph] = {}
    for group in _fetch_ranges([w for w in windows if w.end > w.start]):
        start, end = group[0].start, max(w.end for w in group)
        if detail.queries:
            # A metric-math alarm: draw what it compares with its threshold, not one input.
            series = cloudwatch.get_metric_math(detail.queries, start, end, group[0].period)
        else:
            query = MetricQuery(
                id="m0",
                namespace=metric.namespace,
                metric_name=metric.metric_name,
                dimensions=metric.dimensions,
                stat=detail.statistic,
                period=group[0].period,
            )
            series = cloudwatch.get_metric_data([query], start, end)["m0"]
        pairs = list(zip(series.timestamps, series.values, strict=False))
        for window in group:
            inside = [(t, v) for t, v in pairs if window.start <= t <= window.end]
            drawn[id(window)] = _draw(detail, window, inside)
    return [
        drawn[id(w)] if id(w) in drawn else Graph(change=w.change, start=w.start, end=w.end)
        for w in windows
    ]


def graph(detail: AlarmDetail, change: HistoryEntry | None, around: datetime) -> Graph:
    """The alarm's first metric from ``around`` - 1 h to ``around`` + 1 h (capped at now)."""
    return draw_graphs(detail, [(change, around)])[0]


def graphs(detail: AlarmDetail, changes: list[HistoryEntry]) -> tuple[list[Graph], str]:
    """One graph per state change (the newest ``MAX_GRAPHS``), or around the last change,
    and any error. Cached like every AWS read; on an error the last good graphs."""
    shown = changes[:MAX_GRAPHS]
    moments: list[tuple[HistoryEntry | None, datetime]] = [(c, c.at) for c in shown]
    # Keyed on the moments only: a change's source or old state may be filled in later.
    anchor = "|".join(f"{c.at.isoformat()}>{c.new_state}" for c in shown)
    if not moments:
        at = detail.alarm.changed_at
        anchor = at.isoformat() if at else "now"
        moments = [(None, at or timezone.now())]
    metric = detail.alarm.metrics[0] if detail.alarm.metrics else None
    identity = repr(
        (metric, detail.queries, detail.statistic, detail.period, detail.threshold, anchor)
    )
    digest = hashlib.sha1(identity.encode(), usedforsecurity=False).hexdigest()[:16]
    found = cached(
        f"alarm-graphs:{detail.alarm.name}:{digest}", lambda: draw_graphs(detail, moments)
    )
    if found.value is None:
        return [], found.error
    # The cached graphs are for these same moments; keep the entries as merged now.
    current = [
        replace(g, change=change) for g, (change, _) in zip(found.value, moments, strict=False)
    ]
    return current, found.error


def _child_name(reference: str) -> str:
    # A rule may name a child by ARN: arn:aws:cloudwatch:region:account:alarm:name
    return reference.split(":alarm:", 1)[1] if ":alarm:" in reference else reference


def children_tree(alarm: Alarm, max_depth: int = MAX_TREE_DEPTH) -> TreeNode:
    """The composite alarm's children, recursively from its AlarmRule, depth-bounded and
    cycle-safe. Children outside the discovered list are asked for by name."""
    known = {a.name: a for a in (topology.alarms().value or [])}

    def lookup(name: str) -> Alarm | None:
        if name in known:
            return known[name]
        found = cached(f"alarm:{name}", lambda: cloudwatch.describe_alarm(name))
        detail = found.value
        if found.error:
            logger.info("Could not describe child alarm %s: %s", name, found.error)
        if detail is not None:
            known[name] = detail.alarm
        return detail.alarm if detail else None

    def node(current: Alarm, depth: int, seen: frozenset[str]) -> TreeNode:
        result = TreeNode(current.name, current.state, current.kind, current.state_reason)
        for reference in current.children:
            name = _child_name(reference)
            child = lookup(name)
            if child is None:
                result.children.append(TreeNode(name, "", "", "", missing=True))
            elif name in seen or depth >= max_depth:
                result.children.append(
                    TreeNode(name, child.state, child.kind, child.state_reason, truncated=True)
                )
            else:
                result.children.append(node(child, depth + 1, seen | {name}))
        return result

    return node(alarm, 1, frozenset({alarm.name}))


def dlq_queue_name(alarm: Alarm) -> str:
    """The queue a DLQ alarm watches (AWS/SQS depth or age metric with QueueName), or ""."""
    for metric in alarm.metrics:
        if metric.namespace == "AWS/SQS" and metric.metric_name in DLQ_METRICS:
            name = metric.dimension("QueueName")
            if name:
                return name
    return ""


def alarm_window(alarm: Alarm, changes: list[HistoryEntry]) -> tuple[datetime, datetime]:
    """From 1 h before the alarm last went into ALARM until it left ALARM (or now)."""
    now = timezone.now()
    ordered = sorted(changes, key=lambda c: c.at)
    start = None
    end = now
    for index, change in enumerate(ordered):
        if change.new_state == "ALARM":
            start = change.at
            later = [c for c in ordered[index + 1 :] if c.new_state != "ALARM"]
            end = later[0].at if later else now
    if start is None:
        start = alarm.changed_at if alarm.state == "ALARM" else None
    if start is None:
        start = now - timedelta(days=1)
    return start - GRAPH_MARGIN, end


@dataclass(frozen=True)
class SampledMessage:
    """What the drill-down keeps of one peeked DLQ message (small enough to cache)."""

    message_id: str
    sent_at: datetime | None
    error: str
    event_type: str
    correlation_id: str


def sample_dlq(url: str) -> list[SampledMessage]:
    """A bounded sample of the DLQ: the peek every viewer shares (AwsError on failure)."""
    messages = dlq_peek.shared_messages(url)[:DLQ_PEEK_LIMIT]
    return [
        SampledMessage(m.message_id, m.sent_at, m.error, m.event_type, m.correlation_id)
        for m in messages
    ]


def dlq_messages(queue_name: str, window: tuple[datetime, datetime]) -> DlqDrilldown:
    """The DLQ's messages sent within ``window``, grouped. The peek is cached per queue
    (it does not depend on the window), so all viewers within the TTL share one."""
    start, end = window
    result = DlqDrilldown(queue_name=queue_name, queue_url="", window_start=start, window_end=end)
    # Only the URL is needed: the structure read has it without reading depths; a queue
    # created since that read is in the current list.
    inventory = topology.queue_structure()
    queue = inventory.value.queues.get(queue_name) if inventory.value else None
    if queue is None:
        inventory = topology.queues()
        queue = inventory.value.queues.get(queue_name) if inventory.value else None
    if queue is None:
        result.error = inventory.error or f"The queue {queue_name} was not found."
        return result
    result.queue_url = queue.url
    url = queue.url
    found = cached(f"alarm-dlq-sample:{queue_name}", lambda: sample_dlq(url))
    result.error, result.stale, result.sampled = found.error, found.stale, found.fetched
    if found.value is None:
        return result
    result.examined = len(found.value)
    grouped: dict[tuple[str, str], list[SampledMessage]] = defaultdict(list)
    for message in found.value:
        if message.sent_at is None or start <= message.sent_at <= end:
            grouped[(message.error or NO_ERROR, message.event_type or NO_TYPE)].append(message)
    result.groups = [
        MessageGroup(
            error=error,
            event_type=event_type,
            correlation_ids=sorted({m.correlation_id for m in messages if m.correlation_id}),
            count=len(messages),
            message_ids=[m.message_id for m in messages],
        )
        for (error, event_type), messages in sorted(grouped.items(), key=lambda kv: -len(kv[1]))
    ]
    return result
