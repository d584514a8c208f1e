"""The alarms the devstack provisions, as the dashboard's alarm drill-down shows them.

With the emulator installed (it evaluates metric math and has composite alarms): the
composite DLQ alarm's tree lists every consumer's DLQ alarm, and a DLQ alarm (metric math on
visible + in-flight messages) is graphed as the sum it compares with its threshold.
"""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from django.core.cache import cache
from django.utils import timezone

from infra.devstack import emulator
from infra.devstack.clients import Clients
from infra.devstack.provision import Provisioned, provision
from infra.topology import TOPOLOGY
from operations import alarms
from operations.aws import cloudwatch

pytestmark = pytest.mark.django_db
BILLING = TOPOLOGY.consumer("billing")


@pytest.fixture
def devstack(aws: None, settings) -> Iterator[Provisioned]:
    settings.EVENTOPS_PEEK_VISIBILITY_SECONDS = 0
    cache.clear()
    emulator.install()
    try:
        yield provision(Clients(endpoint_url=None, region="us-east-1"))
    finally:
        emulator.uninstall()
        cache.clear()


def _billing_dlq_with_one_message_in_flight(devstack: Provisioned) -> None:
    """Two messages in the billing DLQ, one of them held by a viewer's long peek."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = devstack.consumers[BILLING.name].dlq_url
    for n in range(2):
        sqs.send_message(QueueUrl=url, MessageBody=f'{{"detail-type": "OrderPaid", "n": {n}}}')
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=3600)
    emulator.tick()


def test_composite_dlq_alarm_shows_every_consumer_dlq_alarm_as_a_child(devstack):
    tree = alarms.drilldown(TOPOLOGY.dlqs_composite_alarm_name).tree
    assert tree is not None and tree.kind == "composite"
    assert [child.name for child in tree.children] == [
        TOPOLOGY.dlq_alarm_name(c) for c in TOPOLOGY.consumers
    ]


def test_composite_dlq_alarm_follows_a_consumer_dlq_into_alarm(devstack):
    _billing_dlq_with_one_message_in_flight(devstack)
    tree = alarms.drilldown(TOPOLOGY.dlqs_composite_alarm_name).tree
    assert tree is not None and tree.state == "ALARM"
    assert {c.name for c in tree.children if c.state == "ALARM"} == {
        TOPOLOGY.dlq_alarm_name(BILLING)
    }


def test_metric_math_dlq_alarm_detail_reads_its_queries(devstack):
    detail = cloudwatch.describe_alarm(TOPOLOGY.dlq_alarm_name(BILLING))
    assert detail is not None and detail.period == TOPOLOGY.dlq_alarm_period_s
    assert [q.id for q in detail.queries if q.return_data] == ["messages"]
    assert {q.metric.metric_name for q in detail.queries if q.metric} == {
        "ApproximateNumberOfMessagesVisible",
        "ApproximateNumberOfMessagesNotVisible",
    }


def test_metric_math_dlq_alarm_is_graphed_as_visible_plus_in_flight(devstack):
    _billing_dlq_with_one_message_in_flight(devstack)
    detail = cloudwatch.describe_alarm(TOPOLOGY.dlq_alarm_name(BILLING))
    assert detail is not None
    drawn = alarms.graph(detail, None, timezone.now())
    assert detail.alarm.state == "ALARM"
    assert drawn.latest == 2.0


def test_metric_math_dlq_alarm_drilldown_still_finds_its_dlq(devstack):
    _billing_dlq_with_one_message_in_flight(devstack)
    drill = alarms.drilldown(TOPOLOGY.dlq_alarm_name(BILLING))
    assert drill.dlq is not None and drill.dlq.queue_name == TOPOLOGY.dlq_name(BILLING)
    assert drill.graphs and drill.graphs[0].latest == 2.0
