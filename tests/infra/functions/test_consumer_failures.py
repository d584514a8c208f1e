"""Failures: retried through SQS, then to the DLQ; poison messages are batch item failures."""

from __future__ import annotations

import json

import pytest

from infra.functions.config import new_client
from infra.functions.consumer import build_consumer_handler
from infra.topology import TOPOLOGY
from tests.infra.functions.fn_helpers import (
    envelope,
    paid_detail,
    sqs_event,
    sqs_event_from_messages,
)

BILLING = TOPOLOGY.consumer("billing")


@pytest.fixture
def billing_queues(tables) -> tuple[str, str, str]:
    """billing's queue with its DLQ and RedrivePolicy; returns (queue URL, queue ARN, DLQ URL)."""
    sqs = new_client("sqs")
    dlq = sqs.create_queue(QueueName=TOPOLOGY.dlq_name(BILLING))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": BILLING.max_receive_count}
    url = sqs.create_queue(
        QueueName=TOPOLOGY.queue_name(BILLING),
        Attributes={"RedrivePolicy": json.dumps(policy), "VisibilityTimeout": "30"},
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn, dlq


def _poll_once(handler, url: str, arn: str) -> int:
    """One event-source poll: receive, invoke, delete successes, release failures now."""
    sqs = new_client("sqs")
    messages = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    ).get("Messages", [])
    if not messages:
        return 0
    failed = {
        f["itemIdentifier"]
        for f in handler(sqs_event_from_messages(messages, arn), None)["batchItemFailures"]
    }
    for message in messages:
        if message["MessageId"] in failed:
            # What the visibility timeout does, without waiting for it.
            sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        else:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return len(messages)


def _depth(url: str) -> int:
    attributes = new_client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_failing_message_is_retried_then_moved_to_the_dlq_after_max_receive_count(
    tables, billing_queues
):
    url, arn, dlq = billing_queues
    attempts: list[str] = []

    def always_fail(event):
        attempts.append(event.event_id)
        raise RuntimeError("payment provider unavailable")

    billing = build_consumer_handler(
        "billing", idempotency_table=tables.idempotency, before_process=always_fail
    )
    new_client("sqs").send_message(
        QueueUrl=url, MessageBody=json.dumps(envelope("OrderPaid", paid_detail()))
    )

    polls = [_poll_once(billing, url, arn) for _ in range(BILLING.max_receive_count + 1)]

    assert len(attempts) == BILLING.max_receive_count and polls[-1] == 0
    assert _depth(dlq) == 1


def test_poison_message_lands_in_the_dlq_without_reaching_business_code(tables, billing_queues):
    url, arn, dlq = billing_queues
    reached: list[str] = []
    billing = build_consumer_handler(
        "billing", idempotency_table=tables.idempotency, before_process=reached.append
    )
    poison = envelope("OrderPaid", paid_detail(amount="-10.00"))
    new_client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps(poison))

    for _ in range(BILLING.max_receive_count + 1):
        _poll_once(billing, url, arn)

    assert reached == []
    assert _depth(dlq) == 1


def test_message_failing_validation_is_a_batch_item_failure_logged_with_the_error(
    tables, log_capture
):
    logger, lines = log_capture
    billing = build_consumer_handler("billing", idempotency_table=tables.idempotency, logger=logger)
    event = sqs_event(envelope("OrderPaid", paid_detail(amount="-10.00")))

    result = billing(event, None)

    (error,) = [line for line in lines() if line["level"] == "ERROR"]
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert "amount" in error["validation_error"] and error["correlation_id"] == "corr-o-1"


def test_body_that_is_not_an_event_envelope_is_poison(tables):
    analytics = build_consumer_handler("analytics", idempotency_table=tables.idempotency)
    event = sqs_event("not json", {"hello": "world"})

    result = analytics(event, None)

    assert len(result["batchItemFailures"]) == 2
    assert tables.items(tables.idempotency) == []


def test_unknown_detail_type_is_poison(tables):
    analytics = build_consumer_handler("analytics", idempotency_table=tables.idempotency)

    result = analytics(sqs_event(envelope("OrderRefunded", paid_detail())), None)

    assert len(result["batchItemFailures"]) == 1


def test_one_bad_message_does_not_fail_the_rest_of_the_batch(tables):
    analytics = build_consumer_handler("analytics", idempotency_table=tables.idempotency)
    good = envelope("OrderPaid", paid_detail("o-1"))
    bad = envelope("OrderPaid", paid_detail("o-2", amount="0"))
    event = sqs_event(good, bad)

    result = analytics(event, None)

    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert tables.item(tables.orders, "STATS#2026-11-26", "OrderPaid")["events"]["N"] == "1"


def test_a_poison_record_is_logged_with_its_exception_message_id_and_correlation_id(
    tables, log_capture
):
    logger, lines = log_capture
    billing = build_consumer_handler("billing", idempotency_table=tables.idempotency, logger=logger)
    event = sqs_event(envelope("OrderPaid", paid_detail(amount="-10.00")))

    billing(event, None)

    (error,) = [line for line in lines() if line["level"] == "ERROR"]
    assert error["exception_name"] == "InvalidMessage"
    assert "Traceback" in error["exception"] and "amount" in error["exception"]
    assert error["message_id"] == event["Records"][0]["messageId"]
    assert error["correlation_id"] == "corr-o-1"


def test_a_transient_failure_is_logged_with_its_exception(tables, log_capture):
    logger, lines = log_capture

    def unreachable(_event):
        raise ConnectionError("ledger unreachable")

    billing = build_consumer_handler(
        "billing", idempotency_table=tables.idempotency, logger=logger, before_process=unreachable
    )
    event = sqs_event(envelope("OrderPaid", paid_detail(amount="10.00")))

    billing(event, None)

    (error,) = [line for line in lines() if line["level"] == "ERROR"]
    assert (error["exception_name"], error["message_id"]) == (
        "ConnectionError",
        event["Records"][0]["messageId"],
    )
    assert error["exception"].rstrip().endswith("ConnectionError: ledger unreachable")
