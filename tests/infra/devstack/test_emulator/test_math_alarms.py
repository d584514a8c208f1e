"""Metric-math alarms: the DLQ alarm on visible + in-flight messages, and PutMetricAlarm's checks.

A peek (ReceiveMessage) hides a DLQ's messages for the visibility timeout. An alarm on
``ApproximateNumberOfMessagesVisible`` alone then goes OK while nothing was fixed; the alarm on
``visible + in flight`` must stay in ALARM (issue 12, item 9).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.infra.devstack.test_emulator.sqs_alarms import (
    dead_letter,
    describe_alarm,
    dlq_alarm,
    dlq_pair,
    drain,
    sns_inbox,
)


def _sqs_stat(query_id: str, metric: str, queue: str) -> dict[str, Any]:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/SQS",
                "MetricName": metric,
                "Dimensions": [{"Name": "QueueName", "Value": queue}],
            },
            "Period": 60,
            "Stat": "Maximum",
        },
        "ReturnData": False,
    }


def _math_dlq_alarm(client: Any, name: str, topic: str | None = None) -> str:
    """The IaC's DLQ alarm: visible plus in-flight messages of the DLQ above zero."""
    alarm = f"{name}-dlq-math"
    extra = {"AlarmActions": [topic], "OKActions": [topic]} if topic else {}
    client("cloudwatch").put_metric_alarm(
        AlarmName=alarm,
        Metrics=[
            {"Id": "messages", "Expression": "visible + inflight", "ReturnData": True},
            _sqs_stat("visible", "ApproximateNumberOfMessagesVisible", f"{name}-dlq"),
            _sqs_stat("inflight", "ApproximateNumberOfMessagesNotVisible", f"{name}-dlq"),
        ],
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
        **extra,
    )
    return alarm


def _peek_all(client: Any, dlq: str) -> int:
    """Receive every DLQ message with a long visibility timeout, as a careless viewer would."""
    sqs, held = client("sqs"), 0
    while batch := sqs.receive_message(
        QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=3600
    ).get("Messages"):
        held += len(batch)
    return held


def test_holding_every_dlq_message_in_flight_keeps_the_math_alarm_in_alarm(client, stack, name):
    source, dlq = dlq_pair(client, name)
    math_alarm, visible_only = _math_dlq_alarm(client, name), dlq_alarm(client, name)
    dead_letter(client, source, 2)
    start = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(seconds=5)
    stack.emulator.tick(start)
    assert _peek_all(client, dlq) == 2
    states: dict[str, list[str]] = {math_alarm: [], visible_only: []}
    for period in (1, 2, 3):
        stack.emulator.tick(start + timedelta(minutes=period))
        for alarm, seen in states.items():
            seen.append(describe_alarm(client, alarm)["StateValue"])
    assert states[math_alarm] == ["ALARM", "ALARM", "ALARM"]
    assert states[visible_only] == ["OK", "OK", "OK"]  # the old definition auto-resolves


def test_math_alarm_counts_in_flight_messages_in_its_datapoints(client, stack, name):
    source, dlq = dlq_pair(client, name)
    alarm = _math_dlq_alarm(client, name)
    dead_letter(client, source, 3)
    client("sqs").receive_message(QueueUrl=dlq, MaxNumberOfMessages=1, VisibilityTimeout=3600)
    stack.emulator.tick()
    described = describe_alarm(client, alarm)
    data = json.loads(described["StateReasonData"])
    assert described["StateValue"] == "ALARM"
    assert data["recentDatapoints"] == [3.0]
    assert "statistic" not in data


def test_math_alarm_returns_to_ok_once_the_dlq_is_empty(client, stack, name):
    source, dlq = dlq_pair(client, name)
    alarm = _math_dlq_alarm(client, name)
    dead_letter(client, source, 1)
    stack.emulator.tick()
    drain(client, dlq)
    stack.emulator.tick()
    assert describe_alarm(client, alarm)["StateValue"] == "OK"


def test_math_alarm_notification_carries_its_metrics(client, stack, name):
    topic, inbox = sns_inbox(client, name)
    source, _dlq = dlq_pair(client, name)
    _math_dlq_alarm(client, name, topic)
    dead_letter(client, source, 1)
    stack.emulator.tick()
    envelope = json.loads(client("sqs").receive_message(QueueUrl=inbox)["Messages"][0]["Body"])
    trigger = json.loads(envelope["Message"])["Trigger"]
    assert [m["Id"] for m in trigger["Metrics"]] == ["messages", "visible", "inflight"]
    assert "MetricName" not in trigger


def test_describe_alarms_returns_the_metrics_list(client, name):
    alarm = _math_dlq_alarm(client, name)
    metrics = describe_alarm(client, alarm)["Metrics"]
    assert metrics[0] == {"Id": "messages", "Expression": "visible + inflight", "ReturnData": True}
    assert metrics[2]["MetricStat"]["Metric"]["MetricName"] == (
        "ApproximateNumberOfMessagesNotVisible"
    )


@pytest.mark.parametrize(
    "metrics",
    [
        [{"Id": "e", "Expression": "v", "ReturnData": True}, {"Id": "v", "Expression": "1"}],
        [{"Id": "E", "Expression": "1 + 1", "ReturnData": True}],
        [{"Id": "e", "Expression": "v +", "ReturnData": True}],
        [
            {"Id": "e", "Expression": "v", "ReturnData": True},
            {"Id": "e", "Expression": "1", "ReturnData": False},
        ],
    ],
    ids=["two-returning", "uppercase-id", "bad-expression", "repeated-id"],
)
def test_put_metric_alarm_refuses_an_invalid_metrics_list(client, name, metrics):
    with pytest.raises(ClientError) as caught:
        client("cloudwatch").put_metric_alarm(
            AlarmName=name,
            Metrics=metrics,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
        )
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert caught.value.response["Error"]["Message"] == "Invalid metrics list"
