"""The queue list and queue page: relations, chart data, 404 on unknown names."""

from __future__ import annotations

import json

import boto3
import pytest
from django.core.cache import cache

from operations import cache as read_cache
from operations.aws import sqs as sqs_adapter
from operations.aws.errors import AwsError
from tests import aws_calls as counting

aws_calls = counting.aws_calls


@pytest.fixture
def signed_in(viewer_client):
    """A logged-in viewer (the shared persona)."""
    return viewer_client


@pytest.fixture
def account(aws, settings):
    settings.EVENTOPS_RESOURCE_PREFIX = ""
    settings.EVENTOPS_CACHE_TTL = 60
    cache.clear()
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq_url = sqs.create_queue(QueueName="grebe-dead")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})
    sqs.create_queue(QueueName="grebe-work", Attributes={"RedrivePolicy": policy})
    sqs.send_message(QueueUrl=dlq_url, MessageBody="{}")
    yield
    cache.clear()


def test_queue_list_shows_every_queue_and_marks_dlqs(signed_in, account):
    response = signed_in.get("/env/default/queues/")

    rows = {r["queue"].name: r for r in response.context["rows"]}
    assert set(rows) == {"grebe-dead", "grebe-work"}
    assert rows["grebe-dead"]["is_dlq"] and rows["grebe-work"]["dlq"].name == "grebe-dead"


def test_queue_page_links_its_dlq_and_carries_chart_data(signed_in, account):
    response = signed_in.get("/env/default/queues/grebe-work/")

    assert b'href="/env/default/queues/grebe-dead/"' in response.content
    assert b'<script id="queue-charts-data" type="application/json">' in response.content


def test_chart_data_has_one_point_per_period_and_a_dlq_series(signed_in, account):
    response = signed_in.get("/env/default/queues/grebe-work/?range=24h")

    charts = response.context["detail"].charts
    assert len(charts[0]["data"][0]) == 1441  # 24 h at 60 s, both ends included
    assert charts[1]["labels"] == ["Queue visible", "DLQ visible"]


def test_dlq_page_lists_its_sources_from_list_dead_letter_source_queues(signed_in, account):
    response = signed_in.get("/env/default/queues/grebe-dead/")

    assert response.context["detail"].sources.value == ["grebe-work"]
    assert b"Dead-letter queue grebe-dead" in response.content


def test_unknown_queue_is_a_404(signed_in, account):
    assert signed_in.get("/env/default/queues/grebe-nowhere/").status_code == 404


def test_invalid_queue_name_is_a_404(signed_in, account):
    assert signed_in.get("/env/default/queues/not%20a%20queue!/").status_code == 404


def test_unknown_range_is_a_400_that_does_not_echo_input(signed_in, account):
    response = signed_in.get("/env/default/queues/grebe-work/?range=<b>x</b>")

    assert response.status_code == 400
    assert b"<b>" not in response.content


def test_queue_page_when_discovery_fails_explains_instead_of_404(signed_in, aws, monkeypatch):
    cache.clear()

    def denied(prefix: str = ""):
        raise AwsError("no", code="AccessDenied", operation="ListQueues")

    monkeypatch.setattr(sqs_adapter, "list_queue_urls", denied)

    # The first view of a cold dashboard reads the queue alone (it does not exist: 404),
    # while every queue is read in the background: that read fails, and is remembered.
    assert signed_in.get("/env/default/queues/grebe-work/").status_code == 404
    read_cache.wait_for_background()
    response = signed_in.get("/env/default/queues/grebe-work/")

    assert response.status_code == 503
    assert b"sqs:ListQueues" in response.content


