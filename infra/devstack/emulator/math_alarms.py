"""Metric-math alarms: alarms whose ``Metrics`` hold an expression, evaluated like AWS does.

An alarm such as the DLQ alarm on ``visible + in flight``::

    Metrics=[{"Id": "e1", "Expression": "visible + inflight", "ReturnData": True},
             {"Id": "visible", "MetricStat": {...ApproximateNumberOfMessagesVisible...},
              "ReturnData": False},
             {"Id": "inflight", "MetricStat": {...ApproximateNumberOfMessagesNotVisible...},
              "ReturnData": False}]

is evaluated on each tick by computing the returned expression over the alarm's last
``EvaluationPeriods`` periods with the same metric math as ``GetMetricData``
(:mod:`.metric_queries`), then applying the threshold, ``DatapointsToAlarm`` and
``TreatMissingData`` exactly as for a single-metric alarm (:func:`.alarms.judge`).

``PutMetricAlarm`` refuses a ``Metrics`` list AWS refuses (``ValidationError: Invalid metrics
list``): a bad or repeated Id, not exactly one query returning data, a query with both or
neither of ``MetricStat`` and ``Expression``, or an expression that does not parse.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from moto.cloudwatch.exceptions import ValidationError
from moto.cloudwatch.models import Alarm, CloudWatchBackend

from infra.devstack.emulator import alarms, metric_math, metric_queries
from infra.devstack.emulator.metric_math import Series

EPOCH = datetime(1970, 1, 1)


def is_math(alarm: Alarm) -> bool:
    """Whether the alarm watches a metric math expression (not one plain metric)."""
    return bool(alarm.metric_data_queries) and any(q.expression for q in alarm.metric_data_queries)


def _returns(query: Any) -> bool:
    return query.return_data in (None, True, "true")


def queries_of(alarm: Alarm) -> list[dict[str, Any]]:
    """The alarm's ``Metrics`` as GetMetricData queries."""
    return [alarms.query_shape(q) for q in alarm.metric_data_queries or []]


def period_of(alarm: Alarm) -> int:
    """The evaluation period: the returned query's own, else its metrics' shortest."""
    returned = [q for q in alarm.metric_data_queries or [] if _returns(q)]
    if returned and returned[0].period:
        return int(returned[0].period)
    periods = [int(q.metric_stat.period) for q in alarm.metric_data_queries if q.metric_stat]
    return min(periods, default=60)


def evaluate(
    backend: CloudWatchBackend, alarm: Alarm, now: datetime
) -> tuple[str, str, dict[str, Any]] | None:
    """(state, reason, reason data) of a metric-math alarm, or None to leave it as it is."""
    returned = [q for q in alarm.metric_data_queries or [] if _returns(q)]
    if len(returned) != 1:
        return None
    period = period_of(alarm)
    periods = max(1, int(alarm.evaluation_periods or 1))
    now = alarms.utc_naive(now)
    newest = (int(alarms.epoch(now)) // period) * period
    start = EPOCH + timedelta(seconds=newest - periods * period)
    end = EPOCH + timedelta(seconds=newest + period)
    try:
        values = metric_queries.series_for(backend, queries_of(alarm), start, end)
    except ValidationError:
        return None
    series = values.get(returned[0].id)
    if not isinstance(series, Series):
        return None
    if newest not in series.points:
        newest -= period  # the current period has no data yet: judge the last complete one
    points: list[tuple[datetime, tuple[float, float | None] | None]] = []
    for n in range(periods):
        at = newest - n * period
        value = series.points.get(at)
        points.append((EPOCH + timedelta(seconds=at), None if value is None else (value, None)))
    return alarms.judge(alarm, period, points, now)


def _invalid() -> ValidationError:
    return ValidationError("Invalid metrics list")


def validate(queries: list[Any]) -> None:
    """Refuse an alarm's ``Metrics`` list as AWS does."""
    ids = [q.id for q in queries]
    if len(set(ids)) != len(ids) or not all(
        metric_queries.QUERY_ID.fullmatch(str(i or "")) for i in ids
    ):
        raise _invalid()
    if sum(_returns(q) for q in queries) != 1:
        raise _invalid()
    for query in queries:
        if (query.metric_stat is None) == (not query.expression):
            raise _invalid()
        if query.expression:
            try:
                metric_math.parse(query.expression)
            except metric_math.MathError as exc:
                raise _invalid() from exc


def wrap_put_metric_alarm(original: Callable[..., Alarm]) -> Callable[..., Alarm]:
    def put_metric_alarm(self: CloudWatchBackend, *args: Any, **kwargs: Any) -> Alarm:
        queries = kwargs.get("metric_data_queries")
        if queries:
            validate(queries)
        return original(self, *args, **kwargs)

    return put_metric_alarm
