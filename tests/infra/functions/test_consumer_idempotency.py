"""Consumers process each event ID once, with the topology's idempotency window."""

from __future__ import annotations

import time

import pytest

from infra.functions.consumer import build_consumer_handler
from infra.functions.idempotency import idempotency_key
from infra.functions.orders import create_order, pay_order
from tests.infra.functions.fn_helpers import envelope, paid_detail, sqs_event


@pytest.fixture
def analytics(tables):
    return build_consumer_handler("analytics", idempotency_table=tables.idempotency)


def _events_counted(tables, day: str = "2026-11-26", event_type: str = "OrderPaid") -> int:
    item = tables.item(tables.orders, f"STATS#{day}", event_type)
    return int(item["events"]["N"]) if item else 0


def test_duplicate_delivery_is_processed_exactly_once(tables, analytics):
    event = envelope("OrderPaid", paid_detail())

    first = analytics(sqs_event(event), None)
    second = analytics(sqs_event(event), None)

    assert first == second == {"batchItemFailures": []}
    assert _events_counted(tables) == 1


def test_duplicate_inside_one_batch_is_processed_once(tables, analytics):
    event = envelope("OrderPaid", paid_detail())

    result = analytics(sqs_event(event, event), None)

    assert result == {"batchItemFailures": []}
    assert _events_counted(tables) == 1


def test_distinct_events_are_each_processed(tables, analytics):
    analytics(sqs_event(envelope("OrderPaid", paid_detail("o-1"))), None)
    analytics(sqs_event(envelope("OrderPaid", paid_detail("o-2"))), None)

    assert _events_counted(tables) == 2


def test_idempotency_record_carries_correlation_consumer_and_event_type(tables, analytics):
    event = envelope("OrderPaid", paid_detail("o-7"))

    analytics(sqs_event(event), None)

    (record,) = tables.items(tables.idempotency)
    assert {k: record[k]["S"] for k in ("correlation_id", "consumer", "event_type", "status")} == {
        "correlation_id": "corr-o-7",
        "consumer": "analytics",
        "event_type": "OrderPaid",
        "status": "COMPLETED",
    }
    assert record["id"]["S"] == idempotency_key("analytics", event["id"])


def test_idempotency_window_depends_on_the_event_type(tables):
    billing = build_consumer_handler("billing", idempotency_table=tables.idempotency)
    notifications = build_consumer_handler("notifications", idempotency_table=tables.idempotency)
    order = create_order(
        tables.dynamodb,
        tables.orders,
        customer_id="c",
        lines=[{"sku": "S", "quantity": 1, "unitPrice": "25.00"}],
    )
    paid = pay_order(
        tables.dynamodb,
        tables.orders,
        order_id=order.order_id,
        amount="25.00",
        currency="EUR",
        correlation_id=order.correlation_id,
    )
    event = envelope("OrderPaid", paid.detail)

    billing(sqs_event(event), None)
    notifications(sqs_event(event), None)

    expiry = {
        r["consumer"]["S"]: int(r["expiration"]["N"]) - time.time()
        for r in tables.items(tables.idempotency)
    }
    assert abs(expiry["billing"] - 72 * 3600) < 60
    assert abs(expiry["notifications"] - 3600) < 60


def test_failed_attempt_is_processed_again_on_redelivery(tables):
    failures = iter([RuntimeError("downstream timeout")])

    def flaky(event):
        if (error := next(failures, None)) is not None:
            raise error

    analytics = build_consumer_handler(
        "analytics", idempotency_table=tables.idempotency, before_process=flaky
    )
    event = sqs_event(envelope("OrderPaid", paid_detail()))

    first = analytics(event, None)
    second = analytics(event, None)

    assert first["batchItemFailures"] == [{"itemIdentifier": event["Records"][0]["messageId"]}]
    assert second == {"batchItemFailures": []} and _events_counted(tables) == 1


def test_in_progress_record_already_carries_the_correlation_id(tables):
    seen: list[dict] = []
    analytics = build_consumer_handler(
        "analytics",
        idempotency_table=tables.idempotency,
        before_process=lambda event: seen.extend(tables.items(tables.idempotency)),
    )

    analytics(sqs_event(envelope("OrderPaid", paid_detail("o-5"))), None)

    (record,) = seen
    assert record["status"]["S"] == "INPROGRESS"
    assert record["correlation_id"]["S"] == "corr-o-5"
