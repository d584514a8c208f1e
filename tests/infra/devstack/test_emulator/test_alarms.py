"""Alarm evaluation, composite alarms, DescribeAlarmHistory and SNS notifications."""

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


def test_new_alarm_starts_in_insufficient_data(client, name):
    alarm = dlq_alarm(client, name)
    described = describe_alarm(client, alarm)
    assert described["StateValue"] == "INSUFFICIENT_DATA"
    assert described["StateReason"] == "Unchecked: Initial alarm creation"


def test_dlq_alarm_goes_to_alarm_when_messages_arrive(client, stack, name):
    source, _dlq = dlq_pair(client, name)
    alarm = dlq_alarm(client, name)
    dead_letter(client, source, 2)
    stack.emulator.tick()
    described = describe_alarm(client, alarm)
    assert described["StateValue"] == "ALARM"
    assert "was greater than the threshold (0.0)" in described["StateReason"]
    assert json.loads(described["StateReasonData"])["recentDatapoints"] == [2.0]


def test_dlq_alarm_returns_to_ok_when_the_dlq_is_drained(client, stack, name):
    source, dlq = dlq_pair(client, name)
    alarm = dlq_alarm(client, name)
    dead_letter(client, source, 1)
    stack.emulator.tick()
    drain(client, dlq)
    stack.emulator.tick()
    assert describe_alarm(client, alarm)["StateValue"] == "OK"


def test_history_records_each_transition_with_old_and_new_state(client, stack, name):
    source, _dlq = dlq_pair(client, name)
    alarm = dlq_alarm(client, name)
    dead_letter(client, source, 1)
    stack.emulator.tick()
    items = client("cloudwatch").describe_alarm_history(
        AlarmName=alarm, HistoryItemType="StateUpdate"
    )["AlarmHistoryItems"]
    assert [i["HistorySummary"] for i in items] == ["Alarm updated from INSUFFICIENT_DATA to ALARM"]
    data = json.loads(items[0]["HistoryData"])
    assert (data["oldState"]["stateValue"], data["newState"]["stateValue"]) == (
        "INSUFFICIENT_DATA",
        "ALARM",
    )


def test_history_pages_filters_and_scans_oldest_first(client, name):
    cloudwatch = client("cloudwatch")
    alarm = dlq_alarm(client, name)
    for state in ("ALARM", "OK", "ALARM"):
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue=state, StateReason=f"test {state}")
    pages = cloudwatch.get_paginator("describe_alarm_history").paginate(
        AlarmName=alarm,
        HistoryItemType="StateUpdate",
        ScanBy="TimestampAscending",
        PaginationConfig={"PageSize": 2},
    )
    summaries = [[i["HistorySummary"] for i in page["AlarmHistoryItems"]] for page in pages]
    assert summaries == [
        ["Alarm updated from INSUFFICIENT_DATA to ALARM", "Alarm updated from ALARM to OK"],
        ["Alarm updated from OK to ALARM"],
    ]
    future = cloudwatch.describe_alarm_history(
        AlarmName=alarm, StartDate=datetime.now(UTC) + timedelta(hours=1)
    )
    assert future["AlarmHistoryItems"] == []


def test_set_alarm_state_is_recorded_and_notifies(client, name):
    topic, inbox = sns_inbox(client, name)
    alarm = dlq_alarm(client, name, topic)
    client("cloudwatch").set_alarm_state(
        AlarmName=alarm, StateValue="ALARM", StateReason="testing the pager"
    )
    items = client("cloudwatch").describe_alarm_history(AlarmName=alarm)["AlarmHistoryItems"]
    assert [i["HistoryItemType"] for i in items] == ["Action", "StateUpdate", "ConfigurationUpdate"]
    assert len(client("sqs").receive_message(QueueUrl=inbox)["Messages"]) == 1


def test_transition_publishes_cloudwatch_message_to_sns(client, stack, name):
    topic, inbox = sns_inbox(client, name)
    source, _dlq = dlq_pair(client, name)
    alarm = dlq_alarm(client, name, topic)
    dead_letter(client, source, 1)
    stack.emulator.tick()
    envelope = json.loads(client("sqs").receive_message(QueueUrl=inbox)["Messages"][0]["Body"])
    message = json.loads(envelope["Message"])
    assert envelope["Subject"] == f'ALARM: "{alarm}" in US East (N. Virginia)'
    assert (message["AlarmName"], message["OldStateValue"], message["NewStateValue"]) == (
        alarm,
        "INSUFFICIENT_DATA",
        "ALARM",
    )
    assert message["Trigger"]["MetricName"] == "ApproximateNumberOfMessagesVisible"


