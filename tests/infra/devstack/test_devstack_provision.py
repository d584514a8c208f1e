"""The provisioner builds the topology into moto, and running it twice is harmless."""

from __future__ import annotations

import json

from infra.devstack.clients import Clients
from infra.devstack.emulator.moto_fixes import detach_event_source_pollers
from infra.devstack.provision import provision
from infra.topology import TOPOLOGY


def inventory(clients: Clients) -> dict[str, object]:
    """Counts and settings that a second run must not change."""
    queues = clients("sqs").list_queues().get("QueueUrls", [])
    rules = clients("events").list_rules(EventBusName=TOPOLOGY.bus_name)["Rules"]
    alarms = clients("cloudwatch").describe_alarms()["MetricAlarms"]
    mappings = clients("lambda").list_event_source_mappings()["EventSourceMappings"]
    targets = {
        r["Name"]: len(
            clients("events").list_targets_by_rule(Rule=r["Name"], EventBusName=TOPOLOGY.bus_name)[
                "Targets"
            ]
        )
        for r in rules
    }
    return {
        "queues": sorted(queues),
        "rules": sorted(r["Name"] for r in rules),
        "targets": targets,
        "alarms": sorted(a["AlarmName"] for a in alarms),
        "mappings": len(mappings),
        "functions": len(clients("lambda").list_functions()["Functions"]),
        "archives": len(clients("events").list_archives()["Archives"]),
    }


def test_provisioning_twice_changes_nothing(moto_clients: Clients) -> None:
    provision(moto_clients)
    first = inventory(moto_clients)

    provision(moto_clients)

    assert inventory(moto_clients) == first
    assert first["mappings"] == len(TOPOLOGY.consumers) + 1


def test_second_run_keeps_an_alarm_state_set_by_the_evaluator(moto_clients: Clients) -> None:
    provision(moto_clients)
    alarm = TOPOLOGY.dlq_alarm_name(TOPOLOGY.consumers[0])
    moto_clients("cloudwatch").set_alarm_state(
        AlarmName=alarm, StateValue="ALARM", StateReason="test"
    )

    provision(moto_clients)

    state = moto_clients("cloudwatch").describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]
    assert state["StateValue"] == "ALARM"


def test_visibility_timeout_override_shortens_every_consumer_queue(moto_clients: Clients) -> None:
    built = provision(moto_clients, visibility_timeout_s=2)

    timeouts = {
        name: moto_clients("sqs").get_queue_attributes(
            QueueUrl=c.queue_url, AttributeNames=["VisibilityTimeout", "RedrivePolicy"]
        )["Attributes"]
        for name, c in built.consumers.items()
    }

    assert {a["VisibilityTimeout"] for a in timeouts.values()} == {"2"}
    billing = json.loads(timeouts["billing"]["RedrivePolicy"])
    assert billing["maxReceiveCount"] == TOPOLOGY.consumer("billing").max_receive_count


def test_rule_delivers_an_event_to_its_queue_and_the_event_log(moto_clients: Clients) -> None:
    built = provision(moto_clients)
    detach_event_source_pollers()
    moto_clients("events").put_events(
        Entries=[
            {
                "Source": "eventops.orders",
                "DetailType": "OrderShipped",
                "Detail": json.dumps({"correlationId": "c-1"}),
                "EventBusName": TOPOLOGY.bus_name,
            }
        ]
    )

    depth = {
        name: moto_clients("sqs").get_queue_attributes(
            QueueUrl=c.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
        for name, c in built.consumers.items()
    }
    logged = moto_clients("logs").filter_log_events(logGroupName=TOPOLOGY.event_log_group)

    # OrderShipped matches notifications and analytics, not billing or shipping.
    assert depth == {"billing": "0", "shipping": "0", "notifications": "1", "analytics": "1"}
    assert len(logged["events"]) == 1


def test_detaching_moto_pollers_leaves_the_mappings_listed(moto_clients: Clients) -> None:
    provision(moto_clients)

    detached = detach_event_source_pollers()

    mappings = moto_clients("lambda").list_event_source_mappings()["EventSourceMappings"]
    assert detached == len(TOPOLOGY.consumers) + 1
    assert {m["State"] for m in mappings} == {"Enabled"}
