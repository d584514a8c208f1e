"""The whole devstack for a few seconds, checked from outside with plain boto3 calls."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import boto3
import pytest

from infra.devstack.main import Devstack, Options
from infra.topology import TOPOLOGY

T = TypeVar("T")


def wait_for(probe: Callable[[], T], done: Callable[[T], bool], timeout_s: float = 30) -> T:
    """Call ``probe`` until ``done(result)`` or the timeout; returns the last result."""
    deadline = time.monotonic() + timeout_s
    result = probe()
    while not done(result) and time.monotonic() < deadline:
        time.sleep(0.5)
        result = probe()
    return result


@pytest.fixture
def devstack() -> Iterator[Devstack]:
    options = Options(
        port=0,
        rate=10,
        poison=0.5,
        transient=0.05,
        seed=7,
        visibility_timeout_s=1,
        evaluation_interval_s=2,
        status_interval_s=60,
    )
    stack = Devstack(options)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def client(stack: Devstack, service: str) -> Any:
    return boto3.client(service, endpoint_url=stack.endpoint, region_name="us-east-1")


@pytest.mark.slow
def test_devstack_traffic_fills_dlqs_logs_events_traces_and_fires_alarms(
    devstack: Devstack,
) -> None:
    sqs, logs = client(devstack, "sqs"), client(devstack, "logs")
    xray, cloudwatch = client(devstack, "xray"), client(devstack, "cloudwatch")
    dlq_urls = [
        sqs.get_queue_url(QueueName=TOPOLOGY.dlq_name(c))["QueueUrl"] for c in TOPOLOGY.consumers
    ]

    def dlq_depth() -> int:
        return sum(
            int(
                sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]["ApproximateNumberOfMessages"]
            )
            for url in dlq_urls
        )

    def alarms_firing() -> list[str]:
        alarms = cloudwatch.describe_alarms(StateValue="ALARM")["MetricAlarms"]
        return [a["AlarmName"] for a in alarms]

    assert wait_for(dlq_depth, lambda depth: depth > 0) > 0
    assert wait_for(alarms_firing, bool)

    logged = logs.filter_log_events(logGroupName=TOPOLOGY.event_log_group, limit=50)["events"]
    assert any('"eventops.orders"' in event["message"] for event in logged)

    poison_id = devstack.traffic.stats.poison_correlation_ids[0]  # type: ignore[union-attr]
    now = datetime.now(UTC)
    summaries = xray.get_trace_summaries(
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=1),
        FilterExpression=f'annotation.correlation_id = "{poison_id}"',
    )["TraceSummaries"]
    values = [
        v["AnnotationValue"]["StringValue"] for v in summaries[0]["Annotations"]["correlation_id"]
    ]
    assert len(summaries) == 1 and set(values) == {poison_id}
    assert summaries[0]["HasError"]
