"""EventBridge and Logs discovery: NextToken loops, rules, targets, archives and log groups."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from operations.aws import client as aws_client
from operations.aws import events, logs
from operations.aws.errors import AwsError


def test_list_event_buses_follows_next_token():
    with Stubber(aws_client.client("events")) as stub:
        stub.add_response(
            "list_event_buses",
            {"EventBuses": [{"Name": "kite-a", "Arn": "arn:a"}], "NextToken": "n"},
            {"Limit": 100, "NamePrefix": "kite"},
        )
        stub.add_response(
            "list_event_buses",
            {"EventBuses": [{"Name": "kite-b", "Arn": "arn:b"}]},
            {"Limit": 100, "NamePrefix": "kite", "NextToken": "n"},
        )

        buses = events.list_event_buses("kite")

    assert [b.name for b in buses] == ["kite-a", "kite-b"]


def test_rules_and_targets_come_back_as_dataclasses(aws):
    raw = boto3.client("events", region_name="us-east-1")
    raw.create_event_bus(Name="kite-bus")
    raw.put_rule(Name="kite-r", EventBusName="kite-bus", EventPattern=json.dumps({"source": ["k"]}))
    raw.put_targets(
        Rule="kite-r",
        EventBusName="kite-bus",
        Targets=[{"Id": "t", "Arn": "arn:aws:sqs:us-east-1:123456789012:kite-q"}],
    )

    (rule,) = events.list_rules("kite-bus")
    (target,) = events.list_targets("kite-r", "kite-bus")

    assert json.loads(rule.event_pattern) == {"source": ["k"]}
    assert (target.service, target.id) == ("sqs", "t")


def test_list_archives_reports_source_and_retention(aws):
    raw = boto3.client("events", region_name="us-east-1")
    arn = raw.create_event_bus(Name="kite-bus")["EventBusArn"]
    raw.create_archive(ArchiveName="kite-arch", EventSourceArn=arn, RetentionDays=9)

    (archive,) = events.list_archives()

    assert (archive.source_arn, archive.retention_days) == (arn, 9)


def test_describe_log_groups_applies_the_prefix(aws):
    raw = boto3.client("logs", region_name="us-east-1")
    raw.create_log_group(logGroupName="/aws/events/kite-bus")
    raw.create_log_group(logGroupName="/aws/lambda/kite-fn")
    raw.put_retention_policy(logGroupName="/aws/events/kite-bus", retentionInDays=90)

    groups = logs.describe_log_groups("/aws/events/")

    assert [(g.name, g.retention_days) for g in groups] == [("/aws/events/kite-bus", 90)]


def test_missing_bus_rules_raise_a_not_found_aws_error(aws):
    with pytest.raises(AwsError) as caught:
        events.list_rules("kite-nowhere")

    assert caught.value.not_found
    assert caught.value.operation == "ListRules"
