"""Retries and the lease: botocore retries whole calls (one retry layer), the engine
retries failed entries within the lease, and both keep the lease and the messages in
hand while they wait."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from botocore.awsrequest import AWSResponse
from moto.core.models import botocore_stubber

from operations import redrive as engine
from operations.aws import sqs
from operations.aws.client import client
from operations.aws.errors import AwsError
from operations.models import Operation
from tests.operations.redrive_world import drain, fill, make_queues, new_op

pytestmark = pytest.mark.django_db


class Throttle:
    """Answers the first ``times`` attempts of an SQS action on the bulk client with a
    throttling error, before the request leaves botocore, so botocore's own retry logic
    runs; ``on_attempt`` is called at each of them.

    botocore calls every ``before-send`` handler and uses the first answer, so moto's
    handler would still carry out a throttled request: it is switched off for that one
    request, and on again by a handler that runs after it."""

    def __init__(self, action: str, times: int, on_attempt: Any = None) -> None:
        self.action = action
        self.left = times
        self.on_attempt = on_attempt or (lambda: None)

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        if not request.headers["X-Amz-Target"].decode().endswith("." + self.action):
            return None
        if self.left <= 0:
            return None
        self.left -= 1
        botocore_stubber.enabled = False
        self.on_attempt()
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()

        class Raw:
            def stream(self, **_: Any) -> Iterator[bytes]:
                yield body

        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "t"}
        return AWSResponse(request.url, 400, headers, Raw())


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's backoff between attempts, without the wait."""
    import botocore.endpoint

    monkeypatch.setattr(botocore.endpoint.time, "sleep", lambda seconds: None)


def throttle(action: str, times: int, on_attempt: Any = None) -> Throttle:
    handler = Throttle(action, times, on_attempt)
    events = client("sqs", bulk=True).meta.events
    events.register_first("before-send.sqs", handler)
    events.register_last("before-send", _moto_on_again)
    return handler


def _moto_on_again(**_: Any) -> None:
    botocore_stubber.enabled = True


def test_the_listener_hears_each_attempt_botocore_retries(aws: None, no_backoff: None) -> None:
    url = client("sqs").create_queue(QueueName="q")["QueueUrl"]
    heard: list[str] = []
    throttle("SendMessageBatch", 2)
    with sqs.while_retrying(lambda: heard.append("retry")):
        result = sqs.send_message_batch(url, [{"Id": "a", "MessageBody": "x"}])
    assert (result.succeeded, heard) == (["a"], ["retry", "retry"])


def test_the_lease_and_the_messages_in_hand_are_kept_while_botocore_retries(
    aws: None, no_backoff: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each throttled attempt takes 40 s (of a 60 s lease and visibility): before botocore
    tries again, the run extends its lease and hides the batch it holds for longer."""
    _, source_url, source_arn, dlq_url = make_queues()
    fill(client("sqs"), dlq_url, 10)
    op = new_op(
        dlq_url, engine.RedriveParams(destination_arn=source_arn, wait_seconds=0, concurrency=1)
    )
    hidden: list[tuple[int, int]] = []
    real_change = sqs.change_visibility_batch

    def spy(url: str, handles: dict[str, str], timeout: int = 0) -> sqs.BatchResult:
        hidden.append((len(handles), timeout))
        return real_change(url, handles, timeout)

    monkeypatch.setattr(sqs, "change_visibility_batch", spy)
    now = [0.0]
    leases: list[datetime] = []
    with time_machine.travel(datetime.now(UTC), tick=False) as traveller:

        def forty_seconds_pass() -> None:
            leases.append(Operation.objects.get(pk=op.pk).lease_expires_at)  # type: ignore[arg-type]
            now[0] += 40
            traveller.shift(40)

        throttle("SendMessageBatch", 2, forty_seconds_pass)
        token = op.claim(60)
        assert token is not None
        state = engine.Redrive(op, token, sleep=lambda s: None, clock=lambda: now[0]).run()
        moved = drain(client("sqs"), source_url)
    assert (state, len(moved)) == ("succeeded", 10)
    # The second attempt found the lease extended past where the first left it.
    assert (leases[1] - leases[0]).total_seconds() == 40
    # Each 40 s wait: the 10 messages in hand hidden for another 60 s.
    assert hidden == [(10, 60), (10, 60)]


def test_a_call_that_fails_after_botocores_retries_is_not_retried_again(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, source_arn, dlq_url = make_queues()
    fill(client("sqs"), dlq_url, 4)
    calls: list[int] = []

    def throttled(url: str, entries: list[dict[str, Any]]) -> sqs.BatchResult:
        calls.append(len(entries))
        raise AwsError("Rate exceeded", code="ThrottlingException", transient=True)

    monkeypatch.setattr(sqs, "send_message_batch", throttled)
    op = engine.run_inline(
        new_op(
            dlq_url, engine.RedriveParams(destination_arn=source_arn, wait_seconds=0, concurrency=1)
        ),
        sleep=lambda s: None,
    )
    assert (op.state, calls) == ("failed", [4])
    assert op.outcome["reasons"] == {"send failed: ThrottlingException": 4}


def test_retries_of_failed_entries_stop_within_the_lease(
    aws: None, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.EVENTOPS_REDRIVE_LEASE_SECONDS = 10
    _, _, source_arn, dlq_url = make_queues()
    fill(client("sqs"), dlq_url, 1)

    def always_failing(url: str, entries: list[dict[str, Any]]) -> sqs.BatchResult:
        failures = [sqs.BatchFailure(e["Id"], "InternalError", "", False) for e in entries]
        return sqs.BatchResult([], failures)

    monkeypatch.setattr(sqs, "send_message_batch", always_failing)
    reports: list[int] = []
    real_report = Operation.report
    monkeypatch.setattr(
        Operation, "report", lambda self, *a, **k: reports.append(1) or real_report(self, *a, **k)
    )
    slept: list[float] = []
    op = new_op(
        dlq_url, engine.RedriveParams(destination_arn=source_arn, wait_seconds=0, concurrency=1)
    )
    token = op.claim(10)
    assert token is not None
    state = engine.Redrive(op, token, sleep=slept.append, clock=lambda: 0.0).run()
    op.refresh_from_db()
    assert slept == [0.2, 0.4, 0.8, 1.6, 3.2]  # the next pause (5 s) would pass 10 s
    assert (state, op.outcome["reasons"]) == ("failed", {"send failed: InternalError": 1})
    assert len(reports) > len(slept)  # the lease was extended before each pause
