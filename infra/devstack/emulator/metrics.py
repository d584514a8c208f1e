"""AWS-published metrics that moto does not produce: AWS/SQS, AWS/Lambda and AWS/Events.

Counters are collected by hooks on moto's backends (see :mod:`infra.devstack.emulator.hooks`)
and by :func:`Counters.lambda_invocation`; :func:`sample` turns them, plus each queue's gauges,
into datapoints in moto's CloudWatch backend, so ``GetMetricData``, ``GetMetricStatistics``,
``ListMetrics`` and alarms see them like on AWS.

Datapoints are written per whole minute, as AWS publishes these metrics: a gauge sampled twice
in one minute keeps its latest value, a counter adds up. Sampling more often than once a minute
therefore refreshes the current minute instead of adding points.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from moto.cloudwatch.models import CloudWatchBackend, MetricAggregatedDatum, MetricDatum

Dims = tuple[tuple[str, str], ...]
STATE_ATTR = "_eventops_metric_index"
PRUNED_ATTR = "_eventops_last_prune"
RESOLUTION_S = 60


@dataclass
class Stats:
    """Sum/min/max/count of a sampled value (message sizes, durations)."""

    count: int = 0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)


@dataclass
class QueueCounters:
    sent: int = 0
    received: int = 0
    deleted: int = 0
    empty_receives: int = 0
    sizes: Stats | None = None


@dataclass
class LambdaCounters:
    invocations: int = 0
    errors: int = 0
    throttles: int = 0
    durations: Stats | None = None


@dataclass
class RuleCounters:
    matched: int = 0
    invocations: int = 0
    failed: int = 0


class Counters:
    """Thread-safe counters since the last sample, keyed by (account, region, resource...)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.queues: dict[tuple[str, str, str], QueueCounters] = {}
        self.lambdas: dict[tuple[str, str, str], LambdaCounters] = {}
        self.rules: dict[tuple[str, str, str, str], RuleCounters] = {}

    def queue_sent(self, account: str, region: str, queue: str, size: int) -> None:
        with self._lock:
            counters = self.queues.setdefault((account, region, queue), QueueCounters())
            counters.sent += 1
            counters.sizes = counters.sizes or Stats()
            counters.sizes.add(float(size))

    def queue_received(self, account: str, region: str, queue: str, count: int) -> None:
        with self._lock:
            counters = self.queues.setdefault((account, region, queue), QueueCounters())
            counters.received += count
            if count == 0:
                counters.empty_receives += 1

    def queue_deleted(self, account: str, region: str, queue: str) -> None:
        with self._lock:
            self.queues.setdefault((account, region, queue), QueueCounters()).deleted += 1

    def lambda_invocation(
        self,
        account: str,
        region: str,
        function_name: str,
        duration_ms: float,
        error: bool,
        throttled: bool,
    ) -> None:
        with self._lock:
            counters = self.lambdas.setdefault((account, region, function_name), LambdaCounters())
            if throttled:
                # A throttled request never runs: it counts as a throttle, not an invocation.
                counters.throttles += 1
                return
            counters.invocations += 1
            counters.errors += int(error)
            counters.durations = counters.durations or Stats()
            counters.durations.add(float(duration_ms))

    def rule_delivery(
        self, account: str, region: str, bus: str, rule: str, targets: int, failed: int
    ) -> None:
        with self._lock:
            counters = self.rules.setdefault((account, region, bus, rule), RuleCounters())
            counters.matched += 1
            counters.invocations += targets
            counters.failed += failed

    def drain(
        self,
    ) -> tuple[
        dict[tuple[str, str, str], QueueCounters],
        dict[tuple[str, str, str], LambdaCounters],
        dict[tuple[str, str, str, str], RuleCounters],
    ]:
        """Take the counts since the last call and start again from zero."""
        with self._lock:
            queues, self.queues = self.queues, {}
            lambdas, self.lambdas = self.lambdas, {}
            rules, self.rules = self.rules, {}
        return queues, lambdas, rules


SeriesKey = tuple[str, str, frozenset[tuple[str, str]]]
_KEY_ATTR = "_eventops_series_key"


def series_key(datum: Any) -> SeriesKey:
    """(namespace, name, dimension set) of a datapoint, memoised on the datapoint.

    Dimensions never change after a datapoint is stored, and building the set for every
    datapoint on every request is what makes long-running emulators slow.
    """
    key = datum.__dict__.get(_KEY_ATTR)
    if key is None:
        key = (
            datum.namespace,
            datum.name,
            frozenset((str(d.name), str(d.value)) for d in datum.dimensions),
        )
        datum.__dict__[_KEY_ATTR] = key
    return key


