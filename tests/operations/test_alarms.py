"""Alarm drill-down: history (Stubber), recorded transitions, composite trees, DLQ grouping."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import time_machine
from botocore.stub import Stubber
from django.core.cache import cache

from operations import alarms, topology
from operations.aws import client as aws_client
from operations.aws import cloudwatch
from operations.aws.cloudwatch import Alarm, AlarmMetric
from operations.cache import Cached
from operations.models import AlarmTransition

NOW = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def metric_alarm(name: str, state: str = "OK", at: datetime = NOW, **extra) -> Alarm:
    return Alarm(
        name,
        f"arn:aws:cloudwatch:us-east-1:1:alarm:{name}",
        "metric",
        state,
        "r",
        at,
        True,
        **extra,
    )


def composite(name: str, rule: str, state: str = "ALARM") -> Alarm:
    return Alarm(name, f"arn:{name}", "composite", state, "r", NOW, True, rule=rule)


def history_data(old: str, new: str) -> str:
    return json.dumps(
        {
            "oldState": {"stateValue": old},
            "newState": {"stateValue": new, "stateReason": f"to {new}"},
        }
    )


def test_alarm_history_request_is_exact_and_state_changes_are_parsed():
    cw = aws_client.client("cloudwatch")
    start, end = NOW - timedelta(days=14), NOW
    expected = {
        "AlarmName": "a",
        "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
        "HistoryItemType": "StateUpdate",
        "StartDate": start,
        "EndDate": end,
        "MaxRecords": 100,
        "ScanBy": "TimestampDescending",
    }
    item = {
        "AlarmName": "a",
        "Timestamp": NOW,
        "HistoryItemType": "StateUpdate",
        "HistorySummary": "Alarm updated from OK to ALARM",
        "HistoryData": history_data("OK", "ALARM"),
    }
    with Stubber(cw) as stub:
        stub.add_response(
            "describe_alarm_history", {"AlarmHistoryItems": [item], "NextToken": "n"}, expected
        )
        stub.add_response(
            "describe_alarm_history", {"AlarmHistoryItems": []}, {**expected, "NextToken": "n"}
        )
        items = cloudwatch.describe_alarm_history("a", start, end)
    assert [(i.old_state, i.new_state, i.reason) for i in items] == [("OK", "ALARM", "to ALARM")]


def test_describe_alarm_returns_threshold_and_period(aws):
    boto3.client("cloudwatch", region_name="us-east-1").put_metric_alarm(
        AlarmName="dlq-not-empty",
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[{"Name": "QueueName", "Value": "billing-dlq"}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )
    detail = cloudwatch.describe_alarm("dlq-not-empty")
    assert detail is not None and (detail.threshold, detail.period, detail.statistic) == (
        0.0,
        60,
        "Maximum",
    )
    assert cloudwatch.describe_alarm("missing") is None


@pytest.mark.django_db
def test_recording_transitions_is_idempotent_and_chains_old_state():
    assert alarms.record_transitions([metric_alarm("a", "OK", NOW - timedelta(hours=1))]) == 1
    assert alarms.record_transitions([metric_alarm("a", "OK", NOW - timedelta(hours=1))]) == 0
    alarms.record_transitions([metric_alarm("a", "ALARM", NOW)])
    latest = AlarmTransition.objects.filter(alarm_name="a").first()
    assert (latest.old_state, latest.new_state) == ("OK", "ALARM")


@pytest.mark.django_db
def test_history_merges_aws_and_recorded_transitions(monkeypatch):
    AlarmTransition.objects.create(
        alarm_name="a", new_state="ALARM", changed_at=NOW - timedelta(days=30)
    )
    aws_item = cloudwatch.AlarmHistoryItem("a", NOW, "StateUpdate", "s", "ALARM", "OK", "fixed")
    monkeypatch.setattr(cloudwatch, "describe_alarm_history", lambda *a, **k: [aws_item])
    entries, error = alarms.history(metric_alarm("a"))
    assert [(e.new_state, e.source) for e in entries] == [
        ("OK", "AWS + dashboard"),
        ("ALARM", "dashboard"),
    ]
    assert error == ""


def test_composite_tree_is_recursive_bounded_and_survives_cycles(monkeypatch):
    known = [
        composite("top", 'ALARM("mid") OR ALARM(arn:aws:cloudwatch:us-east-1:1:alarm:leaf-b)'),
        composite("mid", 'ALARM("leaf-a") AND ALARM("top") AND ALARM("gone")'),
        metric_alarm("leaf-a", "ALARM"),
        metric_alarm("leaf-b"),
    ]
    monkeypatch.setattr(topology, "alarms", lambda: Cached(value=known, fetched_at=0.0))
    monkeypatch.setattr(cloudwatch, "describe_alarm", lambda name: None)
    tree = alarms.children_tree(known[0])
    assert [c.name for c in tree.children] == ["mid", "leaf-b"]
    mid = tree.children[0]
    assert [(c.name, c.truncated, c.missing) for c in mid.children] == [
        ("leaf-a", False, False),
        ("top", True, False),
        ("gone", False, True),
    ]


def test_tree_depth_is_bounded(monkeypatch):
    chain = [composite(f"c{i}", f'ALARM("c{i + 1}")') for i in range(10)] + [metric_alarm("c10")]
    monkeypatch.setattr(topology, "alarms", lambda: Cached(value=chain, fetched_at=0.0))
    node = alarms.children_tree(chain[0], max_depth=3)
    depth = 0
    while node.children and not node.truncated:
        node, depth = node.children[0], depth + 1
    assert depth == 3 and node.truncated


def test_dlq_alarm_is_recognised_by_its_sqs_metric():
    dims = (("QueueName", "billing-dlq"),)
    assert (
        alarms.dlq_queue_name(
            metric_alarm(
                "x", metrics=(AlarmMetric("AWS/SQS", "ApproximateNumberOfMessagesVisible", dims),)
            )
        )
        == "billing-dlq"
    )
    assert (
        alarms.dlq_queue_name(metric_alarm("y", metrics=(AlarmMetric("AWS/Lambda", "Errors", ()),)))
        == ""
    )


def test_alarm_window_runs_from_an_hour_before_alarm_until_ok():
    changes = [
        alarms.HistoryEntry(NOW - timedelta(hours=5), "OK", "ALARM", "", "AWS"),
        alarms.HistoryEntry(NOW - timedelta(hours=4), "ALARM", "OK", "", "AWS"),
    ]
    start, end = alarms.alarm_window(metric_alarm("x", "OK"), changes)
    assert (start, end) == (NOW - timedelta(hours=6), NOW - timedelta(hours=4))


@pytest.mark.django_db
def test_dlq_messages_in_the_window_are_grouped_by_error_and_event_type(aws, settings):
    settings.EVENTOPS_PEEK_VISIBILITY_SECONDS = 0
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq_url = sqs.create_queue(QueueName="billing-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sqs.create_queue(
        QueueName="billing",
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "3"})
        },
    )
    for cid, kind, error in (
        ("c1", "OrderPaid", "declined"),
        ("c2", "OrderPaid", "declined"),
        ("c3", "OrderCancelled", ""),
    ):
        body = json.dumps({"id": cid, "detail-type": kind, "detail": {"correlationId": cid}})
        attributes = {"error": {"DataType": "String", "StringValue": error}} if error else {}
        sqs.send_message(QueueUrl=dlq_url, MessageBody=body, MessageAttributes=attributes)
    now = datetime.now(UTC)
    found = alarms.dlq_messages(
        "billing-dlq", (now - timedelta(hours=1), now + timedelta(minutes=1))
    )
    assert [(g.error, g.event_type, g.correlation_ids) for g in found.groups] == [
        ("declined", "OrderPaid", ["c1", "c2"]),
        (alarms.NO_ERROR, "OrderCancelled", ["c3"]),
    ]
    assert found.matching == 3


@pytest.mark.django_db
def test_messages_outside_the_window_are_left_out(aws, settings):
    settings.EVENTOPS_PEEK_VISIBILITY_SECONDS = 0
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq_url = sqs.create_queue(QueueName="billing-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sqs.create_queue(
        QueueName="billing",
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "3"})
        },
    )
    sqs.send_message(QueueUrl=dlq_url, MessageBody="{}")
    past = datetime.now(UTC) - timedelta(days=2)
    found = alarms.dlq_messages("billing-dlq", (past, past + timedelta(hours=1)))
    assert found.examined == 1 and found.groups == []


@pytest.mark.django_db
def test_graph_covers_an_hour_each_side_of_the_change(aws):
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    with time_machine.travel(NOW + timedelta(hours=2), tick=False):
        for minutes, value in ((-30, 0.0), (0, 3.0), (30, 5.0)):
            cw.put_metric_data(
                Namespace="AWS/SQS",
                MetricData=[
                    {
                        "MetricName": "ApproximateNumberOfMessagesVisible",
                        "Value": value,
                        "Timestamp": NOW + timedelta(minutes=minutes),
                        "Dimensions": [{"Name": "QueueName", "Value": "billing-dlq"}],
                    }
                ],
            )
        alarm = metric_alarm(
            "x",
            metrics=(
                AlarmMetric(
                    "AWS/SQS", "ApproximateNumberOfMessagesVisible", (("QueueName", "billing-dlq"),)
                ),
            ),
        )
        drawn = alarms.graph(cloudwatch.AlarmDetail(alarm=alarm, threshold=0.0), None, NOW)
    assert (drawn.start, drawn.end) == (NOW - timedelta(hours=1), NOW + timedelta(hours=1))
    assert drawn.count == 3 and drawn.high == 5.0 and drawn.marker_x == 300.0


@pytest.mark.django_db
def test_unknown_alarm_raises_unknown_alarm(aws):
    with pytest.raises(alarms.UnknownAlarm):
        alarms.drilldown("no-such-alarm")
