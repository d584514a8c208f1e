"""Alarm drill-down: history (Stubber), recorded transitions, composite trees, DLQ grouping,
graphs per state change, and the cached detail reads."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import boto3
import pytest
import time_machine
from botocore.stub import Stubber
from django.core.cache import cache

from operations import alarms, topology
from operations.aws import client as aws_client
from operations.aws import cloudwatch
from operations.aws.cloudwatch import Alarm, AlarmMetric
from operations.aws.errors import AwsError
from operations.cache import Cached
from operations.models import AlarmTransition

NOW = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
# The DLQ sample looks up redrive loops in the database.
pytestmark = pytest.mark.django_db


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


def billing_dlq(settings):
    """billing -> billing-dlq in moto, peeks hiding nothing: (sqs client, DLQ url)."""
    settings.EVENTOPS_PEEK_VISIBILITY_SECONDS = 0
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq_url = sqs.create_queue(QueueName="billing-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "3"})
    sqs.create_queue(QueueName="billing", Attributes={"RedrivePolicy": policy})
    return sqs, dlq_url


@pytest.mark.django_db
def test_dlq_messages_in_the_window_are_grouped_by_error_and_event_type(aws, settings):
    sqs, dlq_url = billing_dlq(settings)
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
    sqs, dlq_url = billing_dlq(settings)
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


# --- cached reads, a graph per state change, StateTransitionedTimestamp --------------------

DLQ_METRIC = AlarmMetric(
    "AWS/SQS", "ApproximateNumberOfMessagesVisible", (("QueueName", "billing-dlq"),)
)


class FakeMetrics:
    """Stands in for ``cloudwatch.get_metric_data``: one datapoint a minute, valued by
    minutes since NOW, and a record of each call's (start, end, period)."""

    def __init__(self) -> None:
        self.calls: list[tuple[datetime, datetime, int]] = []
        self.fail = False

    def __call__(self, queries, start, end):
        if self.fail:
            raise AwsError("Rate exceeded", code="Throttling", operation="GetMetricData")
        (query,) = queries
        self.calls.append((start, end, query.period))
        series = cloudwatch.MetricSeries(id=query.id, label=query.id)
        at = start
        while at <= end:
            series.timestamps.append(at)
            series.values.append(abs((at - NOW).total_seconds()) / 60)
            at += timedelta(seconds=query.period)
        return {query.id: series}


@pytest.fixture
def fake_metrics(monkeypatch) -> FakeMetrics:
    fake = FakeMetrics()
    monkeypatch.setattr(cloudwatch, "get_metric_data", fake)
    return fake


def changes_at(*hours_ago: float) -> list[alarms.HistoryEntry]:
    return [
        alarms.HistoryEntry(NOW - timedelta(hours=h), "OK", "ALARM", "", "AWS") for h in hours_ago
    ]


DETAIL = cloudwatch.AlarmDetail(alarm=metric_alarm("x", metrics=(DLQ_METRIC,)), threshold=0.0)


def test_every_state_change_shown_gets_its_own_graph_from_one_metric_call(fake_metrics):
    changes = changes_at(0.5, 1, 2, 3, 4)
    with time_machine.travel(NOW, tick=False):
        drawn, error = alarms.graphs(DETAIL, changes)
    assert [g.change for g in drawn] == changes and error == ""
    assert len(fake_metrics.calls) == 1
    oldest = drawn[-1]
    assert (oldest.start, oldest.end) == (NOW - timedelta(hours=5), NOW - timedelta(hours=3))
    assert min(oldest.timestamps) >= oldest.start.timestamp() and oldest.marker_x == 300.0


def test_at_most_max_graphs_are_drawn_and_the_drilldown_counts_the_rest(
    fake_metrics, monkeypatch, db
):
    monkeypatch.setattr(cloudwatch, "describe_alarm", lambda name: DETAIL)
    monkeypatch.setattr(cloudwatch, "describe_alarm_history", lambda *a, **k: [])
    AlarmTransition.objects.bulk_create(
        AlarmTransition(alarm_name="x", new_state="ALARM", changed_at=NOW - timedelta(hours=h))
        for h in range(1, 26)  # with the alarm's current state: 26 changes
    )
    with time_machine.travel(NOW, tick=False):
        drill = alarms.drilldown("x")
    assert len(drill.graphs) == 20 and drill.graphs_omitted == 6
    assert len(fake_metrics.calls) == 1


def test_old_changes_ask_for_the_period_cloudwatch_still_keeps(fake_metrics):
    changes = changes_at(1, 20 * 24, 100 * 24)
    with time_machine.travel(NOW, tick=False):
        drawn, _ = alarms.graphs(DETAIL, changes)
    assert sorted(period for _, _, period in fake_metrics.calls) == [60, 300, 3600]
    assert all(g.count for g in drawn)


def test_graphs_are_read_once_within_the_ttl_and_kept_stale_on_error(fake_metrics):
    changes = changes_at(1, 2)
    with time_machine.travel(NOW, tick=False) as clock:
        first, _ = alarms.graphs(DETAIL, changes)
        alarms.graphs(DETAIL, changes)
        calls_within_ttl = len(fake_metrics.calls)
        clock.shift(60)
        fake_metrics.fail = True
        later, error = alarms.graphs(DETAIL, changes)
    assert calls_within_ttl == 1
    assert [g.values for g in later] == [g.values for g in first] and "Rate exceeded" in error


