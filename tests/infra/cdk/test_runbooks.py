"""Every consumer's DLQ alarms carry its runbook: the ``runbook`` tag and a URL in the
description (what the dashboard reads, operations/runbooks.py)."""

from __future__ import annotations

from infra.topology import TOPOLOGY


def _alarm(cfn, name):
    (found,) = [
        a["Properties"]
        for a in cfn.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("AlarmName") == name
    ]
    return found


def test_each_consumers_dlq_alarms_have_its_runbook(cfn) -> None:
    for consumer in TOPOLOGY.consumers:
        url = TOPOLOGY.runbook(consumer)
        for name in (TOPOLOGY.dlq_alarm_name(consumer), TOPOLOGY.dlq_age_alarm_name(consumer)):
            alarm = _alarm(cfn, name)
            assert {"Key": "runbook", "Value": url} in alarm["Tags"]
            assert alarm["AlarmDescription"].endswith(f"Runbook: {url}")


def test_the_default_runbook_is_per_consumer() -> None:
    urls = {TOPOLOGY.runbook(c) for c in TOPOLOGY.consumers}
    assert len(urls) == len(TOPOLOGY.consumers)


def test_a_consumer_may_name_its_own_runbook() -> None:
    from dataclasses import replace

    consumer = replace(TOPOLOGY.consumers[0], runbook="https://wiki.example.org/billing")
    assert TOPOLOGY.runbook(consumer, "https://other.example") == "https://wiki.example.org/billing"
