"""In Chromium, every page of a small account: at 390 px wide none scrolls sideways and
the navigation folds; a viewer is offered no action they may not take.

AWS is moto's ``mock_aws`` in this process (the live server's thread shares it)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import boto3
import pytest
from django.utils import timezone

from operations.models import Operation
from tests.conftest import PASSWORD, ensure_groups

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PREFIX = "eventops-demo-"
BUS = f"{PREFIX}bus"
DLQ = f"{PREFIX}billing-dlq"
SOURCE = f"{PREFIX}billing"
ALARM = f"{DLQ}-not-empty"
ARCHIVE = f"{PREFIX}archive"
CID = "0b6f3c1e-6a4f-4c47-9d0c-2f1f6d6f1a11"
PHONE = 390
# What a viewer must not be offered (as a button or a button-styled link).
ACTION_WORDS = re.compile(r"redrive|replay|re-?publish|delete|edit|cancel|resend", re.IGNORECASE)


@pytest.fixture
def account(aws, settings):
    """A bus with a rule to billing, billing's DLQ with two messages and its alarm in
    ALARM, an archive, and two operations (one running, one finished)."""
    settings.AWS_MAX_ATTEMPTS = 1
    settings.EVENTOPS_CACHE_TTL = 60
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq_url = sqs.create_queue(QueueName=DLQ)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})
    source_url = sqs.create_queue(QueueName=SOURCE, Attributes={"RedrivePolicy": policy})[
        "QueueUrl"
    ]
    source_arn = sqs.get_queue_attributes(QueueUrl=source_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    for n in range(2):
        detail = {"correlationId": CID if n == 0 else f"corr-{n}", "orderId": f"o-{n}"}
        body = {"id": f"e-{n}", "detail-type": "OrderPaid", "source": "eventops.orders"}
        sqs.send_message(QueueUrl=dlq_url, MessageBody=json.dumps({**body, "detail": detail}))
    events = boto3.client("events", region_name="us-east-1")
    bus_arn = events.create_event_bus(Name=BUS)["EventBusArn"]
    pattern = {
        "source": ["eventops.orders"],
        "detail-type": ["OrderPaid", "OrderCancelled", "OrderRefunded"],
        "detail": {"amount": [{"numeric": [">", 0]}], "currency": ["EUR", "USD", "GBP"]},
    }
    events.put_rule(
        Name=f"{PREFIX}orders-to-billing", EventBusName=BUS, EventPattern=json.dumps(pattern)
    )
    events.put_targets(
        Rule=f"{PREFIX}orders-to-billing",
        EventBusName=BUS,
        Targets=[{"Id": "billing", "Arn": source_arn}],
    )
    events.create_archive(ArchiveName=ARCHIVE, EventSourceArn=bus_arn, RetentionDays=7)
    logs = boto3.client("logs", region_name="us-east-1")
    logs.create_log_group(logGroupName=f"/aws/events/{BUS}")
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    cloudwatch.put_metric_alarm(
        AlarmName=ALARM,
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[{"Name": "QueueName", "Value": DLQ}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="2 in the DLQ")
    ensure_groups()
    now = timezone.now()
    running = Operation.objects.create(
        kind=Operation.Kind.REDRIVE,
        target=dlq_url,
        target_label=DLQ,
        reason="fixed",
        requested_by_name="oncall",
        state=Operation.State.RUNNING,
        started_at=now - timedelta(seconds=30),
        total=40,
        moved=12,
    )
    replay = Operation.objects.create(
        kind=Operation.Kind.REPLAY,
        target=ARCHIVE,
        target_label=ARCHIVE,
        reason="missed",
        requested_by_name="oncall",
        state=Operation.State.RUNNING,
        started_at=now,
        parameters={"archive_name": ARCHIVE, "replay_name": "r-1"},
    )
    return {"running": running.pk, "replay": replay.pk}


def pages(ops: dict[str, int]) -> list[str]:
    env = "/env/default"
    return [
        f"{env}/",
        f"{env}/queues/",
        f"{env}/queues/{SOURCE}/",
        f"{env}/queues/{DLQ}/",
        f"{env}/queues/{DLQ}/messages/",
        f"{env}/queues/{DLQ}/redrive/",
        f"{env}/buses/{BUS}/",
        f"{env}/alarms/",
        f"{env}/alarms/{ALARM}/",
        f"{env}/search/",
        f"{env}/search/?q={CID}",
        f"{env}/archives/",
        f"{env}/archives/{ARCHIVE}/",
        f"{env}/archives/{ARCHIVE}/events/",
        f"{env}/archives/{ARCHIVE}/replay/",
        f"{env}/archives/operations/{ops['replay']}/",
        f"{env}/schemas/",
        f"{env}/operations/",
        f"{env}/operations/{ops['running']}/",
    ]


def _visit(page, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status < 500, f"{url}: HTTP {response.status}"
    page.wait_for_load_state("networkidle")


def test_at_390_px_no_page_scrolls_sideways(live_server, browser, account, viewer):
    context = browser.new_context(viewport={"width": PHONE, "height": 844})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", viewer.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    wide = {}
    for path in pages(account):
        _visit(page, live_server.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE:
            wide[path] = width
    assert wide == {}
    # The navigation is folded behind its button, which opens it.
    assert not page.locator("#main-nav").is_visible()
    page.click("#nav-toggle")
    assert page.locator("#main-nav").is_visible()
    context.close()


def test_a_viewer_is_offered_no_action(live_server, page, login, account, viewer):
    login(viewer.username, PASSWORD)
    offered = {}
    for path in pages(account):
        _visit(page, live_server.url + path)
        controls = page.locator("button:visible, input[type=submit]:visible, a.btn:visible")
        texts = [t.strip() for t in controls.all_inner_texts()]
        texts += list(
            page.locator("input[type=submit]:visible").evaluate_all("els => els.map(e => e.value)")
        )
        bad = [t for t in texts if ACTION_WORDS.search(t)]
        if bad:
            offered[path] = bad
    assert offered == {}
