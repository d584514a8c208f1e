"""In Chromium: from a DLQ alarm in ALARM, through its DLQ messages and a correlation page,
to a started redrive (H6's flow) whose progress finishes.

AWS is moto's ``mock_aws`` in this process (the live server's thread shares it). The redrive
task runs eagerly (Celery's ``task_always_eager``), so no worker is needed.
"""

from __future__ import annotations

import json

import boto3
import pytest
from django.contrib.auth.models import Group, User

from operations.aws import client as aws_client
from tests.conftest import ensure_groups

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ALARM = "eventops-demo-billing-dlq-not-empty"
FAILED = "corr-browser-failed-1"
OTHER = "corr-browser-other-2"


def event(cid: str, event_type: str) -> str:
    detail = {"correlationId": cid, "orderId": "o-1", "occurredAt": "2026-11-26T14:00:00Z"}
    return json.dumps(
        {"id": f"e-{cid}", "detail-type": event_type, "source": "eventops.orders", "detail": detail}
    )


@pytest.fixture
def billing_alarm(aws, settings, monkeypatch):
    """billing -> billing-dlq with two failed messages, and its DLQ alarm in ALARM."""
    from dashboard.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = True
    monkeypatch.setattr(app.conf, "task_always_eager", True)
    settings.AWS_MAX_ATTEMPTS = 1  # moto answers X-Ray filters with an error: do not retry it
    aws_client.reset()
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq_url = sqs.create_queue(QueueName="eventops-demo-billing-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})
    source_url = sqs.create_queue(
        QueueName="eventops-demo-billing", Attributes={"RedrivePolicy": policy}
    )["QueueUrl"]
    sqs.send_message(QueueUrl=dlq_url, MessageBody=event(FAILED, "OrderPaid"))
    sqs.send_message(QueueUrl=dlq_url, MessageBody=event(OTHER, "OrderCancelled"))
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    cloudwatch.put_metric_alarm(
        AlarmName=ALARM,
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[{"Name": "QueueName", "Value": "eventops-demo-billing-dlq"}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(
        AlarmName=ALARM, StateValue="ALARM", StateReason="2 messages in the DLQ"
    )
    return sqs, source_url, dlq_url


def depth(sqs, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


@pytest.mark.django_db(transaction=True)
def test_from_alarm_to_a_finished_redrive_of_the_failed_message(live_server, login, billing_alarm):
    sqs, source_url, dlq_url = billing_alarm
    # A transactional test before this one may have flushed the groups the migration made.
    ensure_groups()
    user = User.objects.create_user("olga", password="pw-olga-123")
    user.groups.add(Group.objects.get(name="operator"))
    page = login("olga", "pw-olga-123")

    page.goto(f"{live_server.url}/env/default/alarms/?state=ALARM")
    page.click(f"a:has-text('{ALARM}')")
    page.wait_for_selector("#dlq-messages")
    assert page.locator("#dlq-messages").inner_text().count("corr-browser-") == 2

    page.click(f"#dlq-messages a:has-text('{FAILED}')")
    redrive_link = page.locator("#panel-dlq a:has-text('Redrive these messages')")
    redrive_link.wait_for()
    assert page.input_value("#q") == FAILED

    redrive_link.click()
    page.wait_for_selector("#redrive-preview")
    assert page.inner_text("#preview-count") == "1"
    page.fill("textarea[name=reason]", "billing bug fixed; retry the failed payment")
    page.click("#redrive-start")
    page.wait_for_selector("#operation-state:has-text('Succeeded')")

    assert page.inner_text("#count-moved") == "1"
    assert (depth(sqs, source_url), depth(sqs, dlq_url)) == (1, 1)