@pytest.fixture
def many_queues(account):
    """Forty more consumers, each a queue with its DLQ, beside grebe-work."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    for n in range(40):
        dead = sqs.create_queue(QueueName=f"other-{n}-dead")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]
        policy = json.dumps({"deadLetterTargetArn": arn["QueueArn"], "maxReceiveCount": 3})
        sqs.create_queue(QueueName=f"other-{n}", Attributes={"RedrivePolicy": policy})


@pytest.fixture
def no_background(monkeypatch):
    """Background reads are recorded, not run: what a request itself reads is counted."""
    started: list[str] = []
    monkeypatch.setattr(read_cache, "start_once", lambda name, job: started.append(name) or True)
    monkeypatch.setattr(read_cache, "FIRST_READ_SECONDS", 0.0)
    return started


def test_a_cold_queue_page_reads_that_queue_and_its_dlq_not_every_queue(
    signed_in, many_queues, no_background, aws_calls
):
    response = signed_in.get("/env/default/queues/grebe-work/")

    assert response.status_code == 200
    assert b'href="/env/default/queues/grebe-dead/"' in response.content
    detail = response.context["detail"]
    assert detail.queue.name == "grebe-work" and detail.dlq.name == "grebe-dead"
    assert detail.dlq.visible == 1  # exact, from GetQueueAttributes
    # A handful of calls, whatever the number of queues; the rest is read in the background.
    assert aws_calls["sqs.ListQueues"] == 0
    assert aws_calls["sqs.GetQueueAttributes"] == 2
    assert aws_calls["events.ListRules"] == aws_calls["events.ListTargetsByRule"] == 0
    assert sum(aws_calls.values()) <= 6, aws_calls
    assert {"queues:first-read", "buses:first-read", "alarms:first-read"} <= set(no_background)
    assert b"Still reading this from AWS" in response.content


def test_a_cold_dlq_page_knows_it_is_one_and_lists_its_sources(
    signed_in, many_queues, no_background
):
    response = signed_in.get("/env/default/queues/grebe-dead/")

    assert response.status_code == 200
    assert response.context["detail"].is_dlq
    assert response.context["detail"].sources.value == ["grebe-work"]


def test_a_cold_page_of_a_missing_queue_is_a_404_and_of_a_denied_one_explains(
    signed_in, account, no_background, monkeypatch
):
    assert signed_in.get("/env/default/queues/grebe-nowhere/").status_code == 404

    def denied(name: str) -> str:
        raise AwsError("no", code="AccessDenied", operation="GetQueueUrl")

    monkeypatch.setattr(sqs_adapter, "queue_url", denied)
    response = signed_in.get("/env/default/queues/grebe-work/")
    assert response.status_code == 503
    assert b"GetQueueUrl" in response.content


def test_once_every_queue_was_read_the_page_uses_that_read(signed_in, many_queues, aws_calls):
    signed_in.get("/env/default/queues/grebe-work/")
    read_cache.wait_for_background()
    aws_calls.clear()

    response = signed_in.get("/env/default/queues/grebe-dead/")

    assert response.context["detail"].is_dlq
    assert aws_calls["sqs.GetQueueUrl"] == 0  # from the inventory read in the background


@pytest.mark.parametrize("window, period", [("1h", 60), ("6h", 60), ("24h", 60), ("7d", 420)])
def test_chart_periods_keep_at_most_1440_points(window, period):
    from operations import topology

    seconds = topology.RANGES[window]
    assert topology.period_for(seconds) == period
    assert seconds // period <= 1440


# --- redrive loops, from the most recent peek of the DLQ --------------------------------


@pytest.fixture
def looping(account):
    """A finished redrive of grebe-dead whose correlation ID is back in grebe-dead."""
    from operations.models import Operation, TouchedCorrelation

    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq_url = sqs.get_queue_url(QueueName="grebe-dead")["QueueUrl"]
    op = Operation.objects.create(
        kind="redrive", target=dlq_url, reason="r", requested_by_name="t", state="succeeded"
    )
    TouchedCorrelation.objects.create(operation=op, correlation_id="corr-back")
    sqs.send_message(
        QueueUrl=dlq_url,
        MessageBody=json.dumps({"detail-type": "OrderPaid", "detail": {"correlationId": "x"}}),
        MessageAttributes={"correlation_id": {"DataType": "String", "StringValue": "corr-back"}},
    )
    return op


@pytest.mark.django_db
def test_dlq_page_warns_of_the_loop_its_last_peek_found(signed_in, looping, settings):
    settings.EVENTOPS_PEEK_VISIBILITY_SECONDS = 0
    signed_in.get("/env/default/queues/grebe-dead/messages/")

    html = signed_in.get("/env/default/queues/grebe-dead/").content.decode()

    assert 'id="redrive-loop"' in html and "corr-back" in html
    assert f'href="/env/default/operations/{looping.pk}/"' in html and 'id="last-peek-time"' in html


@pytest.mark.django_db
def test_source_queue_page_points_at_the_loop_in_its_dlq(signed_in, looping, settings):
    settings.EVENTOPS_PEEK_VISIBILITY_SECONDS = 0
    signed_in.get("/env/default/queues/grebe-dead/messages/")

    html = signed_in.get("/env/default/queues/grebe-work/").content.decode()

    assert 'id="redrive-loop"' in html and "back in its dead-letter queue" in html
    assert "corr-back" in html and f'href="/env/default/operations/{looping.pk}/"' in html


@pytest.mark.django_db
def test_no_loop_warning_before_any_peek(signed_in, looping):
    html = signed_in.get("/env/default/queues/grebe-dead/").content.decode()

    assert 'id="redrive-loop"' not in html and 'id="last-peek"' not in html


@pytest.mark.django_db
def test_a_peek_without_loops_says_when_it_looked(signed_in, account, settings):
    settings.EVENTOPS_PEEK_VISIBILITY_SECONDS = 0
    signed_in.get("/env/default/queues/grebe-dead/messages/")

    html = signed_in.get("/env/default/queues/grebe-work/").content.decode()

    assert 'id="redrive-loop"' not in html
    assert 'id="last-peek"' in html and "found no redrive loop" in html
