"""``GetMetricData`` with metric math, and the request checks AWS makes.

Wraps the emulator's one-pass ``GetMetricData`` (:func:`.metrics.wrap_get_metric_data`), which
answers ``MetricStat`` queries: this layer refuses what AWS refuses, fetches every ``MetricStat``
query (also those with ``ReturnData`` false, which expressions may use), evaluates each
``Expression`` with :mod:`.metric_math`, and returns the queries that ask for data, in request
order. ``SEARCH`` and Metrics Insights (``SELECT``) expressions keep moto's handling.

:func:`series_for` is the same evaluation for metric-math alarms (:mod:`.math_alarms`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from moto.cloudwatch.exceptions import ValidationError
from moto.cloudwatch.models import CloudWatchBackend

from infra.devstack.emulator import metric_math
from infra.devstack.emulator.metric_math import MathError, Series, Value

MAX_QUERIES = 500
QUERY_ID = re.compile(r"[a-z][a-zA-Z0-9_]*")
HIGH_RESOLUTION_PERIODS = (1, 5, 10, 30)
EPOCH = datetime(1970, 1, 1)


def _returns(query: dict[str, Any]) -> bool:
    return query.get("ReturnData", True) not in (False, "false")


def validate(queries: list[dict[str, Any]]) -> None:
    """Raise AWS's ``ValidationError`` for a request AWS would refuse."""
    if len(queries) > MAX_QUERIES:
        raise ValidationError(
            f"1 validation error detected: Value '[MetricDataQuery]' at 'metricDataQueries' "
            f"failed to satisfy constraint: Member must have length less than or equal to "
            f"{MAX_QUERIES}"
        )
    bad_ids = [
        f"The value {q.get('Id')} for parameter MetricDataQueries.member.{n}.Id is not "
        "matching the expected pattern ^[a-z][a-zA-Z0-9_]*$."
        for n, q in enumerate(queries, start=1)
        if not QUERY_ID.fullmatch(str(q.get("Id") or ""))
    ]
    if bad_ids:
        raise ValidationError("\n".join(bad_ids))
    ids = [q["Id"] for q in queries]
    if len(set(ids)) != len(ids):
        raise ValidationError("The values for parameter id in MetricDataQueries are not unique.")
    for n, query in enumerate(queries, start=1):
        member = f"MetricDataQueries.member.{n}"
        if "MetricStat" in query and "Expression" in query:
            raise ValidationError(
                f"The parameters {member}.Expression and {member}.MetricStat are mutually "
                "exclusive and you have specified both."
            )
        for where, period in (
            (f"{member}.MetricStat.Period", (query.get("MetricStat") or {}).get("Period")),
            (f"{member}.Period", query.get("Period")),
        ):
            if period is None:
                continue
            period = int(period)
            if period <= 0 or (period % 60 and period not in HIGH_RESOLUTION_PERIODS):
                raise ValidationError(
                    f"The parameter {where} must be 1, 5, 10, 30 or a multiple of 60."
                )


def _is_math(query: dict[str, Any]) -> bool:
    expression = str(query.get("Expression") or "").lstrip().upper()
    return bool(expression) and not expression.startswith(("SEARCH", "SELECT"))


def _epoch(value: datetime) -> int:
    return int((value - EPOCH).total_seconds())


def _default_period(queries: list[dict[str, Any]]) -> int:
    periods = [int(q["MetricStat"]["Period"]) for q in queries if q.get("MetricStat")]
    return min(periods, default=60)


