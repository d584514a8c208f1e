"""GetMetricData with metric math, and the requests AWS refuses, through boto3.

Expected values follow the CloudWatch metric math reference: an operator between two series
gives a point where both have one; SUM of an array sums per timestamp; FILL fills the period
grid; IF picks per point. Errors follow the GetMetricData API reference (Id pattern
``^[a-z][a-zA-Z0-9_]*$``, unique Ids, Period 1/5/10/30 or a multiple of 60, at most 500 queries).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

BASE = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
A = {0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0}  # minute -> value
B = {0: 10.0, 2: 20.0, 3: 30.0}


def _put(client: Any, namespace: str) -> None:
    data = [
        {"MetricName": metric, "Timestamp": BASE + timedelta(minutes=m), "Value": v}
        for metric, points in (("A", A), ("B", B))
        for m, v in points.items()
    ]
    client("cloudwatch").put_metric_data(Namespace=namespace, MetricData=data)


def _stat(query_id: str, namespace: str, metric: str, **extra: Any) -> dict[str, Any]:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": metric},
            "Period": 60,
            "Stat": "Sum",
        },
        "ReturnData": False,
        **extra,
    }


def _query(client: Any, namespace: str, *expressions: dict[str, Any]) -> dict[str, Any]:
    _put(client, namespace)
    response = client("cloudwatch").get_metric_data(
        MetricDataQueries=[_stat("a", namespace, "A"), _stat("b", namespace, "B"), *expressions],
        StartTime=BASE,
        EndTime=BASE + timedelta(minutes=5),
        ScanBy="TimestampAscending",
    )
    return {r["Id"]: r for r in response["MetricDataResults"]}


def _minutes(result: dict[str, Any]) -> dict[int, float]:
    return {
        int((t - BASE).total_seconds() // 60): v
        for t, v in zip(result["Timestamps"], result["Values"], strict=True)
    }


def test_adding_two_series_keeps_the_timestamps_both_have(client, name):
    results = _query(client, name, {"Id": "e", "Expression": "a + b"})
    assert list(results) == ["e"]  # ReturnData false leaves out a and b
    assert _minutes(results["e"]) == {0: 11.0, 2: 23.0, 3: 34.0}


def test_sum_of_an_array_adds_what_each_timestamp_has(client, name):
    results = _query(client, name, {"Id": "e", "Expression": "SUM([a, b])"})
    assert _minutes(results["e"]) == {0: 11.0, 1: 2.0, 2: 23.0, 3: 34.0}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("FILL(b, 0)", {0: 10.0, 1: 0.0, 2: 20.0, 3: 30.0, 4: 0.0}),
        ("FILL(b, REPEAT)", {0: 10.0, 1: 10.0, 2: 20.0, 3: 30.0, 4: 30.0}),
        ("FILL(b, LINEAR)", {0: 10.0, 1: 15.0, 2: 20.0, 3: 30.0}),
    ],
)
def test_fill_fills_the_period_grid(client, name, expression, expected):
    results = _query(client, name, {"Id": "e", "Expression": expression})
    assert _minutes(results["e"]) == expected


def test_if_picks_per_point_with_comparisons(client, name):
    results = _query(client, name, {"Id": "e", "Expression": "IF(a > 2 AND a != 4, a * 10, 0)"})
    assert _minutes(results["e"]) == {0: 0.0, 1: 0.0, 2: 30.0, 3: 0.0}


def test_expressions_can_use_other_expressions_and_labels(client, name):
    results = _query(
        client,
        name,
        {"Id": "e1", "Expression": "FILL(a, 0) + FILL(b, 0)", "ReturnData": False},
        {"Id": "e2", "Expression": "e1 / 2", "Label": "half"},
    )
    assert list(results) == ["e2"]
    assert (results["e2"]["Label"], _minutes(results["e2"])[4]) == ("half", 0.0)


def _refused(client: Any, queries: list[dict[str, Any]], name: str) -> dict[str, str]:
    _put(client, name)
    with pytest.raises(ClientError) as caught:
        client("cloudwatch").get_metric_data(
            MetricDataQueries=queries, StartTime=BASE, EndTime=BASE + timedelta(minutes=5)
        )
    return dict(caught.value.response["Error"])


def test_an_id_not_starting_with_a_lowercase_letter_is_refused(client, name):
    error = _refused(client, [_stat("Visible", name, "A", ReturnData=True)], name)
    assert error["Code"] == "ValidationError"
    assert error["Message"] == (
        "The value Visible for parameter MetricDataQueries.member.1.Id is not matching the "
        "expected pattern ^[a-z][a-zA-Z0-9_]*$."
    )


def test_duplicate_ids_are_refused(client, name):
    error = _refused(client, [_stat("m", name, "A"), _stat("m", name, "B")], name)
    assert (error["Code"], error["Message"]) == (
        "ValidationError",
        "The values for parameter id in MetricDataQueries are not unique.",
    )


def test_a_period_that_is_not_a_multiple_of_sixty_is_refused(client, name):
    query = _stat("m", name, "A", ReturnData=True)
    query["MetricStat"]["Period"] = 90
    error = _refused(client, [query], name)
    assert error["Code"] == "ValidationError"
    assert "MetricDataQueries.member.1.MetricStat.Period" in error["Message"]


def test_high_resolution_periods_are_accepted(client, name):
    _put(client, name)
    query = _stat("m", name, "A", ReturnData=True)
    query["MetricStat"]["Period"] = 10
    response = client("cloudwatch").get_metric_data(
        MetricDataQueries=[query], StartTime=BASE, EndTime=BASE + timedelta(minutes=5)
    )
    assert [r["Id"] for r in response["MetricDataResults"]] == ["m"]


def test_more_than_500_queries_are_refused(client, name):
    queries = [_stat(f"m{n}", name, "A") for n in range(501)]
    error = _refused(client, queries, name)
    assert error["Code"] == "ValidationError"
    assert "Member must have length less than or equal to 500" in error["Message"]


@pytest.mark.parametrize(
    ("expression", "detail"),
    [
        ("a +", "Unexpected end of expression."),
        ("a + c", "Unrecognized metric or expression id: c."),
        ("SQRT(a)", "Unknown function SQRT."),
        ("SUM(a)", "must return a time series"),
    ],
)
def test_bad_expressions_are_refused_with_their_id(client, name, expression, detail):
    error = _refused(client, [_stat("a", name, "A"), {"Id": "e", "Expression": expression}], name)
    assert error["Code"] == "ValidationError"
    assert error["Message"].startswith("Error in expression e: ")
    assert detail in error["Message"]
