"""The DLQ page shows each message's consumer error, masked for the viewer, and groups them."""

from __future__ import annotations

import io
import json
import time
import zipfile
from typing import Any

import boto3
import pytest
from django.urls import reverse

from .conftest import Queues

pytestmark = pytest.mark.django_db

FUNCTION = "orders-consumer"
GROUP = f"/aws/lambda/{FUNCTION}"
CARD = "4111 1111 1111 1111"


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


@pytest.fixture
def consumer(queues: Queues) -> Any:
    """``orders`` is consumed by a Lambda that logs to its log group; returns a logger."""
    role = boto3.client("iam", region_name="us-east-1").create_role(
        RoleName="consumer-role",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    lam = boto3.client("lambda", region_name="us-east-1")
    lam.create_function(
        FunctionName=FUNCTION,
        Runtime="python3.11",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": _zip()},
    )
    lam.create_event_source_mapping(EventSourceArn=queues.source_arn, FunctionName=FUNCTION)
    logs = boto3.client("logs", region_name="us-east-1")
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="s")

    def log(message_id: str, amount: str) -> None:
        traceback = (
            "Traceback (most recent call last):\n"
            '  File "/var/task/billing.py", line 40, in charge\n'
            "    raise ValueError(...)\n"
            f"ValueError: amount {amount} refused for card {CARD}"
        )
        line = {
            "level": "ERROR",
            "location": "handle:10",
            "message": "processing failed",
            "message_id": message_id,
            "correlation_id": "c",
            "exception_name": "ValueError",
            "exception": traceback,
        }
        event = {"timestamp": int(time.time() * 1000), "message": json.dumps(line)}
        logs.put_log_events(logGroupName=GROUP, logStreamName="s", logEvents=[event])

    return log


def page(client: Any) -> Any:
    return client.get(reverse("operations:dlq_messages", args=["default", "orders-dlq"]))


def test_each_message_shows_its_consumers_error_masked_for_a_viewer(
    viewer_client: Any, queues: Queues, consumer: Any
) -> None:
    consumer(queues.put_event(1), "-5")
    html = page(viewer_client).content.decode()
    assert "ValueError: amount -5 refused for card ••••1111" in html
    assert "billing.py:40 in charge" in html and CARD not in html


def test_each_row_carries_the_logged_traceback_masked_for_a_viewer(
    viewer_client: Any, queues: Queues, consumer: Any
) -> None:
    consumer(queues.put_event(1), "-5")
    html = page(viewer_client).content.decode()
    assert '<details class="traceback"><summary>traceback</summary>' in html
    assert "File &quot;/var/task/billing.py&quot;, line 40, in charge" in html
    assert "refused for card ••••1111</pre>" in html and CARD not in html


def test_an_admin_sees_the_traceback_unmasked(
    admin_client: Any, queues: Queues, consumer: Any
) -> None:
    consumer(queues.put_event(1), "-5")
    assert f"refused for card {CARD}</pre>" in page(admin_client).content.decode()


def test_an_admin_sees_the_error_unmasked(admin_client: Any, queues: Queues, consumer: Any) -> None:
    consumer(queues.put_event(1), "-5")
    assert f"ValueError: amount -5 refused for card {CARD}" in page(admin_client).content.decode()


def test_messages_that_failed_the_same_way_form_one_group(
    viewer_client: Any, queues: Queues, consumer: Any
) -> None:
    consumer(queues.put_event(1), "-5")
    consumer(queues.put_event(2), "-7")
    queues.put_event(3)
    groups = page(viewer_client).context["by_group"]
    assert [(g.consumer, count) for _, count, g in groups] == [(FUNCTION, 2), ("", 1)]
    # Normalising replaces the card's digit groups too: no number reaches a group's title.
    assert groups[0][2].title == "ValueError: amount <n> refused for card <n> <n> <n> <n>"
