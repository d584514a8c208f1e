"""CloudWatch adapter: alarms and metrics, as dataclasses.

``GetMetricData`` is the only metrics call: every page batches its queries into
chunks of 500 (the API's limit per call). ``DescribeAlarms`` is read in pages
of 100 with metric and composite alarms.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from operations.aws.client import client
from operations.aws.errors import translate

METRIC_QUERIES_PER_CALL = 500
ALARMS_PER_PAGE = 100

_CHILD_ALARM = re.compile(r"""(?:ALARM|OK|INSUFFICIENT_DATA)\(\s*["']?([^"')]+?)["']?\s*\)""")


@dataclass(frozen=True)
class AlarmMetric:
    """One metric an alarm watches (directly, or inside its metric math)."""

    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]

    def dimension(self, name: str) -> str | None:
        for key, value in self.dimensions:
            if key == name:
                return value
        return None


@dataclass(frozen=True)
class Alarm:
    """A metric or composite alarm."""

    name: str
    arn: str
    kind: str  # "metric" or "composite"
    state: str  # OK, ALARM, INSUFFICIENT_DATA
    state_reason: str
    state_updated: datetime | None  # any update, including a new reason in the same state
    actions_enabled: bool
    metrics: tuple[AlarmMetric, ...] = ()
    rule: str = ""  # composite alarms only
    state_transitioned: datetime | None = None  # the last change of state itself
    description: str = ""  # AlarmDescription (may name a runbook URL)

    @property
    def changed_at(self) -> datetime | None:
        """When the alarm entered its current state (``StateTransitionedTimestamp``;
        ``StateUpdatedTimestamp`` where AWS does not give it)."""
        return self.state_transitioned or self.state_updated

    @property
    def children(self) -> tuple[str, ...]:
        """Names of the alarms a composite alarm's rule refers to."""
        return tuple(_CHILD_ALARM.findall(self.rule)) if self.rule else ()


@dataclass(frozen=True)
class MetricQuery:
    """One series to fetch. ``id`` must start with a lowercase letter."""

    id: str
    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str
    period: int
    label: str = ""


@dataclass
class MetricSeries:
    """Datapoints of one query, oldest first."""

    id: str
    label: str
    timestamps: list[datetime] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    @property
    def latest(self) -> float | None:
        return self.values[-1] if self.values else None


def _metric(stat: dict) -> AlarmMetric:
    dims = tuple((str(d["Name"]), str(d["Value"])) for d in stat.get("Dimensions", []))
    return AlarmMetric(
        namespace=str(stat.get("Namespace", "")),
        metric_name=str(stat.get("MetricName", "")),
        dimensions=dims,
    )


def _metric_alarm(raw: dict) -> Alarm:
    metrics: list[AlarmMetric] = []
    if raw.get("MetricName"):
        metrics.append(_metric(raw))
    for query in raw.get("Metrics", []):
        stat = query.get("MetricStat")
        if stat:
            metrics.append(_metric(stat["Metric"]))
    return Alarm(
        name=raw["AlarmName"],
        arn=raw.get("AlarmArn", ""),
        kind="metric",
        state=raw.get("StateValue", "INSUFFICIENT_DATA"),
        state_reason=raw.get("StateReason", ""),
        state_updated=raw.get("StateUpdatedTimestamp"),
        actions_enabled=bool(raw.get("ActionsEnabled", True)),
        metrics=tuple(metrics),
        state_transitioned=raw.get("StateTransitionedTimestamp"),
        description=str(raw.get("AlarmDescription") or ""),
    )


def _composite_alarm(raw: dict) -> Alarm:
    return Alarm(
        name=raw["AlarmName"],
        arn=raw.get("AlarmArn", ""),
        kind="composite",
        state=raw.get("StateValue", "INSUFFICIENT_DATA"),
        state_reason=raw.get("StateReason", ""),
        state_updated=raw.get("StateUpdatedTimestamp"),
        actions_enabled=bool(raw.get("ActionsEnabled", True)),
        rule=raw.get("AlarmRule", ""),
        state_transitioned=raw.get("StateTransitionedTimestamp"),
        description=str(raw.get("AlarmDescription") or ""),
    )


def describe_alarms(prefix: str = "") -> list[Alarm]:
    """Every metric and composite alarm (names starting with ``prefix``), 100 a page."""
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html
    kwargs: dict[str, object] = {
        "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
        "PaginationConfig": {"PageSize": ALARMS_PER_PAGE},
    }
    if prefix:
        kwargs["AlarmNamePrefix"] = prefix
    alarms: list[Alarm] = []
    try:
        for page in client("cloudwatch").get_paginator("describe_alarms").paginate(**kwargs):
            alarms.extend(_metric_alarm(raw) for raw in page.get("MetricAlarms", []))
            alarms.extend(_composite_alarm(raw) for raw in page.get("CompositeAlarms", []))
    except Exception as exc:
        raise translate(exc, "DescribeAlarms") from exc
    return alarms


