"""Archive and event log: every event, kept 90 days."""

from __future__ import annotations

import json

from infra.stack import CATCH_ALL_PATTERN
from infra.topology import TOPOLOGY


def _bus_id(cfn):
    (bus_id,) = cfn.of_type("AWS::Events::EventBus")
    return bus_id


def test_bus_is_the_topology_custom_bus(cfn):
    assert cfn.props(_bus_id(cfn))["Name"] == TOPOLOGY.bus_name
    assert TOPOLOGY.bus_name != "default"


def test_archive_keeps_every_event_on_the_bus_for_90_days(cfn):
    (archive,) = [a["Properties"] for a in cfn.of_type("AWS::Events::Archive").values()]
    assert archive["RetentionDays"] == TOPOLOGY.archive_retention_days == 90
    assert archive["SourceArn"] == cfn.arn_of(_bus_id(cfn)) and "EventPattern" not in archive


def test_event_log_group_keeps_events_as_long_as_the_archive(template):
    template.has_resource_properties(
        "AWS::Logs::LogGroup",
        {"LogGroupName": TOPOLOGY.event_log_group, "RetentionInDays": 90},
    )
    assert TOPOLOGY.event_log_retention_days == TOPOLOGY.archive_retention_days


def test_catch_all_rule_sends_every_event_to_the_event_log(cfn):
    (rule,) = [
        r["Properties"]
        for r in cfn.of_type("AWS::Events::Rule").values()
        if r["Properties"]["Name"] == TOPOLOGY.event_log_rule_name
    ]
    assert rule["EventPattern"] == CATCH_ALL_PATTERN
    (target,) = rule["Targets"]
    assert target["Arn"]["Fn::Join"][1][-1] == f":log-group:{TOPOLOGY.event_log_group}"


def test_log_resource_policy_lets_eventbridge_write_the_event_log(cfn):
    (log_group_id,) = [
        key
        for key, group in cfn.of_type("AWS::Logs::LogGroup").items()
        if group["Properties"]["LogGroupName"] == TOPOLOGY.event_log_group
    ]
    (policy,) = [p["Properties"] for p in cfn.of_type("AWS::Logs::ResourcePolicy").values()]
    # The document is a JSON string built with Fn::Join around the log group's ARN.
    text = json.dumps(policy["PolicyDocument"])
    assert "events.amazonaws.com" in text and "logs:PutLogEvents" in text
    assert json.dumps({"Fn::GetAtt": [log_group_id, "Arn"]}) in text
