"""/metrics: open to the token or an allowed network only; the dashboard's own metrics."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from django.test import Client

from operations.aws.errors import AwsError
from operations.models import Operation

pytestmark = pytest.mark.django_db


def scrape(remote: str = "127.0.0.1", **headers: str) -> Any:
    return Client(REMOTE_ADDR=remote).get("/metrics", headers=headers)


def test_loopback_may_scrape_by_default() -> None:
    response = scrape()
    assert response.status_code == 200 and b"django_http_requests" in response.content


def test_another_address_is_403(settings: Any) -> None:
    assert scrape("203.0.113.9").status_code == 403


def test_the_token_opens_it_from_anywhere(settings: Any) -> None:
    settings.EVENTOPS_METRICS_TOKEN = "s3cret"
    assert scrape("203.0.113.9", Authorization="Bearer s3cret").status_code == 200
    assert scrape("203.0.113.9", Authorization="Bearer wrong").status_code == 403


def test_a_configured_network_may_scrape(settings: Any) -> None:
    settings.EVENTOPS_METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert scrape("10.1.2.3").status_code == 200 and scrape("127.0.0.1").status_code == 403


def test_operations_by_kind_and_state_and_messages_moved() -> None:
    for moved in (3, 4):
        Operation.objects.create(
            kind="redrive",
            target=f"q{moved}",
            reason="r",
            requested_by_name="x",
            state="succeeded",
            moved=moved,
            failed=1,
        )
    text = scrape().content.decode()
    assert 'eventops_operations{kind="redrive",state="succeeded"} 2.0' in text
    assert 'eventops_messages_moved_total{kind="redrive"} 7.0' in text
    assert 'eventops_messages_failed_total{kind="redrive"} 2.0' in text


def test_aws_calls_are_counted_by_service_operation_and_error(aws: None) -> None:
    from operations.aws import sqs

    sqs.list_queue_urls()
    with pytest.raises(AwsError):
        sqs.queue_url("does-not-exist")
    text = scrape().content.decode()
    assert 'eventops_aws_calls_total{error="",operation="ListQueues",service="sqs"}' in text
    assert 'operation="GetQueueUrl",service="sqs"' in text and "NonExistentQueue" in text


def test_cache_hits_and_misses_are_counted(aws: None) -> None:
    from prometheus_client import REGISTRY

    from operations import topology

    def count(result: str) -> float:
        return REGISTRY.get_sample_value("eventops_cache_lookups_total", {"result": result}) or 0

    boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="q")
    hits, misses = count("hit"), count("miss")
    topology.queues()
    assert count("miss") > misses and count("hit") == hits
    topology.queues()
    assert count("hit") > hits
