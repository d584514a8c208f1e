"""One peek per DLQ per cache period serves every viewer and every lookup, and hides nothing."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from operations import correlation
from operations.aws import client as aws_client

from .conftest import Queues

pytestmark = pytest.mark.django_db


def page(client: Client, name: str = "orders-dlq") -> Any:
    return client.get(reverse("operations:dlq_messages", args=["default", name]))


def count_calls() -> Counter[str]:
    calls: Counter[str] = Counter()
    aws_client.reset()
    aws_client.session().events.register(
        "before-call.*.*", lambda model, **kw: calls.update([model.name])
    )
    return calls


@pytest.fixture
def hiding(queues: Queues, settings: Any) -> None:
    """A peek's receive hides messages for 30 s unless it releases them (after ``queues``,
    which sets 0)."""
    settings.EVENTOPS_PEEK_VISIBILITY_SECONDS = 30
    settings.EVENTOPS_CACHE_TTL = 60


def test_two_viewers_within_the_ttl_cost_one_peek(
    hiding: None, viewer_client: Client, operator_client: Client, queues: Queues
) -> None:
    for i in range(12):
        queues.put_event(i)
    calls = count_calls()
    first = page(viewer_client)
    receives = calls["ReceiveMessage"]
    second = page(operator_client)
    assert receives >= 2 and calls["ReceiveMessage"] == receives
    assert len(first.context["peek"].messages) == len(second.context["peek"].messages) == 12


def test_what_a_peek_read_is_released_at_once(
    hiding: None, viewer_client: Client, queues: Queues
) -> None:
    sent = {queues.put_event(i) for i in range(5)}
    page(viewer_client)
    # A consumer (or a redrive) receiving right after the page sees every message.
    seen: set[str] = set()
    for _ in range(10):
        batch = queues.client.receive_message(
            QueueUrl=queues.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0
        ).get("Messages", [])
        seen.update(m["MessageId"] for m in batch)
        if seen == sent:
            break
    assert seen == sent


def test_a_second_viewer_after_the_ttl_sees_every_message(
    hiding: None, viewer_client: Client, operator_client: Client, queues: Queues, settings: Any
) -> None:
    sent = {queues.put_event(i) for i in range(5)}
    page(viewer_client)
    settings.EVENTOPS_CACHE_TTL = 0  # the next view peeks again, right away
    shown = page(operator_client).context["peek"].messages
    assert {m.message_id for m in shown} == sent


def test_correlation_lookups_on_a_warm_cache_make_no_receive(
    hiding: None, viewer_client: Client, queues: Queues
) -> None:
    queues.put_event(1)
    queues.put_event(2)
    page(viewer_client)
    calls = count_calls()
    first = correlation.dlq_messages_with({"corr-1"})
    second = correlation.dlq_messages_with({"corr-2"})
    assert calls["ReceiveMessage"] == 0 and calls["ChangeMessageVisibilityBatch"] == 0
    assert [m.message.correlation_id for m in first.messages + second.messages] == [
        "corr-1",
        "corr-2",
    ]


def test_a_delete_makes_the_next_view_peek_again(
    hiding: None, admin_client: Client, queues: Queues, worker: Any
) -> None:
    doomed = queues.put_event(1)
    kept = queues.put_event(2)
    page(admin_client)
    with worker():
        admin_client.post(
            reverse("operations:dlq_delete", args=["default", "orders-dlq"]),
            {"message_ids": [doomed], "reason": "test", "confirm": "1"},
        )
    shown = page(admin_client).context["peek"].messages
    assert [m.message_id for m in shown] == [kept]
