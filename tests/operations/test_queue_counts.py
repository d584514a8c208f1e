"""Overview depths from CloudWatch: one GetMetricData per 500 queries, exact reads where needed.

moto publishes no AWS/SQS metrics; the devstack emulator's sampler writes them into moto's
CloudWatch as AWS does (per minute, per queue), so these tests read what AWS would serve.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator

import boto3
import pytest
import time_machine
from django.core.cache import cache

from infra.devstack import emulator
from operations import queue_counts, topology
from operations.aws import client as aws_client

REGION = "us-east-1"


@pytest.fixture
def emu(aws, settings) -> Iterator[emulator.Emulator]:
    settings.EVENTOPS_CACHE_TTL = 15
    settings.EVENTOPS_TOPOLOGY_TTL = 300
    settings.EVENTOPS_RESOURCE_PREFIX = "heron-"
    cache.clear()
    installed = emulator.install()
    try:
        yield installed
    finally:
        emulator.uninstall()


@pytest.fixture
def calls(emu) -> Counter:
    counter: Counter = Counter()
    aws_client.reset()
    aws_client.session().events.register(
        "before-call.*.*", lambda model, **kw: counter.update([model.name])
    )
    return counter


def consumers(n: int, with_messages: tuple[int, ...] = ()) -> dict[str, str]:
    """``n`` queues with a DLQ each; DLQs at ``with_messages`` hold one message. Name -> URL."""
    sqs = boto3.client("sqs", region_name=REGION)
    urls = {}
    for i in range(n):
        name = f"heron-c{i:03d}"
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = f"arn:aws:sqs:{REGION}:123456789012:{name}-dlq"
        policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
        urls[name] = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": policy})[
            "QueueUrl"
        ]
        urls[f"{name}-dlq"] = dlq_url
        if i in with_messages:
            sqs.send_message(QueueUrl=dlq_url, MessageBody="{}")
    return urls


def test_depths_come_from_one_metric_call_and_exact_reads_of_non_empty_dlqs(emu, calls):
    consumers(20, with_messages=(3, 11))
    with time_machine.travel("2026-11-26 12:00:30 +0000", tick=False) as clock:
        topology.overview()
        emu.tick()
        calls.clear()
        clock.shift(16)

        view = topology.overview()

    assert calls == Counter(
        {"ListQueues": 1, "GetMetricData": 1, "GetQueueAttributes": 2, "DescribeAlarms": 1}
    )
    depths = {c.queue.name: c.dlq_depth for c in view.consumers if c.dlq_depth}
    assert depths == {"heron-c003": 1, "heron-c011": 1}


def test_a_dlq_emptied_since_the_last_datapoint_shows_its_exact_depth(emu, calls):
    urls = consumers(3, with_messages=(1,))
    with time_machine.travel("2026-11-26 12:00:30 +0000", tick=False) as clock:
        topology.overview()
        emu.tick()  # the metric says 1
        boto3.client("sqs", region_name=REGION).purge_queue(QueueUrl=urls["heron-c001-dlq"])
        clock.shift(16)

        view = topology.overview()

    assert [c.dlq_depth for c in view.consumers] == [0, 0, 0]


def test_queues_without_metrics_are_read_exactly(emu, calls):
    consumers(4)
    with time_machine.travel("2026-11-26 12:00:30 +0000", tick=False) as clock:
        topology.overview()
        calls.clear()
        clock.shift(16)  # no sample: no AWS/SQS datapoint at all

        topology.overview()

    assert calls["GetQueueAttributes"] == 8 and calls["GetMetricData"] == 1


def test_dlq_ages_come_with_the_depths(emu, calls):
    consumers(2, with_messages=(0,))
    with time_machine.travel("2026-11-26 12:00:30 +0000", tick=False) as clock:
        clock.shift(120)
        emu.tick()

        view = topology.overview()

    ages = {c.queue.name: c.dlq_age_seconds for c in view.consumers}
    assert ages["heron-c000"] is not None and ages["heron-c000"] >= 0
    assert calls["GetMetricData"] == 1


def test_source_queue_ages_come_in_the_same_metric_call(emu, calls):
    urls = consumers(2)
    with time_machine.travel("2026-11-26 12:00:30 +0000", tick=False) as clock:
        boto3.client("sqs", region_name=REGION).send_message(
            QueueUrl=urls["heron-c000"], MessageBody="{}"
        )
        clock.shift(120)
        emu.tick()

        view = topology.overview()

    ages = {c.queue.name: c.oldest_age_seconds for c in view.consumers}
    assert ages == {"heron-c000": 120, "heron-c001": 0}
    assert calls["GetMetricData"] == 1


def test_a_queue_created_after_the_structure_read_shows_within_the_ttl(emu, calls):
    consumers(2)
    with time_machine.travel("2026-11-26 12:00:30 +0000", tick=False) as clock:
        topology.overview()
        boto3.client("sqs", region_name=REGION).create_queue(QueueName="heron-late")
        boto3.client("sqs", region_name=REGION).delete_queue(
            QueueUrl=boto3.client("sqs", region_name=REGION).get_queue_url(QueueName="heron-c000")[
                "QueueUrl"
            ]
        )
        clock.shift(16)

        view = topology.overview()

    names = {c.queue.name for c in view.consumers}
    assert "heron-late" in names and "heron-c000" not in names


def test_more_than_500_queries_take_one_call_per_500(emu, calls):
    consumers(120)  # 240 queues: 480 depth queries and 240 age queries
    with time_machine.travel("2026-11-26 12:00:30 +0000", tick=False) as clock:
        topology.overview()
        emu.tick()
        calls.clear()
        clock.shift(16)

        topology.overview()

    assert calls["GetMetricData"] == math.ceil(720 / 500) == 2
    assert calls["GetQueueAttributes"] == 0


def test_the_overview_says_when_the_counts_were_read(emu, calls):
    consumers(1)
    with time_machine.travel("2026-11-26 12:00:30 +0000", tick=False) as clock:
        topology.overview()
        clock.shift(16)

        view = topology.overview()

    assert view.counts_read_at is not None
    assert view.counts_read_at.isoformat() == "2026-11-26T12:00:46+00:00"


def test_metric_queries_name_every_queue_and_only_dlq_ages():
    queries = queue_counts.metric_queries(["a", "a-dlq"], {"a-dlq"})

    assert [(q.id, q.metric_name) for q in queries] == [
        ("v0", queue_counts.VISIBLE),
        ("n0", queue_counts.NOT_VISIBLE),
        ("v1", queue_counts.VISIBLE),
        ("n1", queue_counts.NOT_VISIBLE),
        ("a1", queue_counts.AGE),
    ]
