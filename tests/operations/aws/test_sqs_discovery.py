"""SQS discovery: every page of ListQueues, attributes, redrive policies and DLQ sources."""

from __future__ import annotations

import json
from collections import Counter

import boto3
import pytest

from operations import topology
from operations.aws import client as aws_client
from operations.aws import sqs

QUEUES = 1_050  # more than one ListQueues page (1,000 at most)


def _count_calls() -> Counter:
    """Count calls by operation (before any client exists: clients copy the session's hooks)."""
    calls: Counter = Counter()
    aws_client.reset()
    aws_client.session().events.register(
        "before-call.*.*", lambda model, **kw: calls.update([model.name])
    )
    return calls


@pytest.fixture
def many_queues(aws):
    raw = boto3.client("sqs", region_name="us-east-1")
    for index in range(QUEUES):
        raw.create_queue(QueueName=f"bulk-{index:05d}")
    return raw


def test_discovery_reads_every_page_of_more_than_a_thousand_queues(many_queues):
    calls = _count_calls()

    inventory = topology.discover_queues("bulk-")

    assert calls["ListQueues"] == 2  # 1,000 + 50
    assert len(inventory.queues) == QUEUES and inventory.failed == {}


def test_queue_attributes_reads_depths_and_redrive_policy(aws):
    raw = boto3.client("sqs", region_name="us-east-1")
    dlq = raw.create_queue(QueueName="tern-dead", Attributes={"MessageRetentionPeriod": "3600"})
    dlq_arn = raw.get_queue_attributes(QueueUrl=dlq["QueueUrl"], AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 7})
    url = raw.create_queue(QueueName="tern-work", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    raw.send_message(QueueUrl=url, MessageBody="x")
    raw.send_message(QueueUrl=dlq["QueueUrl"], MessageBody="y")

    work = sqs.queue_attributes(url)
    dead = sqs.queue_attributes(dlq["QueueUrl"])

    assert (work.visible, work.redrive) == (1, sqs.RedrivePolicy(dlq_arn, 7))
    assert (dead.visible, dead.retention_seconds) == (1, 3600)


def test_dead_letter_sources_lists_the_source_queues(aws):
    raw = boto3.client("sqs", region_name="us-east-1")
    dlq_url = raw.create_queue(QueueName="tern-dead")["QueueUrl"]
    dlq_arn = raw.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
    for name in ("tern-a", "tern-b"):
        raw.create_queue(QueueName=name, Attributes={"RedrivePolicy": policy})

    sources = sqs.dead_letter_source_queue_urls(dlq_url)

    assert sorted(sqs.queue_name_from_url(u) for u in sources) == ["tern-a", "tern-b"]


def test_a_queue_deleted_during_discovery_is_skipped(aws, monkeypatch):
    raw = boto3.client("sqs", region_name="us-east-1")
    raw.create_queue(QueueName="tern-keep")
    gone = raw.create_queue(QueueName="tern-gone")["QueueUrl"]
    urls = sqs.list_queue_urls("tern-")
    raw.delete_queue(QueueUrl=gone)
    monkeypatch.setattr(sqs, "list_queue_urls", lambda prefix="": urls)

    inventory = topology.discover_queues("tern-")

    assert list(inventory.queues) == ["tern-keep"]
    assert inventory.failed == {}