def _chunks(items: Sequence[MetricQuery], size: int) -> Iterable[Sequence[MetricQuery]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _request(query: MetricQuery) -> dict:
    return {
        "Id": query.id,
        "Label": query.label or query.id,
        "ReturnData": True,
        "MetricStat": {
            "Metric": {
                "Namespace": query.namespace,
                "MetricName": query.metric_name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in query.dimensions],
            },
            "Period": query.period,
            "Stat": query.stat,
        },
    }


def get_metric_data(
    queries: Sequence[MetricQuery], start: datetime, end: datetime
) -> dict[str, MetricSeries]:
    """Fetch every query's series between ``start`` and ``end``.

    One ``GetMetricData`` call per 500 queries (plus its own ``NextToken``
    pages when a chunk exceeds the datapoint limit). Series are oldest first.
    """
    ids = [q.id for q in queries]
    if len(set(ids)) != len(ids):
        raise ValueError("metric query ids must be unique")
    bad = [i for i in ids if not re.fullmatch(r"[a-z][A-Za-z0-9_]*", i)]
    if bad:
        raise ValueError(f"metric query ids must start with a lowercase letter: {bad[:3]}")
    series = {q.id: MetricSeries(id=q.id, label=q.label or q.id) for q in queries}
    points: dict[str, list[tuple[datetime, float]]] = {q.id: [] for q in queries}
    paginator = client("cloudwatch").get_paginator("get_metric_data")
    for chunk in _chunks(queries, METRIC_QUERIES_PER_CALL):
        # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html
        try:
            pages = paginator.paginate(
                MetricDataQueries=[_request(q) for q in chunk],
                StartTime=start,
                EndTime=end,
                ScanBy="TimestampAscending",
            )
            for page in pages:
                for result in page.get("MetricDataResults", []):
                    got = points.setdefault(result["Id"], [])
                    got.extend(
                        zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
                    )
        except Exception as exc:
            raise translate(exc, "GetMetricData") from exc
    for query_id, pairs in points.items():
        if query_id not in series:
            continue
        pairs.sort(key=lambda pair: pair[0])
        series[query_id].timestamps = [t for t, _ in pairs]
        series[query_id].values = [float(v) for _, v in pairs]
    return series


# --- alarm history, detail and children (H8) -----------------------------------------


@dataclass(frozen=True)
class AlarmHistoryItem:
    """One ``DescribeAlarmHistory`` record; state changes carry old and new state."""

    alarm_name: str
    timestamp: datetime
    item_type: str
    summary: str
    old_state: str = ""
    new_state: str = ""
    reason: str = ""


@dataclass(frozen=True)
class AlarmQuery:
    """One entry of a metric-math alarm's ``Metrics``: an expression or a metric."""

    id: str
    expression: str = ""
    return_data: bool = True
    metric: AlarmMetric | None = None
    stat: str = ""
    period: int = 60


@dataclass(frozen=True)
class AlarmDetail:
    """An alarm plus what a graph of it needs (metric alarms: threshold, period, statistic;
    metric-math alarms also their ``queries``, the graph plots the returned expression)."""

    alarm: Alarm
    threshold: float | None = None
    comparison: str = ""
    period: int = 60
    statistic: str = "Maximum"
    evaluation_periods: int = 1
    queries: tuple[AlarmQuery, ...] = ()


def _alarm_queries(raw: dict) -> tuple[AlarmQuery, ...]:
    """A metric-math alarm's queries; () when the alarm watches one metric."""
    if not any(q.get("Expression") for q in raw.get("Metrics", [])):
        return ()
    return tuple(
        AlarmQuery(
            id=str(q["Id"]),
            expression=str(q.get("Expression", "")),
            return_data=bool(q.get("ReturnData", True)),
            metric=_metric(q["MetricStat"]["Metric"]) if q.get("MetricStat") else None,
            stat=str(q.get("MetricStat", {}).get("Stat", "")),
            period=int(q.get("MetricStat", {}).get("Period") or q.get("Period") or 60),
        )
        for q in raw["Metrics"]
    )


def get_metric_math(
    queries: Sequence[AlarmQuery], start: datetime, end: datetime, period: int
) -> MetricSeries:
    """The series of the expression a metric-math alarm returns, its metrics at ``period``."""
    returned = next(q for q in queries if q.return_data)
    request: list[dict] = []
    for q in queries:
        if q.metric is None:
            request.append({"Id": q.id, "Expression": q.expression, "ReturnData": q.return_data})
            continue
        metric = MetricQuery(
            q.id, q.metric.namespace, q.metric.metric_name, q.metric.dimensions, q.stat, period
        )
        request.append({**_request(metric), "ReturnData": q.return_data})
    result = MetricSeries(id=returned.id, label=returned.id)
    pairs: list[tuple[datetime, float]] = []
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html
    try:
        for page in (
            client("cloudwatch")
            .get_paginator("get_metric_data")
            .paginate(
                MetricDataQueries=request, StartTime=start, EndTime=end, ScanBy="TimestampAscending"
            )
        ):
            for found in page.get("MetricDataResults", []):
                if found["Id"] == returned.id:
                    pairs += zip(found.get("Timestamps", []), found.get("Values", []), strict=False)
    except Exception as exc:
        raise translate(exc, "GetMetricData") from exc
    pairs.sort(key=lambda pair: pair[0])
    result.timestamps, result.values = [t for t, _ in pairs], [float(v) for _, v in pairs]
    return result


