"""In Chromium: the overview shows a DLQ's depth rise after messages arrive, without a reload."""

from __future__ import annotations

import json

import boto3
import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DEPTH_CELL = 'tr[data-queue="petrel-work"] td[data-cell="dlq-depth"]'


@pytest.fixture
def dlq_url(moto_server) -> str:
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=moto_server)
    url = sqs.create_queue(QueueName="petrel-dead")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 2})
    sqs.create_queue(QueueName="petrel-work", Attributes={"RedrivePolicy": policy})
    return url


def test_dlq_depth_rises_in_place_without_a_reload(
    live_server, page, login, viewer, dlq_url, moto_server
):
    login("viewer", PASSWORD)
    page.goto(f"{live_server.url}/env/default/")
    assert page.locator(DEPTH_CELL).inner_text() == "0"
    # Survives only if the document is never reloaded.
    page.evaluate("window.eventopsMarker = 'same-document'")

    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=moto_server)
    for _ in range(3):
        sqs.send_message(QueueUrl=dlq_url, MessageBody='{"failed": true}')
    # expect() polls from Playwright's side: the page's CSP forbids evaluating strings.
    expect(page.locator(DEPTH_CELL)).to_have_text("3", timeout=20_000)

    assert page.evaluate("window.eventopsMarker") == "same-document"


def test_queue_page_draws_uplot_charts_under_the_csp(
    live_server, page, login, viewer, dlq_url, moto_server
):
    boto3.client("cloudwatch", region_name="us-east-1", endpoint_url=moto_server).put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "NumberOfMessagesSent",
                "Dimensions": [{"Name": "QueueName", "Value": "petrel-work"}],
                "Value": 12,
            }
        ],
    )
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    login("viewer", PASSWORD)

    page.goto(f"{live_server.url}/env/default/queues/petrel-work/?range=1h")

    expect(page.locator("#queue-charts .uplot")).to_have_count(1)  # only "sent" has data
    assert errors == []


HIDE = """
Object.defineProperty(document, "hidden", {value: true, configurable: true});
Object.defineProperty(document, "visibilityState", {value: "hidden", configurable: true});
"""
# Deleting the own properties brings back Document.prototype's real getters.
SHOW = "delete document.hidden; delete document.visibilityState;"


def test_polling_pauses_while_the_tab_is_hidden(live_server, page, login, viewer, dlq_url):
    login("viewer", PASSWORD)
    page.clock.install()  # timers advance only when the test says so
    page.goto(f"{live_server.url}/env/default/")
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if r.headers.get("hx-request") else None)

    page.evaluate(HIDE)
    page.clock.run_for(10_000)  # five poll intervals of 2 s
    hidden_polls = len(polls)
    page.evaluate(SHOW)
    with page.expect_request(lambda r: r.headers.get("hx-request") == "true"):
        page.clock.run_for(4_000)

    assert hidden_polls == 0
    assert len(polls) >= 1