def minute_of(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


class MetricWriter:
    """Writes per-minute datapoints into one moto CloudWatch backend, merging within a minute."""

    def __init__(self, backend: CloudWatchBackend, now: datetime) -> None:
        self.backend = backend
        self.bucket = minute_of(now)
        index = backend.__dict__.get(STATE_ATTR)
        if index is None:
            index = {}
            backend.__dict__[STATE_ATTR] = index
        self.index: dict[tuple[str, str, Dims, datetime], Any] = index

    @staticmethod
    def _dims(dims: Dims) -> list[dict[str, str]]:
        return [{"Name": name, "Value": value} for name, value in dims]

    def gauge(self, namespace: str, name: str, dims: Dims, value: float, unit: str) -> None:
        key = (namespace, name, dims, self.bucket)
        datum = self.index.get(key)
        if isinstance(datum, MetricDatum):
            datum.value = float(value)
            return
        datum = MetricDatum(namespace, name, float(value), self._dims(dims), self.bucket, unit)
        datum.__dict__[_KEY_ATTR] = (namespace, name, frozenset(dims))
        self.index[key] = datum
        self.backend.metric_data.append(datum)

    def count(self, namespace: str, name: str, dims: Dims, value: float, unit: str) -> None:
        key = (namespace, name, dims, self.bucket)
        datum = self.index.get(key)
        if isinstance(datum, MetricDatum):
            datum.value += float(value)
            return
        self.gauge(namespace, name, dims, value, unit)

    def stats(self, namespace: str, name: str, dims: Dims, stats: Stats, unit: str) -> None:
        if stats.count == 0:
            return
        key = (namespace, name, dims, self.bucket)
        datum = self.index.get(key)
        if isinstance(datum, MetricAggregatedDatum):
            datum.sample_count += stats.count
            datum.sum += stats.total
            datum.min = min(datum.min, stats.minimum)
            datum.max = max(datum.max, stats.maximum)
            return
        datum = MetricAggregatedDatum(
            namespace=namespace,
            name=name,
            min_stat=stats.minimum,
            max_stat=stats.maximum,
            sample_count=float(stats.count),
            sum_stat=stats.total,
            dimensions=self._dims(dims),
            timestamp=self.bucket,
            unit=unit,
        )
        datum.__dict__[_KEY_ATTR] = (namespace, name, frozenset(dims))
        self.index[key] = datum
        self.backend.metric_data.append(datum)

    def prune(self, retention: timedelta) -> int:
        """Forget this writer's datapoints older than ``retention``; returns how many.

        Runs at most once per minute bucket: nothing new can expire in between.
        """
        if self.backend.__dict__.get(PRUNED_ATTR) == self.bucket:
            return 0
        self.backend.__dict__[PRUNED_ATTR] = self.bucket
        cutoff = self.bucket - retention
        stale = [key for key in self.index if key[3] < cutoff]
        if not stale:
            return 0
        doomed = {id(self.index.pop(key)) for key in stale}
        # Rebind rather than edit in place: request threads may be iterating the old list.
        self.backend.metric_data = [d for d in self.backend.metric_data if id(d) not in doomed]
        return len(doomed)


def _backends(backend_dict: Any) -> Iterable[tuple[str, str, Any]]:
    for account_id, regions in list(backend_dict.items()):
        for region, backend in list(regions.items()):
            yield account_id, region, backend


def sample(counters: Counters, now: datetime, retention: timedelta) -> int:
    """Write one sample of every AWS/SQS, AWS/Lambda and AWS/Events metric; returns datapoints."""
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.sqs.models import sqs_backends

    queue_counts, lambda_counts, rule_counts = counters.drain()
    writers: dict[tuple[str, str], MetricWriter] = {}

    def writer(account: str, region: str) -> MetricWriter:
        key = (account, region)
        if key not in writers:
            writers[key] = MetricWriter(cloudwatch_backends[account][region], now)
        return writers[key]

    written = 0
    now_ms = (
        now.timestamp() * 1000
        if now.tzinfo
        else (now - datetime(1970, 1, 1)).total_seconds() * 1000
    )
    for account, region, sqs in _backends(sqs_backends):
        for queue in list(sqs.queues.values()):
            out = writer(account, region)
            dims: Dims = (("QueueName", queue.name),)
            messages = list(queue._messages)
            oldest = min((m.sent_timestamp for m in messages if m.sent_timestamp), default=None)
            age = max(0, int((now_ms - oldest) / 1000)) if oldest else 0
            gauges = {
                "ApproximateNumberOfMessagesVisible": (
                    queue.approximate_number_of_messages,
                    "Count",
                ),
                "ApproximateNumberOfMessagesNotVisible": (
                    queue.approximate_number_of_messages_not_visible,
                    "Count",
                ),
                "ApproximateNumberOfMessagesDelayed": (
                    queue.approximate_number_of_messages_delayed,
                    "Count",
                ),
                "ApproximateAgeOfOldestMessage": (age, "Seconds"),
            }
            for name, (value, unit) in gauges.items():
                out.gauge("AWS/SQS", name, dims, value, unit)
            counts = queue_counts.get((account, region, queue.name), QueueCounters())
            out.count("AWS/SQS", "NumberOfMessagesSent", dims, counts.sent, "Count")
            out.count("AWS/SQS", "NumberOfMessagesReceived", dims, counts.received, "Count")
            out.count("AWS/SQS", "NumberOfMessagesDeleted", dims, counts.deleted, "Count")
            out.count("AWS/SQS", "NumberOfEmptyReceives", dims, counts.empty_receives, "Count")
            if counts.sizes:
                out.stats("AWS/SQS", "SentMessageSize", dims, counts.sizes, "Bytes")
            written += 9
    for (account, region, function_name), lam in lambda_counts.items():
        out = writer(account, region)
        dims = (("FunctionName", function_name),)
        out.count("AWS/Lambda", "Invocations", dims, lam.invocations, "Count")
        out.count("AWS/Lambda", "Errors", dims, lam.errors, "Count")
        out.count("AWS/Lambda", "Throttles", dims, lam.throttles, "Count")
        if lam.durations:
            out.stats("AWS/Lambda", "Duration", dims, lam.durations, "Milliseconds")
        written += 4
    for (account, region, bus, rule), counts_ in rule_counts.items():
        out = writer(account, region)
        dims = (
            (("EventBusName", bus), ("RuleName", rule))
            if bus != "default"
            else (("RuleName", rule),)
        )
        out.count("AWS/Events", "MatchedEvents", dims, counts_.matched, "Count")
        out.count("AWS/Events", "Invocations", dims, counts_.invocations, "Count")
        out.count("AWS/Events", "FailedInvocations", dims, counts_.failed, "Count")
        written += 3
    for out in writers.values():
        out.prune(retention)
    return written


def wrap_get_metric_data(original: Callable[..., Any]) -> Callable[..., Any]:
    """``GetMetricData`` for plain ``MetricStat`` queries in one pass over the datapoints.

    moto rescans every datapoint for every period of every query and aligns periods to the
    request's StartTime; AWS aligns them to the period and matches the dimension set exactly.
    Requests with metric math or Metrics Insights expressions keep moto's implementation.
    """
    from moto.cloudwatch.exceptions import ValidationError

    from infra.devstack.emulator.alarms import epoch, statistic, utc_naive

    def get_metric_data(
        self: CloudWatchBackend,
        queries: list[dict[str, Any]],
        start_time: datetime,
        end_time: datetime,
        scan_by: str = "TimestampAscending",
    ) -> list[dict[str, Any]]:
        if any("Expression" in q for q in queries):
            return original(self, queries, start_time, end_time, scan_by)
        start, end = (
            utc_naive(start_time).replace(microsecond=0),
            utc_naive(end_time).replace(microsecond=0),
        )
        if start > end:
            raise ValidationError("The parameter EndTime must be greater than StartTime.")
        if start == end:
            raise ValidationError("The parameter StartTime must not equal parameter EndTime.")
        wanted = {
            (q["MetricStat"]["Metric"]["Namespace"], q["MetricStat"]["Metric"]["MetricName"])
            for q in queries
        }
        series: dict[SeriesKey, list[Any]] = {}
        for datum in list(self.get_all_metrics()):
            if (datum.namespace, datum.name) in wanted and start <= datum.timestamp < end:
                series.setdefault(series_key(datum), []).append(datum)
        results = []
        for query in queries:
            stat_spec = query["MetricStat"]
            metric = stat_spec["Metric"]
            period = int(stat_spec["Period"])
            dims = frozenset((d["Name"], d["Value"]) for d in metric.get("Dimensions", []))
            datums = series.get((metric["Namespace"], metric["MetricName"], dims), [])
            if stat_spec.get("Unit"):
                datums = [d for d in datums if d.unit == stat_spec["Unit"]]
            buckets: dict[float, list[Any]] = {}
            for datum in datums:
                bucket = (epoch(datum.timestamp) // period) * period
                buckets.setdefault(bucket, []).append(datum)
            points = []
            for bucket in sorted(buckets, reverse=scan_by == "TimestampDescending"):
                value = statistic(buckets[bucket], stat_spec["Stat"])
                if value is not None:
                    points.append((datetime(1970, 1, 1) + timedelta(seconds=bucket), value[0]))
            if query.get("ReturnData", True) in (False, "false"):
                continue
            results.append(
                {
                    "id": query["Id"],
                    "label": query.get("Label") or metric["MetricName"],
                    "values": [value for _, value in points],
                    "timestamps": [ts for ts, _ in points],
                    "status_code": "Complete",
                }
            )
        return results

    return get_metric_data


def wrap_get_filtered_metrics(original: Callable[..., Any]) -> Callable[..., Any]:
    """``ListMetrics`` in one pass: one entry per (namespace, name, dimension set).

    moto compares every datapoint with every metric found so far, which takes seconds once a
    few hours of per-minute samples have accumulated.
    """

    def get_filtered_metrics(
        self: CloudWatchBackend,
        metric_name: str,
        namespace: str,
        dimensions: list[dict[str, str]],
    ) -> list[Any]:
        seen: set[SeriesKey] = set()
        found = []
        for datum in list(self.get_all_metrics()):
            key = series_key(datum)
            if key in seen or not datum.filter(namespace, metric_name, dimensions or []):
                continue
            seen.add(key)
            found.append(datum)
        return found

    return get_filtered_metrics