def _history_item(raw: dict) -> AlarmHistoryItem:
    old_state = new_state = reason = ""
    if raw.get("HistoryItemType") == "StateUpdate":
        try:
            data = json.loads(raw.get("HistoryData") or "{}")
        except ValueError:
            data = {}
        if isinstance(data, dict):
            old_state = str((data.get("oldState") or {}).get("stateValue", ""))
            new_state = str((data.get("newState") or {}).get("stateValue", ""))
            reason = str((data.get("newState") or {}).get("stateReason", ""))
    return AlarmHistoryItem(
        alarm_name=str(raw.get("AlarmName", "")),
        timestamp=raw["Timestamp"],
        item_type=str(raw.get("HistoryItemType", "")),
        summary=str(raw.get("HistorySummary", "")),
        old_state=old_state,
        new_state=new_state,
        reason=reason or str(raw.get("HistorySummary", "")),
    )


def describe_alarm_history(
    name: str, start: datetime, end: datetime, *, item_type: str = "StateUpdate", limit: int = 500
) -> list[AlarmHistoryItem]:
    """State changes of one alarm (of every alarm when ``name`` is empty) between ``start``
    and ``end``, newest first, at most ``limit``.

    AWS keeps about 14 days of history; moto does not implement this call.
    """
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarmHistory.html
    params: dict[str, object] = {
        **({"AlarmName": name} if name else {}),
        "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
        "HistoryItemType": item_type,
        "StartDate": start,
        "EndDate": end,
        "MaxRecords": 100,
        "ScanBy": "TimestampDescending",
    }
    items: list[AlarmHistoryItem] = []
    try:
        while len(items) < limit:
            page = client("cloudwatch").describe_alarm_history(**params)
            items.extend(_history_item(raw) for raw in page.get("AlarmHistoryItems", []))
            token = page.get("NextToken")
            if not token:
                break
            params["NextToken"] = token
    except Exception as exc:
        raise translate(exc, "DescribeAlarmHistory") from exc
    return items[:limit]


def describe_alarm(name: str) -> AlarmDetail | None:
    """One metric or composite alarm by exact name, or None if there is none."""
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html
    try:
        page = client("cloudwatch").describe_alarms(
            AlarmNames=[name], AlarmTypes=["MetricAlarm", "CompositeAlarm"]
        )
    except Exception as exc:
        raise translate(exc, "DescribeAlarms") from exc
    for raw in page.get("MetricAlarms", []):
        threshold = raw.get("Threshold")
        queries = _alarm_queries(raw)
        returned = [q for q in queries if q.return_data and q.metric is None]
        periods = [q.period for q in queries if q.metric is not None]
        return AlarmDetail(
            alarm=_metric_alarm(raw),
            threshold=float(threshold) if threshold is not None else None,
            comparison=str(raw.get("ComparisonOperator", "")),
            period=int(raw.get("Period") or min(periods, default=60)),
            statistic=str(raw.get("Statistic") or "Maximum"),
            evaluation_periods=int(raw.get("EvaluationPeriods") or 1),
            queries=queries if returned else (),
        )
    for raw in page.get("CompositeAlarms", []):
        return AlarmDetail(alarm=_composite_alarm(raw))
    return None


def alarm_children(name: str) -> list[Alarm]:
    """The alarms a composite alarm's rule refers to (``ChildrenOfAlarmName``), all pages."""
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html
    children: list[Alarm] = []
    try:
        paginator = client("cloudwatch").get_paginator("describe_alarms")
        for page in paginator.paginate(
            ChildrenOfAlarmName=name, AlarmTypes=["MetricAlarm", "CompositeAlarm"]
        ):
            children.extend(_metric_alarm(raw) for raw in page.get("MetricAlarms", []))
            children.extend(_composite_alarm(raw) for raw in page.get("CompositeAlarms", []))
    except Exception as exc:
        raise translate(exc, "DescribeAlarms") from exc
    return children


def alarm_tags(arn: str) -> dict[str, str]:
    """The tags of the alarm ``arn`` (``ListTagsForResource``)."""
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_ListTagsForResource.html
    try:
        page = client("cloudwatch").list_tags_for_resource(ResourceARN=arn)
    except Exception as exc:
        raise translate(exc, "ListTagsForResource") from exc
    return {str(t.get("Key", "")): str(t.get("Value", "")) for t in page.get("Tags", [])}