def test_transition_time_comes_from_state_transitioned_timestamp(db):
    cw = aws_client.client("cloudwatch")
    raw = {
        "AlarmName": "x",
        "StateValue": "ALARM",
        "StateReason": "3 datapoints",
        "StateTransitionedTimestamp": NOW - timedelta(hours=2),
        "StateUpdatedTimestamp": NOW,  # only the reason changed since
    }
    expected = {"AlarmNames": ["x"], "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]}
    with Stubber(cw) as stub:
        stub.add_response("describe_alarms", {"MetricAlarms": [raw]}, expected)
        stub.add_response(
            "describe_alarms",
            {"CompositeAlarms": [{**raw, "AlarmRule": 'ALARM("y")'}]},
            expected,
        )
        metric = cloudwatch.describe_alarm("x")
        composite_alarm = cloudwatch.describe_alarm("x")
    assert metric is not None and composite_alarm is not None
    assert metric.alarm.changed_at == composite_alarm.alarm.changed_at == NOW - timedelta(hours=2)
    alarms.record_transitions([metric.alarm])
    later = replace(metric.alarm, state_updated=NOW + timedelta(minutes=5))
    assert alarms.record_transitions([later]) == 0
    assert list(AlarmTransition.objects.values_list("changed_at", flat=True)) == [
        NOW - timedelta(hours=2)
    ]


def test_state_updated_timestamp_is_used_when_no_transition_time_is_given():
    assert metric_alarm("x", at=NOW).changed_at == NOW


@pytest.mark.django_db
def test_views_within_the_ttl_share_one_peek_of_the_dlq(aws, settings):
    sqs, dlq_url = billing_dlq(settings)
    sqs.send_message(QueueUrl=dlq_url, MessageBody=json.dumps({"detail-type": "OrderPaid"}))
    calls: Counter = Counter()
    aws_client.reset()
    aws_client.session().events.register(
        "before-call.*.*", lambda model, **kw: calls.update([model.name])
    )
    now = datetime.now(UTC)
    first = alarms.dlq_messages(
        "billing-dlq", (now - timedelta(hours=1), now + timedelta(minutes=1))
    )
    receives = calls["ReceiveMessage"]
    past = alarms.dlq_messages("billing-dlq", (now - timedelta(days=2), now - timedelta(days=1)))
    assert receives >= 1 and calls["ReceiveMessage"] == receives
    assert (first.matching, past.matching, past.examined) == (1, 0, 1)


def test_a_failed_peek_shows_the_last_sample_marked_stale(monkeypatch):
    queue = SimpleNamespace(url="https://sqs/billing-dlq")
    inventory = SimpleNamespace(queues={"billing-dlq": queue})
    monkeypatch.setattr(topology, "queues", lambda: Cached(value=inventory, fetched_at=0.0))
    sample = [alarms.SampledMessage("m-1", NOW, "declined", "OrderPaid", "c1")]
    outcomes = [sample]

    def peek(url):
        if not outcomes:
            raise AwsError("Rate exceeded", code="Throttling", operation="ReceiveMessage")
        return outcomes.pop()

    monkeypatch.setattr(alarms, "sample_dlq", peek)
    window = (NOW - timedelta(hours=1), NOW)
    with time_machine.travel(NOW, tick=False) as clock:
        alarms.dlq_messages("billing-dlq", window)
        clock.shift(60)
        later = alarms.dlq_messages("billing-dlq", window)
    assert later.stale and "Rate exceeded" in later.error
    assert later.message_ids == ["m-1"] and later.sampled == NOW


def test_the_alarm_peek_feeds_the_redrive_loop_warnings(aws, settings):
    from operations import dlq
    from operations.models import Operation, TouchedCorrelation

    settings.EVENTOPS_PEEK_VISIBILITY_SECONDS = 0
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq_url = sqs.create_queue(QueueName="loop-dlq")["QueueUrl"]
    op = Operation.objects.create(
        kind=Operation.Kind.REDRIVE,
        target=dlq_url,
        reason="r",
        requested_by_name="t",
        state=Operation.State.SUCCEEDED,
    )
    TouchedCorrelation.objects.create(operation=op, correlation_id="c-back")
    body = json.dumps({"detail-type": "OrderPaid", "detail": {"correlationId": "c-back"}})
    sqs.send_message(QueueUrl=dlq_url, MessageBody=body)
    alarms.sample_dlq(dlq_url)
    record = dlq.last_peek(dlq_url)
    assert record is not None and record.loops == [("c-back", [op.pk])]


def test_each_chart_is_centred_on_its_own_change_with_a_marker(fake_metrics):
    changes = changes_at(0.25, 3)
    with time_machine.travel(NOW, tick=False):
        drawn, _error = alarms.graphs(DETAIL, changes)
    recent, older = (g.chart() for g in drawn)
    at = (NOW - timedelta(hours=0.25)).timestamp()
    # The recent change is in the middle although its hour after has not all happened yet.
    assert recent["marker"] == at and recent["x_range"] == [at - 3600, at + 3600]
    assert older["marker"] != recent["marker"] and "threshold" in recent["labels"]
