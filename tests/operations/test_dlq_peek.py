"""The shared peek: viewers who arrive during a peek of the DLQ wait for it and share it."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any

import boto3
import pytest

from operations import cache as cache_module
from operations import dlq, dlq_peek
from operations.aws import client as aws_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dlq_url(aws: None, settings: Any) -> str:
    settings.EVENTOPS_CACHE_TTL = 60
    settings.EVENTOPS_PEEK_VISIBILITY_SECONDS = 30
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="orders-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    policy = json.dumps({"deadLetterTargetArn": arn["QueueArn"], "maxReceiveCount": 3})
    sqs.create_queue(QueueName="orders", Attributes={"RedrivePolicy": policy})
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": i}))
    return str(url)


def test_a_viewer_arriving_during_a_peek_shares_it(
    dlq_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    second_waits = threading.Event()
    original_peek, original_wait = dlq.peek, cache_module._wait_for_refresh

    def slow_peek(*args: Any, **kwargs: Any) -> dlq.Peek:
        second_waits.wait(timeout=10)  # the second viewer is waiting before this peek ends
        return original_peek(*args, **kwargs)

    def waiting(*args: Any, **kwargs: Any) -> Any:
        second_waits.set()
        return original_wait(*args, **kwargs)

    monkeypatch.setattr(dlq, "peek", slow_peek)
    monkeypatch.setattr(cache_module, "_wait_for_refresh", waiting)
    calls: Counter[str] = Counter()
    aws_client.reset()
    aws_client.session().events.register(
        "before-call.*.*", lambda model, **kw: calls.update([model.name])
    )
    results: list[int] = []

    def view() -> None:
        found = dlq_peek.shared_peek(dlq_url)
        results.append(len(found.value.raw) if found.value else -1)

    lock = cache_module.cache_key(dlq_peek._name(dlq_url)) + ":lock"
    first = threading.Thread(target=view)
    first.start()
    while cache_module.cache.get(lock) is None and first.is_alive():
        time.sleep(0.01)  # until the first viewer holds the lock (its peek waits in slow_peek)
    second = threading.Thread(target=view)
    second.start()
    first.join(15)
    second.join(15)
    assert results == [3, 3]
    assert calls["ReceiveMessage"] == 2  # one peek: 3 messages, then an empty receive
