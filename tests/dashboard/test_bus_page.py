"""The bus page: rules with escaped patterns and targets, archive, event log, 404."""

from __future__ import annotations

import json

import boto3
import pytest
from django.core.cache import cache


@pytest.fixture
def signed_in(viewer_client):
    """A logged-in viewer (the shared persona)."""
    return viewer_client


@pytest.fixture
def account(aws, settings):
    settings.EVENTOPS_RESOURCE_PREFIX = ""
    settings.EVENTOPS_CACHE_TTL = 60
    cache.clear()
    events = boto3.client("events", region_name="us-east-1")
    logs = boto3.client("logs", region_name="us-east-1")
    arn = events.create_event_bus(Name="ibis-bus")["EventBusArn"]
    pattern = {"source": ["ibis.app"], "detail": {"note": ["<script>alert(1)</script>"]}}
    events.put_rule(Name="ibis-rule", EventBusName="ibis-bus", EventPattern=json.dumps(pattern))
    events.put_targets(
        Rule="ibis-rule",
        EventBusName="ibis-bus",
        Targets=[{"Id": "q", "Arn": "arn:aws:sqs:us-east-1:123456789012:ibis-q"}],
    )
    logs.create_log_group(logGroupName="/aws/events/ibis-bus")
    events.create_archive(ArchiveName="ibis-archive", EventSourceArn=arn, RetentionDays=90)
    yield
    cache.clear()


def test_bus_page_shows_rule_pattern_escaped_and_its_targets(signed_in, account):
    response = signed_in.get("/env/default/buses/ibis-bus/")

    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in response.content
    assert b"<script>alert(1)" not in response.content
    assert b'href="/env/default/queues/ibis-q/"' in response.content


def test_bus_page_shows_archive_and_event_log(signed_in, account):
    response = signed_in.get("/env/default/buses/ibis-bus/")

    assert b"ibis-archive" in response.content
    assert b"/aws/events/ibis-bus" in response.content


def test_rule_metrics_come_from_aws_events_per_bus_and_rule(signed_in, account):
    boto3.client("cloudwatch", region_name="us-east-1").put_metric_data(
        Namespace="AWS/Events",
        MetricData=[
            {
                "MetricName": "MatchedEvents",
                "Dimensions": [
                    {"Name": "EventBusName", "Value": "ibis-bus"},
                    {"Name": "RuleName", "Value": "ibis-rule"},
                ],
                "Value": 5,
            }
        ],
    )

    response = signed_in.get("/env/default/buses/ibis-bus/")

    stats = {s.entry.rule.name: s for s in response.context["detail"].rules}["ibis-rule"]
    assert stats.day == {"matched": 5.0, "invocations": 0.0, "failed": 0.0}
    assert response.context["detail"].metrics.ok


def test_unknown_bus_is_a_404(signed_in, account):
    assert signed_in.get("/env/default/buses/ibis-nowhere/").status_code == 404


def test_rule_metrics_on_the_default_bus_are_read_by_rule_name_only(signed_in, account):
    boto3.client("events", region_name="us-east-1").put_rule(
        Name="ibis-default-rule", EventPattern=json.dumps({"source": ["ibis.app"]})
    )
    boto3.client("cloudwatch", region_name="us-east-1").put_metric_data(
        Namespace="AWS/Events",
        MetricData=[
            {
                "MetricName": "MatchedEvents",
                "Dimensions": [{"Name": "RuleName", "Value": "ibis-default-rule"}],
                "Value": 4,
            }
        ],
    )

    response = signed_in.get("/env/default/buses/default/")

    stats = {s.entry.rule.name: s for s in response.context["detail"].rules}["ibis-default-rule"]
    assert stats.day["matched"] == 4.0


def test_rule_metric_queries_name_the_bus_except_for_the_default_bus(monkeypatch):
    from operations import topology
    from operations.aws.events import EventBus, Rule
    from operations.cache import Cached

    asked = []
    monkeypatch.setattr(
        topology, "metrics", lambda name, queries, window: asked.extend(queries) or Cached({}, 0.0)
    )
    monkeypatch.setattr(topology, "event_logs", lambda: Cached([], 0.0))
    for bus in ("default", "ibis-bus"):
        rule = Rule(f"{bus}-rule", "", bus, "ENABLED", "", "", "")
        topo = topology.BusTopology(EventBus(bus, f"arn:{bus}"), [topology.RuleTargets(rule, ())])
        topology.bus_detail(Cached([topo], 0.0), topo)

    dims = {q.dimensions for q in asked}
    assert dims == {
        (("RuleName", "default-rule"),),
        (("EventBusName", "ibis-bus"), ("RuleName", "ibis-bus-rule")),
    }
