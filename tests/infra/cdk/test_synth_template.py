"""``infra.stack.synth_template()``: the in-process template other tests compare against."""

from __future__ import annotations

import pytest

from infra.stack import synth_template, template_inventory
from infra.topology import TOPOLOGY


@pytest.mark.slow
def test_synth_template_is_deterministic_and_matches_the_session_synthesis(template):
    assert synth_template() == template.to_json()


@pytest.mark.slow
def test_synth_template_returns_an_independent_copy():
    first = synth_template()
    first["Resources"].clear()
    assert synth_template()["Resources"]


def test_inventory_resolves_references_to_physical_names(template):
    inventory = template_inventory(template.to_json())
    billing = TOPOLOGY.consumer("billing")
    assert inventory["queues"][TOPOLOGY.queue_name(billing)]["RedrivePolicy"] == {
        "deadLetterTargetQueue": TOPOLOGY.dlq_name(billing),
        "maxReceiveCount": billing.max_receive_count,
    }
    assert inventory["rules"][TOPOLOGY.rule_name(billing)]["Targets"] == {
        billing.name: TOPOLOGY.queue_name(billing)
    }


def test_inventory_names_alarm_queues_topics_and_the_event_log(template):
    inventory = template_inventory(template.to_json())
    alarm = inventory["alarms"][TOPOLOGY.dlq_alarm_name(TOPOLOGY.consumer("shipping"))]
    watched = [q["MetricStat"]["Dimensions"] for q in alarm["Metrics"] if "MetricStat" in q]
    assert watched == [{"QueueName": TOPOLOGY.dlq_name(TOPOLOGY.consumer("shipping"))}] * 2
    assert alarm["AlarmActions"] == [TOPOLOGY.alerts_topic]
    assert inventory["rules"][TOPOLOGY.event_log_rule_name]["Targets"] == {
        "event-log": TOPOLOGY.event_log_group
    }
