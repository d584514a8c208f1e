"""The overview page: login, rows worst first, the htmx fragment, partial AccessDenied."""

from __future__ import annotations

import json
from collections import Counter

import boto3
import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.core.cache import cache

from operations import cache as read_cache
from operations.aws import client as aws_client
from operations.aws import cloudwatch
from operations.aws.errors import AwsError


@pytest.fixture
def viewer(db) -> User:
    user = User.objects.create_user("osprey-viewer")
    user.groups.add(Group.objects.get(name="viewer"))
    return user


@pytest.fixture
def signed_in(client, viewer):
    client.force_login(viewer)
    return client


def make_consumer(name: str, dlq_messages: int = 0, alarm_state: str = "OK") -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq_url = sqs.create_queue(QueueName=f"{name}-dead")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
    sqs.create_queue(QueueName=f"{name}-work", Attributes={"RedrivePolicy": policy})
    for _ in range(dlq_messages):
        sqs.send_message(QueueUrl=dlq_url, MessageBody="{}")
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    cw.put_metric_alarm(
        AlarmName=f"{name}-dead-depth",
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[{"Name": "QueueName", "Value": f"{name}-dead"}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )
    cw.set_alarm_state(AlarmName=f"{name}-dead-depth", StateValue=alarm_state, StateReason="t")


@pytest.fixture
def account(aws, settings):
    settings.EVENTOPS_RESOURCE_PREFIX = ""
    settings.EVENTOPS_CACHE_TTL = 60
    cache.clear()
    make_consumer("osprey-calm")
    make_consumer("osprey-backlog", dlq_messages=2)
    make_consumer("osprey-burning", dlq_messages=1, alarm_state="ALARM")
    yield
    cache.clear()


def test_anonymous_is_sent_to_login(client, db):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_overview_lists_alarms_first_then_non_empty_dlqs(signed_in, account):
    response = signed_in.get("/env/default/")

    order = [c.queue.name for c in response.context["overview"].consumers]
    assert order == ["osprey-burning-work", "osprey-backlog-work", "osprey-calm-work"]
    assert b"data-poll" in response.content


def test_overview_shows_dlq_depth_per_consumer(signed_in, account):
    response = signed_in.get("/env/default/")

    html = response.content.decode()
    row = html[html.index('data-queue="osprey-backlog-work"') :]
    assert '<td class="num" data-cell="dlq-depth">2</td>' in row[: row.index("</tr>")]


def test_htmx_poll_gets_only_the_rows(signed_in, account):
    response = signed_in.get("/env/default/", headers={"HX-Request": "true"})

    assert b"<html" not in response.content and b"osprey-calm-work" in response.content
    assert "HX-Request" in response["Vary"]


def test_full_page_also_varies_on_hx_request(signed_in, account):
    response = signed_in.get("/env/default/")

    assert b"<html" in response.content
    assert "HX-Request" in response["Vary"]


def test_denied_alarms_still_render_queues_and_name_the_permission(signed_in, account, monkeypatch):
    def denied(prefix: str = ""):
        raise AwsError("not authorized", code="AccessDenied", operation="DescribeAlarms")

    monkeypatch.setattr(cloudwatch, "describe_alarms", denied)

    response = signed_in.get("/env/default/")

    assert response.status_code == 200 and b"osprey-calm-work" in response.content
    assert b"cloudwatch:DescribeAlarms" in response.content


def test_aws_down_with_nothing_cached_is_not_a_500(signed_in, aws, settings, monkeypatch):
    from operations.aws import sqs

    cache.clear()

    def down(prefix: str = ""):
        raise AwsError("endpoint unreachable", code="EndpointConnectionError", transient=True)

    monkeypatch.setattr(sqs, "list_queue_urls", down)

    response = signed_in.get("/env/default/")

    assert response.status_code == 200
    assert b"endpoint unreachable" in response.content


def test_post_is_not_allowed(signed_in, account):
    assert signed_in.post("/env/default/").status_code == 405


def test_one_undescribable_queue_is_reported_and_the_rest_shown(signed_in, account, monkeypatch):
    from operations.aws import sqs

    real = sqs.queue_attributes

    def flaky(url: str):
        if url.endswith("osprey-calm-work"):
            raise AwsError("Rate exceeded", code="Throttling", operation="GetQueueAttributes")
        return real(url)

    monkeypatch.setattr(sqs, "queue_attributes", flaky)

    response = signed_in.get("/env/default/")

    assert b"1 queue(s) could not be described" in response.content
    assert b"osprey-backlog-work" in response.content


def test_polls_within_the_ttl_reuse_the_rendered_rows(signed_in, account, monkeypatch):
    from operations import topology

    first = signed_in.get("/env/default/", headers={"HX-Request": "true"})

    def must_not_run():
        raise AssertionError("the overview was rebuilt within the TTL")

    monkeypatch.setattr(topology, "overview", must_not_run)
    again = signed_in.get("/env/default/", headers={"HX-Request": "true"})

    assert again.status_code == 200
    assert again.content == first.content


def test_rows_link_to_dlq_messages_and_alarm_pages(signed_in, account):
    response = signed_in.get("/env/default/")

    assert b'href="/env/default/queues/osprey-backlog-dead/messages/"' in response.content
    assert b'href="/env/default/alarms/osprey-burning-dead-depth/"' in response.content


def test_a_warm_full_page_embeds_the_cached_rows_unescaped(signed_in, account):
    signed_in.get("/env/default/", headers={"HX-Request": "true"})

    response = signed_in.get("/env/default/")

    assert b'<table class="data overview-flow">' in response.content
    assert b"&lt;table" not in response.content


def test_during_an_outage_a_second_view_within_the_ttl_makes_no_aws_calls(
    signed_in, account, monkeypatch
):
    from operations.aws import sqs

    calls: Counter = Counter()
    aws_client.reset()
    aws_client.session().events.register(
        "before-call.*.*", lambda model, **kw: calls.update([model.name])
    )

    def down(prefix: str = ""):
        calls.update(["ListQueues (failed)"])
        raise AwsError("endpoint unreachable", code="EndpointConnectionError", transient=True)

    with time_machine.travel("2026-11-26 12:00:00 +0000", tick=False) as clock:
        signed_in.get("/env/default/")
        clock.shift(61)
        monkeypatch.setattr(sqs, "list_queue_urls", down)
        signed_in.get("/env/default/")
        # The page served the last value and refreshed it in the background (which failed).
        read_cache.wait_for_background()
        calls.clear()
        clock.shift(30)

        again = signed_in.get("/env/default/")

    assert sum(calls.values()) == 0
    assert b"osprey-calm-work" in again.content and b"endpoint unreachable" in again.content


def test_a_dlq_shared_by_two_sources_counts_once_in_messages_in_dlqs(signed_in, account):
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq_url = sqs.get_queue_url(QueueName="osprey-backlog-dead")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
    sqs.create_queue(QueueName="osprey-backlog-second", Attributes={"RedrivePolicy": policy})

    overview = signed_in.get("/env/default/").context["overview"]

    rows = [c for c in overview.consumers if c.dlq and c.dlq.arn == dlq_arn]
    assert [c.dlq_depth for c in rows] == [2, 2]
    assert overview.dlq_messages == 3  # 2 in the shared DLQ, 1 in osprey-burning-dead
