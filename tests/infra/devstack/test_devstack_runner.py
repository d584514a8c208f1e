"""The in-process Lambda runner: batch failures honoured, nothing lost on failure."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.devstack.clients import Clients
from infra.devstack.runner import Faults, QueuePoller, StreamPoller
from infra.devstack.tracing import Hop, Invocation, SegmentWriter, TraceIds


def make_queue(clients: Clients, *, max_receive_count: int = 5) -> tuple[str, str, str]:
    """A queue with visibility timeout 0 (failed messages come straight back) and a DLQ."""
    sqs = clients("sqs")
    dlq_url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}
    url = sqs.create_queue(
        QueueName="source",
        Attributes={"VisibilityTimeout": "0", "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn, dlq_url


def send_events(clients: Clients, url: str, count: int) -> None:
    for index in range(count):
        envelope = {
            "detail-type": "OrderPaid",
            "detail": {"correlationId": f"corr-{index}", "orderId": f"o-{index}"},
        }
        clients("sqs").send_message(QueueUrl=url, MessageBody=json.dumps(envelope))


def remaining_bodies(clients: Clients, url: str) -> list[str]:
    messages = clients("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return sorted(json.loads(m["Body"])["detail"]["orderId"] for m in messages.get("Messages", []))


def poller(clients: Clients, url: str, arn: str, handler: Any, **kwargs: Any) -> QueuePoller:
    return QueuePoller(
        clients,
        handler,
        "fn",
        "arn:aws:lambda:us-east-1:123456789012:function:fn",
        url,
        arn,
        wait_time_s=0,
        **kwargs,
    )


def fail_order(order_id: str) -> Any:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        failures = [
            {"itemIdentifier": r["messageId"]}
            for r in event["Records"]
            if json.loads(r["body"])["detail"]["orderId"] == order_id
        ]
        return {"batchItemFailures": failures}

    return handler


def test_queue_poller_deletes_only_the_messages_that_succeeded(moto_clients: Clients) -> None:
    url, arn, _ = make_queue(moto_clients)
    send_events(moto_clients, url, 3)

    handled = poller(moto_clients, url, arn, fail_order("o-1")).poll_once()

    assert handled == 3
    assert remaining_bodies(moto_clients, url) == ["o-1"]


def test_queue_poller_deletes_nothing_when_the_handler_raises(moto_clients: Clients) -> None:
    url, arn, _ = make_queue(moto_clients)
    send_events(moto_clients, url, 3)

    def crash(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("boom")

    runner = poller(moto_clients, url, arn, crash)
    runner.poll_once()

    assert remaining_bodies(moto_clients, url) == ["o-0", "o-1", "o-2"]
    assert runner.stats.failed_invocations == 1


def test_injected_transient_error_skips_the_handler_and_keeps_the_batch(
    moto_clients: Clients,
) -> None:
    url, arn, _ = make_queue(moto_clients)
    send_events(moto_clients, url, 2)
    calls: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(len(event["Records"]))
        return {"batchItemFailures": []}

    poller(moto_clients, url, arn, handler, faults=Faults(1.0, seed=1)).poll_once()

    assert calls == []
    assert remaining_bodies(moto_clients, url) == ["o-0", "o-1"]


def test_message_failing_every_time_reaches_the_dlq_after_max_receive_count(
    moto_clients: Clients,
) -> None:
    url, arn, dlq_url = make_queue(moto_clients, max_receive_count=2)
    send_events(moto_clients, url, 1)
    runner = poller(moto_clients, url, arn, fail_order("o-0"))

    receives = [runner.poll_once() for _ in range(3)]

    assert receives == [1, 1, 0]
    assert remaining_bodies(moto_clients, dlq_url) == ["o-0"]


def test_handler_receives_a_lambda_shaped_sqs_event(moto_clients: Clients) -> None:
    url, arn, _ = make_queue(moto_clients)
    moto_clients("sqs").send_message(
        QueueUrl=url,
        MessageBody="{}",
        MessageAttributes={"correlation_id": {"DataType": "String", "StringValue": "c-1"}},
    )
    seen: list[dict[str, Any]] = []
    poller(moto_clients, url, arn, lambda e, c: seen.append(e["Records"][0])).poll_once()

    record = seen[0]
    assert record["eventSourceARN"] == arn and record["eventSource"] == "aws:sqs"
    assert record["messageAttributes"]["correlation_id"]["stringValue"] == "c-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"


def make_stream(clients: Clients, count: int) -> str:
    ddb = clients("dynamodb")
    table = ddb.create_table(
        TableName="t",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )["TableDescription"]
    for index in range(count):
        ddb.put_item(TableName="t", Item={"pk": {"S": f"OUTBOX#{index}"}})
    return str(table["LatestStreamArn"])


def stream_poller(clients: Clients, stream_arn: str, handler: Any, **kw: Any) -> StreamPoller:
    return StreamPoller(clients, handler, "pub", "arn:pub", stream_arn, **kw)


def test_stream_poller_resumes_at_the_first_failed_record(moto_clients: Clients) -> None:
    stream_arn = make_stream(moto_clients, 3)
    batches: list[list[str]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]
        batches.append(keys)
        second = event["Records"][1]["dynamodb"]["SequenceNumber"] if len(batches) == 1 else None
        return {"batchItemFailures": [{"itemIdentifier": second}] if second else []}

    runner = stream_poller(moto_clients, stream_arn, handler)
    runner.poll_once()
    runner.poll_once()

    assert batches == [["OUTBOX#0", "OUTBOX#1", "OUTBOX#2"], ["OUTBOX#1", "OUTBOX#2"]]
    assert runner.poll_once() == 0


def test_stream_poller_gives_up_after_max_retries_to_the_on_failure_queue(
    moto_clients: Clients,
) -> None:
    stream_arn = make_stream(moto_clients, 1)
    failures_url = moto_clients("sqs").create_queue(QueueName="failures")["QueueUrl"]

    def crash(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("bus down")

    runner = stream_poller(
        moto_clients, stream_arn, crash, max_retries=2, on_failure_queue_url=failures_url
    )
    handled = [runner.poll_once() for _ in range(4)]

    assert handled == [1, 1, 1, 0]
    sent = moto_clients("sqs").receive_message(QueueUrl=failures_url)["Messages"]
    assert json.loads(sent[0]["Body"])["requestContext"]["condition"] == "RetryAttemptsExhausted"


def test_segments_annotate_the_subsegment_and_flag_only_failed_hops() -> None:
    writer = SegmentWriter(Clients(endpoint_url="http://unused"), TraceIds())
    invocation = Invocation(
        "fn",
        "arn:fn",
        "req",
        1.0,
        2.0,
        hops=[Hop("c-ok", ["OrderPaid"]), Hop("c-bad", ["OrderPaid"], failed=True)],
    )

    ok, bad = writer.documents(invocation)

    assert ok["subsegments"][0]["annotations"]["correlation_id"] == "c-ok"
    assert "error" not in ok and "annotations" not in ok
    assert bad["error"] is True and bad["subsegments"][0]["error"] is True


def test_one_correlation_id_keeps_one_trace_id() -> None:
    trace_ids = TraceIds()

    first = trace_ids.for_correlation("c-1", now=1_700_000_000)
    later = trace_ids.for_correlation("c-1", now=1_700_000_500)

    assert first == later
    assert first.startswith("1-6553f100-") and len(first) == 35


def invocation(number: int) -> Invocation:
    return Invocation("fn", "arn:fn", f"req-{number}", 1.0, 2.0, hops=[Hop(f"c-{number}", ["T"])])


def test_a_started_segment_writer_sends_one_batch_and_flushes_what_is_left_on_stop(
    moto_clients: Clients,
) -> None:
    batches: list[int] = []
    moto_clients("xray").meta.events.register(
        "before-parameter-build.xray.PutTraceSegments",
        lambda params, **kw: batches.append(len(params["TraceSegmentDocuments"])),
    )
    writer = SegmentWriter(moto_clients, TraceIds(), flush_interval_s=3600)
    writer.start()
    for number in range(3):
        writer.send(invocation(number))

    queued = list(batches)
    writer.stop()

    assert queued == []
    assert batches == [3]


def test_a_started_segment_writer_drops_what_does_not_fit_its_queue(
    moto_clients: Clients,
) -> None:
    writer = SegmentWriter(moto_clients, TraceIds(), flush_interval_s=3600, max_pending=2)
    writer.start()

    for number in range(3):
        writer.send(invocation(number))
    writer.stop()

    assert writer.dropped == 1


def test_trace_ids_forget_the_correlation_ids_seen_least_recently_past_the_limit() -> None:
    trace_ids = TraceIds(limit=2)
    first = trace_ids.for_correlation("c-1", now=1_700_000_000)
    trace_ids.for_correlation("c-2", now=1_700_000_000)
    trace_ids.for_correlation("c-1", now=1_700_000_000)  # seen again: kept

    trace_ids.for_correlation("c-3", now=1_700_000_000)

    assert len(trace_ids) == 2
    assert trace_ids.for_correlation("c-1", now=1_700_009_999) == first


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_faults_reject_a_share_outside_zero_to_one(share: float) -> None:
    with pytest.raises(ValueError):
        Faults(share)
