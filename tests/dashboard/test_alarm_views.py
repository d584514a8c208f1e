"""Alarm list and drill-down pages: login, state filter, 404, DLQ drill-down links."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from django.urls import reverse

from operations import alarms
from operations.aws import client as aws_client
from operations.aws.cloudwatch import Alarm, AlarmDetail, AlarmMetric, AlarmQuery
from operations.cache import Cached
from operations.models import AlarmTransition

NOW = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
DLQ_ALARM = Alarm(
    name="eventops-demo-billing-dlq-not-empty",
    arn="arn:aws:cloudwatch:us-east-1:1:alarm:eventops-demo-billing-dlq-not-empty",
    kind="metric",
    state="ALARM",
    state_reason="Threshold Crossed: 1 datapoint [3.0] was greater than 0.0",
    state_updated=NOW,
    actions_enabled=True,
    metrics=(
        AlarmMetric(
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            (("QueueName", "eventops-demo-billing-dlq"),),
        ),
    ),
)
OK_ALARM = Alarm("api-latency", "arn:x", "metric", "OK", "fine", NOW - timedelta(hours=3), True)


@pytest.fixture
def two_alarms(monkeypatch):
    from operations import topology

    monkeypatch.setattr(
        topology, "alarms", lambda: Cached(value=[OK_ALARM, DLQ_ALARM], fetched_at=0.0)
    )


def test_anonymous_is_sent_to_login(client, db):
    response = client.get(reverse("alarm_detail", args=["default", "x"]))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_list_shows_alarms_worst_first_and_records_their_state(viewer_client, two_alarms):
    response = viewer_client.get(reverse("alarms", args=["default"]))
    body = response.content.decode()
    assert body.index(DLQ_ALARM.name) < body.index(OK_ALARM.name)
    assert AlarmTransition.objects.filter(alarm_name=DLQ_ALARM.name, new_state="ALARM").count() == 1


def test_list_filters_by_state(viewer_client, two_alarms):
    response = viewer_client.get(reverse("alarms", args=["default"]), {"state": "OK"})
    assert OK_ALARM.name.encode() in response.content
    assert DLQ_ALARM.name.encode() not in response.content


def test_unknown_state_is_a_clear_400(viewer_client, two_alarms):
    response = viewer_client.get(reverse("alarms", args=["default"]), {"state": "ON_FIRE"})
    assert response.status_code == 400 and b"Unknown state" in response.content


def test_unknown_alarm_is_a_404(viewer_client, monkeypatch):
    from operations.aws import cloudwatch

    monkeypatch.setattr(cloudwatch, "describe_alarm", lambda name: None)
    assert (
        viewer_client.get(reverse("alarm_detail", args=["default", "no-such-alarm"])).status_code
        == 404
    )


def test_overlong_alarm_name_is_a_404(viewer_client):
    # The URL pattern refuses it (dashboard/converters.py): no reverse() for it.
    assert viewer_client.get(f"/env/default/alarms/{'a' * 300}/").status_code == 404


def test_aws_failure_on_detail_is_a_message_not_a_500(viewer_client, monkeypatch):
    from operations.aws import cloudwatch
    from operations.aws.errors import AwsError

    def boom(name):
        raise AwsError("slow down", code="Throttling", operation="DescribeAlarms", transient=True)

    monkeypatch.setattr(cloudwatch, "describe_alarm", boom)
    response = viewer_client.get(reverse("alarm_detail", args=["default", "x"]))
    assert response.status_code == 502 and b"slow down" in response.content


def test_dlq_alarm_detail_links_each_correlation_id_and_a_redrive_of_exactly_those_messages(
    client, viewer, operator, monkeypatch
):
    window = (NOW - timedelta(hours=1), NOW + timedelta(minutes=5))
    paid = alarms.MessageGroup(
        "card declined", "OrderPaid", ["corr-1", "corr-2"], 2, ["m-1", "m-2"]
    )
    unknown = alarms.MessageGroup("bad json", alarms.NO_TYPE, [], 1, ["m-3"])
    dlq = alarms.DlqDrilldown(
        queue_name="eventops-demo-billing-dlq",
        queue_url="http://sqs/eventops-demo-billing-dlq",
        window_start=window[0],
        window_end=window[1],
        groups=[paid, unknown],
        examined=5,
    )
    drill = alarms.Drilldown(detail=AlarmDetail(alarm=DLQ_ALARM, threshold=0.0), dlq=dlq)
    monkeypatch.setattr(alarms, "drilldown", lambda name: drill)
    url = reverse("alarm_detail", args=["default", DLQ_ALARM.name])
    # A viewer is offered no redrive, and told who may.
    client.force_login(viewer)
    seen = client.get(url).content.decode()
    assert 'id="redrive-window"' not in seen and 'id="who-can-redrive"' in seen
    client.force_login(operator)
    body = client.get(url).content.decode()
    assert f'href="{reverse("correlation", args=["default"])}?q=corr-1"' in body
    preview = reverse("operations:redrive", args=["default", "eventops-demo-billing-dlq"])
    assert f'href="{preview}?message_ids=m-1+m-2+m-3"' in body
    assert f'href="{preview}?message_ids=m-1+m-2"' in body
    assert "Redrive these 3 messages" in body


def test_dlq_alarm_without_messages_in_its_window_offers_no_redrive(viewer_client, monkeypatch):
    dlq = alarms.DlqDrilldown(
        queue_name="eventops-demo-billing-dlq",
        queue_url="http://sqs/eventops-demo-billing-dlq",
        window_start=NOW - timedelta(hours=1),
        window_end=NOW,
        examined=4,
    )
    drill = alarms.Drilldown(detail=AlarmDetail(alarm=DLQ_ALARM, threshold=0.0), dlq=dlq)
    monkeypatch.setattr(alarms, "drilldown", lambda name: drill)
    body = viewer_client.get(
        reverse("alarm_detail", args=["default", DLQ_ALARM.name])
    ).content.decode()
    assert 'id="redrive-window"' not in body


def test_metric_graph_is_drawn_server_side_and_handed_to_uplot(viewer_client, monkeypatch):
    change = alarms.HistoryEntry(NOW, "OK", "ALARM", "crossed", "AWS")
    graph = alarms.Graph(
        change=change,
        start=NOW - timedelta(hours=1),
        end=NOW + timedelta(hours=1),
        points="0.0,120.0 300.0,10.0",
        count=2,
        timestamps=[1.0, 2.0],
        values=[0.0, 3.0],
        threshold=0.0,
    )
    drill = alarms.Drilldown(detail=AlarmDetail(alarm=OK_ALARM), history=[change], graphs=[graph])
    monkeypatch.setattr(alarms, "drilldown", lambda name: drill)
    body = viewer_client.get(
        reverse("alarm_detail", args=["default", OK_ALARM.name])
    ).content.decode()
    assert '<polyline points="0.0,120.0 300.0,10.0"' in body
    assert (
        'id="queue-charts-data"' in body and "OK \\u2192 ALARM at 2026-11-26 14:00:00 UTC" in body
    )


def test_metric_math_alarm_shows_its_expression_and_the_metrics_it_uses(viewer_client, monkeypatch):
    visible = AlarmMetric("AWS/SQS", "ApproximateNumberOfMessagesVisible", (("QueueName", "q"),))
    queries = (
        AlarmQuery("messages", expression="visible + inflight <b>"),
        AlarmQuery("visible", return_data=False, metric=visible, stat="Maximum"),
    )
    detail = AlarmDetail(alarm=DLQ_ALARM, threshold=0.0, queries=queries)
    monkeypatch.setattr(alarms, "drilldown", lambda name: alarms.Drilldown(detail=detail))
    response = viewer_client.get(reverse("alarm_detail", args=["default", DLQ_ALARM.name]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "messages = visible + inflight &lt;b&gt;" in body
    assert "visible: AWS/SQS ApproximateNumberOfMessagesVisible QueueName=q (Maximum)" in body


def test_composite_alarm_shows_its_children_tree(viewer_client, monkeypatch):
    tree = alarms.TreeNode(
        "top",
        "ALARM",
        "composite",
        "r",
        children=[alarms.TreeNode(DLQ_ALARM.name, "ALARM", "metric", "r")],
    )
    top = Alarm(
        "top", "arn:top", "composite", "ALARM", "r", NOW, True, rule=f'ALARM("{DLQ_ALARM.name}")'
    )
    monkeypatch.setattr(
        alarms, "drilldown", lambda name: alarms.Drilldown(detail=AlarmDetail(alarm=top), tree=tree)
    )
    body = viewer_client.get(reverse("alarm_detail", args=["default", "top"])).content.decode()
    assert f'href="{reverse("alarm_detail", args=["default", DLQ_ALARM.name])}"' in body


def test_post_to_the_alarm_pages_is_not_allowed(viewer_client):
    assert viewer_client.post(reverse("alarms", args=["default"])).status_code == 405
    assert viewer_client.post(reverse("alarm_detail", args=["default", "x"])).status_code == 405


def test_ten_views_of_a_dlq_alarm_cost_one_peek_and_one_metric_read(viewer_client, aws, settings):
    settings.EVENTOPS_PEEK_VISIBILITY_SECONDS = 0
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq_url = sqs.create_queue(QueueName="heron-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "3"})
    sqs.create_queue(QueueName="heron", Attributes={"RedrivePolicy": policy})
    sqs.send_message(QueueUrl=dlq_url, MessageBody=json.dumps({"detail-type": "OrderPaid"}))
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    cw.put_metric_alarm(
        AlarmName="heron-dlq-depth",
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[{"Name": "QueueName", "Value": "heron-dlq"}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )
    cw.set_alarm_state(AlarmName="heron-dlq-depth", StateValue="ALARM", StateReason="t")
    calls: Counter = Counter()
    aws_client.reset()
    aws_client.session().events.register(
        "before-call.*.*", lambda model, **kw: calls.update([model.name])
    )
    url = reverse("alarm_detail", args=["default", "heron-dlq-depth"])
    first = viewer_client.get(url)
    receives = calls["ReceiveMessage"]
    for _ in range(9):
        assert viewer_client.get(url).status_code == 200
    assert b"OrderPaid" in first.content and receives >= 1
    assert (calls["ReceiveMessage"], calls["GetMetricData"]) == (receives, 1)


def test_state_changes_left_without_a_graph_are_counted_on_the_page(viewer_client, monkeypatch):
    change = alarms.HistoryEntry(NOW, "OK", "ALARM", "crossed", "AWS")
    graph = alarms.Graph(change=change, start=NOW - timedelta(hours=1), end=NOW)
    drill = alarms.Drilldown(
        detail=AlarmDetail(alarm=OK_ALARM), history=[change] * 7, graphs=[graph], graphs_omitted=6
    )
    monkeypatch.setattr(alarms, "drilldown", lambda name: drill)
    body = viewer_client.get(
        reverse("alarm_detail", args=["default", OK_ALARM.name])
    ).content.decode()
    assert "Graphs for the 1 newest state changes; 6 older changes" in body
