"""No drift: what the devstack provisions into moto is what the CDK template declares.

The template side is ``infra.stack.template_inventory()`` (names resolved from the synthesized
CloudFormation); the moto side is read back here with plain describe calls after
``infra.devstack.provision.provision``. Synthesis runs Node.js (several seconds), so this module
synthesizes once and is marked slow.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from infra.devstack import emulator
from infra.devstack.clients import Clients
from infra.devstack.provision import provision
from infra.topology import TOPOLOGY

pytestmark = pytest.mark.slow

# EventBridge (and moto) create a managed rule per archive.
ARCHIVE_RULE_PREFIX = "Events-Archive-"


@pytest.fixture(scope="module")
def template() -> dict[str, dict[str, Any]]:
    from infra.stack import template_inventory

    return template_inventory()


@pytest.fixture(scope="module")
def moto() -> Iterator[dict[str, dict[str, Any]]]:
    """The provisioned topology, read back from moto (fake credentials set here: module scope)."""
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env.setenv(name, "testing")
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            # As the devstack runs: with the emulator (stock moto has no composite alarms).
            emulator.install()
            try:
                clients = Clients(endpoint_url=None, region="us-east-1")
                provision(clients)
                yield read_back(clients)
            finally:
                emulator.uninstall()


def _name(arn: str) -> str:
    """Queue / topic / log group name from its ARN."""
    if ":log-group:" in arn:
        return arn.split(":log-group:", 1)[1].removesuffix(":*")
    return arn.rsplit(":", 1)[-1]


def read_back(clients: Clients) -> dict[str, dict[str, Any]]:
    # CDK: imported only where needed, as in template().
    from infra.stack import ALARM_FIELDS, metric_queries

    sqs, events, cloudwatch = clients("sqs"), clients("events"), clients("cloudwatch")
    queues = {}
    for url in sqs.list_queues(QueueNamePrefix=TOPOLOGY.prefix)["QueueUrls"]:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attributes["RedrivePolicy"]) if "RedrivePolicy" in attributes else None
        queues[url.rsplit("/", 1)[-1]] = {
            "VisibilityTimeout": int(attributes["VisibilityTimeout"]),
            "MessageRetentionPeriod": int(attributes["MessageRetentionPeriod"]),
            "RedrivePolicy": None
            if redrive is None
            else {
                "deadLetterTargetQueue": _name(redrive["deadLetterTargetArn"]),
                "maxReceiveCount": int(redrive["maxReceiveCount"]),
            },
        }
    rules = {}
    for rule in events.list_rules(EventBusName=TOPOLOGY.bus_name)["Rules"]:
        if rule["Name"].startswith(ARCHIVE_RULE_PREFIX):
            continue  # the archive's own managed rule: not declared in any template
        targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=TOPOLOGY.bus_name)
        rules[rule["Name"]] = {
            "EventBusName": rule["EventBusName"],
            "EventPattern": json.loads(rule["EventPattern"]),
            "Targets": {t["Id"]: _name(t["Arn"]) for t in targets["Targets"]},
        }
    described = cloudwatch.describe_alarms(
        AlarmNamePrefix=TOPOLOGY.prefix, AlarmTypes=["MetricAlarm", "CompositeAlarm"]
    )
    alarms = {
        a["AlarmName"]: {
            **{key: a.get(key) for key in ALARM_FIELDS},
            "Dimensions": {d["Name"]: d["Value"] for d in a.get("Dimensions", [])},
            "Metrics": metric_queries(a.get("Metrics")),
            "AlarmActions": [_name(arn) for arn in a["AlarmActions"]],
            "OKActions": [_name(arn) for arn in a["OKActions"]],
        }
        for a in described["MetricAlarms"]
    }
    composite_alarms = {
        a["AlarmName"]: {
            "AlarmRule": a["AlarmRule"],
            "AlarmActions": [_name(arn) for arn in a["AlarmActions"]],
            "OKActions": [_name(arn) for arn in a["OKActions"]],
        }
        for a in described["CompositeAlarms"]
    }
    archives = {}
    for summary in events.list_archives()["Archives"]:
        archive = events.describe_archive(ArchiveName=summary["ArchiveName"])
        pattern = archive.get("EventPattern")
        archives[archive["ArchiveName"]] = {
            "EventSourceBus": archive["EventSourceArn"].rsplit("/", 1)[-1],
            "RetentionDays": archive["RetentionDays"],
            "EventPattern": json.loads(pattern) if pattern else None,
        }
    log_groups = {
        g["logGroupName"]: {"RetentionInDays": g.get("retentionInDays")}
        for g in clients("logs").describe_log_groups()["logGroups"]
    }
    tables = {}
    for name in clients("dynamodb").list_tables()["TableNames"]:
        table = clients("dynamodb").describe_table(TableName=name)["Table"]
        ttl = clients("dynamodb").describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        tables[name] = {
            "KeySchema": table["KeySchema"],
            "GlobalSecondaryIndexes": {
                i["IndexName"]: i["KeySchema"] for i in table.get("GlobalSecondaryIndexes", [])
            },
            "TimeToLiveAttribute": ttl.get("AttributeName"),
            "StreamViewType": table.get("StreamSpecification", {}).get("StreamViewType"),
        }
    functions = {
        f["FunctionName"]: {
            "Handler": f["Handler"],
            "Runtime": f["Runtime"],
            "TracingMode": f.get("TracingConfig", {}).get("Mode"),
        }
        for f in clients("lambda").list_functions()["Functions"]
    }
    return {
        "queues": queues,
        "rules": rules,
        "alarms": alarms,
        "composite_alarms": composite_alarms,
        "archives": archives,
        "log_groups": log_groups,
        "tables": tables,
        "functions": functions,
    }


def declared(section: dict[str, Any]) -> dict[str, Any]:
    """Drop settings the template leaves at the AWS default (None): nothing to compare."""
    return {
        name: {key: value for key, value in props.items() if value is not None}
        for name, props in section.items()
    }


def provisioned_like(
    template_section: dict[str, Any], moto_section: dict[str, Any]
) -> dict[str, Any]:
    """The moto section restricted to the keys the template declares for each resource."""
    wanted = declared(template_section)
    return {
        name: {key: props.get(key) for key in wanted.get(name, props)}
        for name, props in moto_section.items()
    }


@pytest.mark.parametrize(
    "section",
    [
        "queues",
        "rules",
        "alarms",
        "composite_alarms",
        "archives",
        "log_groups",
        "tables",
        "functions",
    ],
)
def test_devstack_builds_the_same_resources_as_the_template(
    template: dict[str, dict[str, Any]], moto: dict[str, dict[str, Any]], section: str
) -> None:
    assert sorted(moto[section]) == sorted(template[section])
    assert provisioned_like(template[section], moto[section]) == declared(template[section])


def test_every_consumer_queue_redrives_to_its_own_dlq_in_both(
    template: dict[str, dict[str, Any]], moto: dict[str, dict[str, Any]]
) -> None:
    for consumer in TOPOLOGY.consumers:
        name = TOPOLOGY.queue_name(consumer)
        expected = {"deadLetterTargetQueue": TOPOLOGY.dlq_name(consumer)}
        expected["maxReceiveCount"] = consumer.max_receive_count  # type: ignore[assignment]
        assert template["queues"][name]["RedrivePolicy"] == expected
        assert moto["queues"][name]["RedrivePolicy"] == expected