def test_composite_alarm_follows_its_children(client, stack, name):
    cloudwatch = client("cloudwatch")
    source, dlq = dlq_pair(client, name)
    child = dlq_alarm(client, name)
    quiet = dlq_alarm(client, f"{name}-q")
    composite = f"{name}-any-dlq"
    cloudwatch.put_composite_alarm(
        AlarmName=composite, AlarmRule=f'ALARM("{child}") OR (ALARM({quiet}) AND NOT OK({quiet}))'
    )
    dead_letter(client, source, 1)
    stack.emulator.tick()
    raised = describe_alarm(client, composite, "CompositeAlarms")
    drain(client, dlq)
    stack.emulator.tick()
    assert (
        raised["StateValue"],
        describe_alarm(client, composite, "CompositeAlarms")["StateValue"],
    ) == (
        "ALARM",
        "OK",
    )
    assert child in raised["StateReason"]


def test_describe_alarms_lists_composites_only_when_asked(client, name):
    cloudwatch = client("cloudwatch")
    child = dlq_alarm(client, name)
    cloudwatch.put_composite_alarm(AlarmName=f"{name}-c", AlarmRule=f"ALARM({child})")
    default = cloudwatch.describe_alarms(AlarmNamePrefix=name)
    parents = cloudwatch.describe_alarms(ParentsOfAlarmName=child, AlarmTypes=["CompositeAlarm"])
    children = cloudwatch.describe_alarms(ChildrenOfAlarmName=f"{name}-c")
    assert (len(default["MetricAlarms"]), default["CompositeAlarms"]) == (1, [])
    assert [a["AlarmName"] for a in parents["CompositeAlarms"]] == [f"{name}-c"]
    assert [a["AlarmName"] for a in children["MetricAlarms"]] == [child]


def test_invalid_composite_rule_is_a_validation_error(client, name):
    with pytest.raises(ClientError) as caught:
        client("cloudwatch").put_composite_alarm(AlarmName=name, AlarmRule='ALARM("x" AND')
    assert caught.value.response["Error"]["Code"] == "ValidationError"


def test_updating_an_alarm_keeps_its_state(client, name):
    alarm = dlq_alarm(client, name)
    client("cloudwatch").set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="x")
    dlq_alarm(client, name, AlarmDescription="now with a description")
    described = describe_alarm(client, alarm)
    assert (described["StateValue"], described["AlarmDescription"]) == (
        "ALARM",
        "now with a description",
    )


def _put_points(client: Any, namespace: str, values: list[float]) -> None:
    """One datapoint per minute, the last one in the current minute."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    client("cloudwatch").put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": "Errors",
                "Value": v,
                "Timestamp": now - timedelta(minutes=len(values) - 1 - i),
            }
            for i, v in enumerate(values)
        ],
    )


def test_m_out_of_n_datapoints_raise_the_alarm(client, stack, name):
    _put_points(client, name, [5.0, 0.0, 7.0])
    for suffix, needed in (("two", 2), ("three", 3)):
        client("cloudwatch").put_metric_alarm(
            AlarmName=f"{name}-{suffix}",
            Namespace=name,
            MetricName="Errors",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=3,
            DatapointsToAlarm=needed,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
    stack.emulator.tick()
    two, three = describe_alarm(client, f"{name}-two"), describe_alarm(client, f"{name}-three")
    assert (two["StateValue"], three["StateValue"]) == ("ALARM", "OK")
    assert "2 out of the last 3 datapoints" in two["StateReason"]


def test_missing_data_follows_treat_missing_data(client, stack, name):
    cloudwatch = client("cloudwatch")
    for treat in ("missing", "breaching", "notBreaching"):
        cloudwatch.put_metric_alarm(
            AlarmName=f"{name}-{treat}",
            Namespace=name,
            MetricName="Nothing",
            Statistic="Average",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData=treat,
        )
    stack.emulator.tick()
    states = [
        describe_alarm(client, f"{name}-{t}")["StateValue"]
        for t in ("missing", "breaching", "notBreaching")
    ]
    assert states == ["INSUFFICIENT_DATA", "ALARM", "OK"]
