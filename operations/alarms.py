"""Alarms and the alert drill-down: from an alarm to its cause and its fix.

The list reuses the cached discovery of ``operations.topology``. Every time the
dashboard sees alarms it records their state changes as ``AlarmTransition`` rows,
because ``DescribeAlarmHistory`` keeps only about 14 days. The detail of one
alarm shows the metric around each state change (±1 h), the merged history, the
tree of a composite alarm's children, and for a DLQ alarm the DLQ's messages
that arrived in the alarm's window, grouped by error and event type.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Max
from django.utils import timezone

from operations import dlq, topology
from operations.aws import cloudwatch
from operations.aws.cloudwatch import Alarm, AlarmDetail, MetricQuery
from operations.aws.errors import AwsError
from operations.cache import cached, describe_error
from operations.models import AlarmTransition

logger = logging.getLogger(__name__)

STATES = ("ALARM", "INSUFFICIENT_DATA", "OK")
STATE_CLASS = {"ALARM": "alarm", "OK": "ok", "INSUFFICIENT_DATA": "insufficient"}
HISTORY_DAYS = 14
GRAPH_MARGIN = timedelta(hours=1)
MAX_GRAPHS = 3
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
    last one recorded. Returns how many rows were added."""
    current = [a for a in alarms if a.state_updated is not None]
    if not current:
        return 0
    names = [a.name for a in current]
    last_at = dict(
        AlarmTransition.objects.filter(alarm_name__in=names)
        .values("alarm_name")
        .annotate(last=Max("changed_at"))
        .values_list("alarm_name", "last")
    )
    last_state = {
        t.alarm_name: t.new_state
        for t in AlarmTransition.objects.filter(
            alarm_name__in=list(last_at), changed_at__in=list(last_at.values())
        )
        if last_at.get(t.alarm_name) == t.changed_at
    }
    rows = [
        AlarmTransition(
            alarm_name=a.name,
            alarm_arn=a.arn,
            old_state=last_state.get(a.name, ""),
            new_state=a.state,
            reason=a.state_reason[:10_000],
            changed_at=a.state_updated,
        )
        for a in current
        if a.state_updated is not None
        and (last_at.get(a.name) is None or a.state_updated > last_at[a.name])
    ]
    AlarmTransition.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def record_history(items: Iterable[cloudwatch.AlarmHistoryItem], arn: str = "") -> None:
    """Keep AWS's state-change history beyond its 14 days."""
    rows = [
        AlarmTransition(
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
        return {"title": self.title, "unit": "", "labels": labels, "data": data}


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
    for row in AlarmTransition.objects.filter(alarm_name=alarm.name)[:500]:
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


def graph(detail: AlarmDetail, change: HistoryEntry | None, around: datetime) -> Graph:
    """The alarm's first metric from ``around`` - 1 h to ``around`` + 1 h (capped at now)."""
    start = around - GRAPH_MARGIN
    end = min(around + GRAPH_MARGIN, timezone.now())
    result = Graph(change=change, start=start, end=end)
    metric = detail.alarm.metrics[0] if detail.alarm.metrics else None
    if metric is None or end <= start:
        return result
    query = MetricQuery(
        id="m0",
        namespace=metric.namespace,
        metric_name=metric.metric_name,
        dimensions=metric.dimensions,
        stat=detail.statistic,
        period=max(60, detail.period - detail.period % 60),
    )
    series = cloudwatch.get_metric_data([query], start, end)["m0"]
    values = series.values
    ceiling = max([*values, detail.threshold or 0.0, 1.0]) * 1.05
    result.points = _points(series.timestamps, values, start, end, ceiling)
    span = (end - start).total_seconds()
    if detail.threshold is not None:
        result.threshold_y = round(120 - detail.threshold / ceiling * 110, 1)
    result.marker_x = round((around - start).total_seconds() / span * 600, 1)
    result.low = min(values, default=0.0)
    result.high = max(values, default=0.0)
    result.count = len(values)
    result.latest = series.latest
    result.timestamps = [t.timestamp() for t in series.timestamps]
    result.values = list(values)
    result.threshold = detail.threshold
    return result


def graphs(detail: AlarmDetail, changes: list[HistoryEntry]) -> tuple[list[Graph], str]:
    """One graph per recent state change (at most ``MAX_GRAPHS``), or around the last update."""
    moments: list[tuple[HistoryEntry | None, datetime]] = [(c, c.at) for c in changes[:MAX_GRAPHS]]
    if not moments:
        moments = [(None, detail.alarm.state_updated or timezone.now())]
    drawn = []
    try:
        for change, at in moments:
            drawn.append(graph(detail, change, at))
    except AwsError as exc:
        return drawn, describe_error(exc)
    return drawn, ""


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
        try:
            detail = cloudwatch.describe_alarm(name)
        except AwsError as exc:
            logger.info("Could not describe child alarm %s: %s", name, exc)
            return None
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
        start = alarm.state_updated if alarm.state == "ALARM" and alarm.state_updated else None
    if start is None:
        start = now - timedelta(days=1)
    return start - GRAPH_MARGIN, end


def dlq_messages(queue_name: str, window: tuple[datetime, datetime]) -> DlqDrilldown:
    """The DLQ's messages sent within ``window`` (a bounded, released peek), grouped."""
    start, end = window
    result = DlqDrilldown(queue_name=queue_name, queue_url="", window_start=start, window_end=end)
    inventory = topology.queues()
    queue = inventory.value.queues.get(queue_name) if inventory.value else None
    if queue is None:
        result.error = inventory.error or f"The queue {queue_name} was not found."
        return result
    result.queue_url = queue.url
    try:
        sample = dlq.peek(queue.url, limit=DLQ_PEEK_LIMIT)
        dlq.release(queue.url, (m.raw for m in sample.messages))
    except AwsError as exc:
        result.error = describe_error(exc)
        return result
    result.examined = len(sample.messages)
    grouped: dict[tuple[str, str], list[dlq.DlqMessage]] = defaultdict(list)
    for message in sample.messages:
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