def evaluate(
    stats: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    queries: list[dict[str, Any]],
    start: datetime,
    end: datetime,
) -> dict[str, Value]:
    """Every query's value by Id: ``stats`` answers the MetricStat queries (naive UTC times)."""
    metric_queries = [q for q in queries if "MetricStat" in q]
    values: dict[str, Value] = {}
    for result in stats([{**q, "ReturnData": True} for q in metric_queries]):
        pairs = zip(result["timestamps"], result["values"], strict=True)
        points = {_epoch(t): float(v) for t, v in pairs}
        values[result["id"]] = Series(points, result.get("label") or result["id"])
    by_id = {q["Id"]: q for q in queries}
    parsed: dict[str, metric_math.Node] = {}
    for query in queries:
        if "Expression" in query:
            try:
                parsed[query["Id"]] = metric_math.parse(query["Expression"])
            except MathError as exc:
                raise ValidationError(f"Error in expression {query['Id']}: {exc}") from exc
    period = _default_period(queries)
    first = (_epoch(start) // period) * period
    grid = range(first, _epoch(end), period)
    resolving: list[str] = []

    def resolve(query_id: str) -> Value:
        if query_id in values:
            return values[query_id]
        if query_id not in by_id:
            raise MathError(f"Unrecognized metric or expression id: {query_id}.")
        if query_id in resolving:
            raise MathError(f"Circular dependency involving {query_id}.")
        resolving.append(query_id)
        try:
            value = evaluator.evaluate(parsed[query_id])
        finally:
            resolving.pop()
        values[query_id] = value
        return value

    evaluator = metric_math.Evaluator(resolve, grid, [q["Id"] for q in metric_queries])
    for query_id in parsed:
        try:
            resolve(query_id)
        except MathError as exc:
            raise ValidationError(f"Error in expression {query_id}: {exc}") from exc
    return values


def results(
    queries: list[dict[str, Any]], values: dict[str, Value], descending: bool
) -> list[dict[str, Any]]:
    """``MetricDataResults`` for the queries that return data (an array gives one per series)."""
    out = []
    for query in queries:
        if not _returns(query):
            continue
        value = values.get(query["Id"])
        if isinstance(value, float):
            raise ValidationError(
                f"Error in expression {query['Id']}: The expression must return a time series "
                "or an array of time series, not a single value."
            )
        series = value if isinstance(value, list) else [value or Series()]
        for one in series:
            points = sorted(one.points.items(), reverse=descending)
            points = [(t, v) for t, v in points if not math.isnan(v)]
            label = query.get("Label") or (
                one.label if "MetricStat" in query or isinstance(value, list) else query["Id"]
            )
            out.append(
                {
                    "id": query["Id"],
                    "label": label,
                    "values": [v for _, v in points],
                    "timestamps": [EPOCH + timedelta(seconds=t) for t, _ in points],
                    "status_code": "Complete",
                }
            )
    return out


def _ascending(fetch: Callable[[list[dict[str, Any]]], Any]) -> Callable[..., list[Any]]:
    """MetricStat answers from ``fetch``; no call at all for an expression-only request."""
    return lambda queries: list(fetch(queries)) if queries else []


def wrap_get_metric_data(inner: Callable[..., Any]) -> Callable[..., Any]:
    """Validate like AWS, then evaluate metric math on top of ``inner``'s MetricStat answers."""
    from infra.devstack.emulator.alarms import utc_naive

    def get_metric_data(
        self: CloudWatchBackend,
        queries: list[dict[str, Any]],
        start_time: datetime,
        end_time: datetime,
        scan_by: str = "TimestampAscending",
    ) -> list[dict[str, Any]]:
        validate(queries)
        expressions = [q for q in queries if "Expression" in q]
        if not expressions or not all(_is_math(q) for q in expressions):
            return list(inner(self, queries, start_time, end_time, scan_by))
        start, end = utc_naive(start_time), utc_naive(end_time)
        stats = _ascending(lambda qs: inner(self, qs, start, end, "TimestampAscending"))
        values = evaluate(stats, queries, start, end)
        return results(queries, values, scan_by == "TimestampDescending")

    return get_metric_data


def series_for(
    backend: CloudWatchBackend, queries: list[dict[str, Any]], start: datetime, end: datetime
) -> dict[str, Value]:
    """Every query's value (by Id) between ``start`` and ``end``, as the emulator computes it."""
    stats = _ascending(lambda qs: backend.get_metric_data(qs, start, end, "TimestampAscending"))
    return evaluate(stats, queries, start, end)
