"""Runbooks: the alarm's ``runbook`` tag (cached), else the first URL of its description;
shown on the alarm page and the overview."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from operations import runbooks
from operations.aws import cloudwatch

pytestmark = pytest.mark.django_db


def put_alarm(name: str, description: str = "", tags: dict[str, str] | None = None) -> Any:
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    cw.put_metric_alarm(
        AlarmName=name,
        AlarmDescription=description,
        MetricName="m",
        Namespace="n",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
        Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
    )
    (alarm,) = [a for a in cloudwatch.describe_alarms() if a.name == name]
    return alarm


def test_the_tag_wins_over_the_description(aws: None) -> None:
    alarm = put_alarm("a", "See https://desc.example/x.", {"runbook": "https://tag.example/a"})
    assert runbooks.runbook(alarm) == "https://tag.example/a"


def test_else_the_first_url_of_the_description(aws: None) -> None:
    alarm = put_alarm("b", "DLQ not empty. Runbook: https://wiki.example/dlq, or ask.")
    assert runbooks.runbook(alarm) == "https://wiki.example/dlq"


def test_no_url_no_runbook(aws: None) -> None:
    assert runbooks.runbook(put_alarm("c", "javascript:alert(1) is not a link")) == ""


def test_tags_are_read_once_then_known_without_a_call(aws: None) -> None:
    alarm = put_alarm("d", "", {"runbook": "https://tag.example/d"})
    assert runbooks.known_runbook(alarm) == ""
    runbooks.runbook(alarm)
    assert runbooks.known_runbook(alarm) == "https://tag.example/d"


def test_the_alarm_page_links_the_runbook(aws: None, viewer_client) -> None:
    put_alarm("e", "", {"runbook": "https://tag.example/e"})
    html = viewer_client.get("/env/default/alarms/e/").content.decode()
    assert 'id="alarm-runbook"' in html and 'href="https://tag.example/e"' in html


def test_the_overview_links_a_runbook_from_the_description(aws: None, viewer_client) -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    sqs.create_queue(QueueName="orders")
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    cw.put_metric_alarm(
        AlarmName="orders-depth",
        AlarmDescription="Runbook: https://wiki.example/orders",
        MetricName="ApproximateNumberOfMessagesVisible",
        Namespace="AWS/SQS",
        Dimensions=[{"Name": "QueueName", "Value": "orders"}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )
    html = viewer_client.get("/env/default/").content.decode()
    assert 'href="https://wiki.example/orders" class="runbook-link"' in html
