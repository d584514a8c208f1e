"""Discovery on an account built with plain boto3 (not infra/), with names the demo never uses."""

from __future__ import annotations

import io
import json
import zipfile

import boto3
import pytest
from django.core.cache import cache

from operations import topology

REGION = "us-east-1"


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    return buffer.getvalue()


@pytest.fixture
def account(aws, settings):
    """A payments team's account: bus, rules, queue + DLQ, alarms, archive, event log, Lambda."""
    settings.EVENTOPS_RESOURCE_PREFIX = ""
    settings.EVENTOPS_CACHE_TTL = 60
    cache.clear()
    sqs = boto3.client("sqs", region_name=REGION)
    events = boto3.client("events", region_name=REGION)
    cw = boto3.client("cloudwatch", region_name=REGION)
    logs = boto3.client("logs", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    lam = boto3.client("lambda", region_name=REGION)

    dead_url = sqs.create_queue(QueueName="acme-ledger-dead")["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    ledger_url = sqs.create_queue(
        QueueName="acme-ledger-inbox",
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": "4"})
        },
    )["QueueUrl"]
    ledger_arn = sqs.get_queue_attributes(QueueUrl=ledger_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sqs.create_queue(QueueName="zeta-unrelated")
    for _ in range(3):
        sqs.send_message(QueueUrl=dead_url, MessageBody="{}")

    bus_arn = events.create_event_bus(Name="acme-payments")["EventBusArn"]
    events.put_rule(
        Name="acme-ledger-route",
        EventBusName="acme-payments",
        EventPattern=json.dumps({"source": ["acme.payments"]}),
    )
    events.put_targets(
        Rule="acme-ledger-route",
        EventBusName="acme-payments",
        Targets=[{"Id": "ledger", "Arn": ledger_arn}],
    )
    log_arn = logs.create_log_group(logGroupName="/aws/events/acme-payments") and (
        f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/events/acme-payments"
    )
    events.put_rule(
        Name="acme-everything-to-log",
        EventBusName="acme-payments",
        EventPattern=json.dumps({"source": [{"prefix": ""}]}),
    )
    events.put_targets(
        Rule="acme-everything-to-log",
        EventBusName="acme-payments",
        Targets=[{"Id": "log", "Arn": log_arn}],
    )
    events.create_archive(ArchiveName="acme-keep", EventSourceArn=bus_arn, RetentionDays=30)

    cw.put_metric_alarm(
        AlarmName="acme-ledger-dead-depth",
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[{"Name": "QueueName", "Value": "acme-ledger-dead"}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )
    cw.set_alarm_state(
        AlarmName="acme-ledger-dead-depth", StateValue="ALARM", StateReason="3 messages"
    )

    role = iam.create_role(
        RoleName="acme-ledger-role",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    lam.create_function(
        FunctionName="acme-ledger-writer",
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": _zip()},
    )
    lam.create_event_source_mapping(
        EventSourceArn=ledger_arn, FunctionName="acme-ledger-writer", BatchSize=5
    )
    return {"ledger_arn": ledger_arn, "bus_arn": bus_arn}


def test_queue_discovery_pairs_each_queue_with_its_dlq(account):
    inventory = topology.discover_queues()

    ledger = inventory.queues["acme-ledger-inbox"]
    assert inventory.dlq_of(ledger).name == "acme-ledger-dead"
    assert [q.name for q in inventory.sources_of("acme-ledger-dead")] == ["acme-ledger-inbox"]


def test_bus_discovery_finds_rules_targets_archive_and_event_log(account):
    found = {b.bus.name: b for b in topology.discover_buses()}

    payments = found["acme-payments"]
    targets = {r.rule.name: [t.arn for t in r.targets] for r in payments.rules}
    assert targets["acme-ledger-route"] == [account["ledger_arn"]]
    assert [a.name for a in payments.archives] == ["acme-keep"]
    assert payments.log_group_names == ["/aws/events/acme-payments"]


def test_event_log_groups_are_discovered(account):
    assert [g.name for g in topology.discover_event_logs()] == ["/aws/events/acme-payments"]


def test_overview_row_joins_rule_lambda_dlq_and_alarms(account):
    rows = {c.queue.name: c for c in topology.overview().consumers}

    ledger = rows["acme-ledger-inbox"]
    assert (ledger.rules, ledger.functions) == (
        [("acme-payments", "acme-ledger-route")],
        ["acme-ledger-writer"],
    )
    assert [a.name for a in ledger.alarms] == ["acme-ledger-dead-depth"]
    assert (ledger.dlq_depth, ledger.alarm_state) == (3, "ALARM")


def test_overview_does_not_list_a_dlq_as_a_consumer(account):
    names = [c.queue.name for c in topology.overview().consumers]

    assert "acme-ledger-dead" not in names
    assert names[0] == "acme-ledger-inbox"  # in ALARM, so first


def test_resource_prefix_narrows_discovery(account, settings):
    settings.EVENTOPS_RESOURCE_PREFIX = "zeta"

    names = [c.queue.name for c in topology.overview().consumers]
    assert names == ["zeta-unrelated"]
    assert topology.buses().value == []
