"""The read cache: no AWS calls within the TTL, stale-on-error, partial AccessDenied."""

from __future__ import annotations

from collections import Counter

import boto3
import pytest
import time_machine
from django.core.cache import cache

from operations import cache as read_cache
from operations import topology
from operations.aws import client as aws_client
from operations.aws import cloudwatch
from operations.aws.errors import AwsError


@pytest.fixture
def ttl(settings):
    settings.EVENTOPS_CACHE_TTL = 15
    settings.EVENTOPS_RESOURCE_PREFIX = ""
    cache.clear()
    yield 15
    cache.clear()


@pytest.fixture
def small_account(aws, ttl):
    sqs = boto3.client("sqs", region_name="us-east-1")
    sqs.create_queue(QueueName="lark-work")
    boto3.client("cloudwatch", region_name="us-east-1").put_metric_alarm(
        AlarmName="lark-depth",
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[{"Name": "QueueName", "Value": "lark-work"}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )


@pytest.fixture
def calls(small_account) -> Counter:
    """AWS calls by operation. Registered on the session before any client exists:
    a client copies the session's event hooks when it is created."""
    counter: Counter = Counter()
    aws_client.reset()
    aws_client.session().events.register(
        "before-call.*.*", lambda model, **kw: counter.update([model.name])
    )
    return counter


def _deny(operation: str):
    def raiser(*args, **kwargs):
        raise AwsError("User is not authorized", code="AccessDenied", operation=operation)

    return raiser


def test_a_second_overview_within_the_ttl_makes_no_aws_calls(calls):
    with time_machine.travel("2026-11-26 12:00:00 +0000", tick=False) as clock:
        topology.overview()
        assert calls["ListQueues"] == 1
        calls.clear()
        clock.shift(14)

        topology.overview()

    assert sum(calls.values()) == 0


def test_after_the_ttl_the_overview_reads_aws_again(calls):
    with time_machine.travel("2026-11-26 12:00:00 +0000", tick=False) as clock:
        topology.overview()
        calls.clear()
        clock.shift(16)

        topology.overview()

    assert calls["ListQueues"] == 1
    assert calls["DescribeAlarms"] == 1


def test_an_aws_error_returns_the_last_good_value_marked_stale(small_account, monkeypatch):
    with time_machine.travel("2026-11-26 12:00:00 +0000", tick=False) as clock:
        good = topology.alarms()
        monkeypatch.setattr(
            cloudwatch,
            "describe_alarms",
            lambda prefix="": (_ for _ in ()).throw(
                AwsError(
                    "Rate exceeded", code="Throttling", operation="DescribeAlarms", transient=True
                )
            ),
        )
        clock.shift(60)

        later = topology.alarms()

    assert later.stale and later.value == good.value
    assert "Rate exceeded" in later.error


def test_an_error_with_no_previous_value_has_no_value_and_a_message(ttl):
    def fail():
        raise AwsError("boom", code="InternalFailure", operation="ListQueues", transient=True)

    result = read_cache.cached("lark-nothing", fail)

    assert result.value is None and not result.stale
    assert "boom" in result.error


def test_zero_ttl_always_fetches(settings, ttl):
    settings.EVENTOPS_CACHE_TTL = 0
    fetches = Counter()

    for _ in range(3):
        read_cache.cached("lark-zero", lambda: fetches.update(["x"]) or 1)

    assert fetches["x"] == 3


def test_denied_alarms_leave_the_other_panels_intact(small_account, monkeypatch):
    monkeypatch.setattr(cloudwatch, "describe_alarms", _deny("DescribeAlarms"))

    view = topology.overview()

    assert [c.queue.name for c in view.consumers] == ["lark-work"]
    assert view.alarms.access_denied
    assert "cloudwatch:DescribeAlarms" in view.alarms.error


def test_denied_queue_listing_names_the_sqs_permission(small_account, monkeypatch):
    from operations.aws import sqs

    monkeypatch.setattr(sqs, "list_queue_urls", _deny("ListQueues"))

    view = topology.overview()

    assert view.consumers == []
    assert "sqs:ListQueues" in view.queues.error


def test_denied_queue_attributes_name_the_sqs_permission(small_account, monkeypatch):
    from operations.aws import sqs

    def denied(url: str):
        raise AwsError("no", code="AccessDenied", operation="GetQueueAttributes")

    monkeypatch.setattr(sqs, "queue_attributes", denied)

    view = topology.overview()

    assert view.consumers == []
    assert "sqs:GetQueueAttributes" in view.queues.error


def test_rules_and_mappings_are_reread_only_after_the_topology_ttl(calls, settings):
    settings.EVENTOPS_TOPOLOGY_TTL = 300
    with time_machine.travel("2026-11-26 12:00:00 +0000", tick=False) as clock:
        topology.overview()
        calls.clear()
        clock.shift(16)
        topology.overview()
        after_ttl = calls["ListEventBuses"] + calls["ListEventSourceMappings"]
        clock.shift(300)
        topology.overview()

    assert after_ttl == 0
    assert (calls["ListEventBuses"], calls["ListEventSourceMappings"]) == (1, 1)


def test_a_failure_is_remembered_for_the_ttl_with_the_last_good_value(small_account, monkeypatch):
    attempts = Counter()

    def throttled(prefix: str = ""):
        attempts.update(["DescribeAlarms"])
        raise AwsError("Rate exceeded", code="Throttling", operation="DescribeAlarms")

    with time_machine.travel("2026-11-26 12:00:00 +0000", tick=False) as clock:
        good = topology.alarms()
        monkeypatch.setattr(cloudwatch, "describe_alarms", throttled)
        clock.shift(16)
        topology.alarms()
        clock.shift(14)
        again = topology.alarms()
        within_ttl = attempts["DescribeAlarms"]
        clock.shift(2)
        topology.alarms()

    assert within_ttl == 1 and attempts["DescribeAlarms"] == 2
    assert again.stale and again.value == good.value and "Rate exceeded" in again.error


def test_a_failure_with_nothing_cached_is_remembered_too(ttl):
    attempts = Counter()

    def fail():
        attempts.update(["x"])
        raise AwsError("boom", code="InternalFailure", operation="ListQueues", transient=True)

    read_cache.cached("lark-down", fail)
    again = read_cache.cached("lark-down", fail)

    assert attempts["x"] == 1
    assert again.value is None and "boom" in again.error and again.failed_at is not None


def test_a_failure_after_a_recovery_shows_the_value_read_in_between(ttl):
    def fail():
        raise AwsError("boom", code="InternalFailure", operation="ListQueues", transient=True)

    with time_machine.travel("2026-11-26 12:00:00 +0000", tick=False) as clock:
        read_cache.cached("lark-back", fail)
        clock.shift(16)
        back = read_cache.cached("lark-back", lambda: 7)
        clock.shift(16)
        fails_again = read_cache.cached("lark-back", fail)

    assert back.ok and back.value == 7
    assert fails_again.value == 7 and fails_again.fetched_at == back.fetched_at
