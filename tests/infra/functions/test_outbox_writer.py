"""The producer writes business item and outbox item in one validated transaction."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from infra.functions.orders import OrderStateConflict, create_order, pay_order, ship_order
from infra.functions.outbox import InvalidEventPayload

LINES = [{"sku": "SKU-1", "quantity": 2, "unitPrice": "12.50"}]


def _status(tables, order_id: str) -> str:
    return tables.item(tables.orders, f"ORDER#{order_id}", "ORDER")["status"]["S"]


def test_create_order_writes_the_business_item_and_a_pending_outbox_item(tables):
    record = create_order(tables.dynamodb, tables.orders, customer_id="cust-1", lines=LINES)

    order = tables.item(tables.orders, f"ORDER#{record.order_id}", "ORDER")
    (outbox,) = tables.outbox()
    assert order["status"]["S"] == "CREATED" and order["amount"]["N"] == "25.00"
    assert {
        "pk": outbox["pk"]["S"],
        "sk": outbox["sk"]["S"],
        "eventType": outbox["eventType"]["S"],
        "correlationId": outbox["correlationId"]["S"],
        "status": outbox["status"]["S"],
        "payload.correlationId": json.loads(outbox["payload"]["S"])["correlationId"],
    } == {
        "pk": f"OUTBOX#{record.order_id}",
        "sk": f"EVENT#{record.event_id}",
        "eventType": "OrderCreated",
        "correlationId": record.correlation_id,
        "status": "PENDING",
        "payload.correlationId": record.correlation_id,
    }


def test_outbox_item_expires_after_24_hours(tables):
    create_order(tables.dynamodb, tables.orders, customer_id="cust-1", lines=LINES)

    (outbox,) = tables.outbox()
    assert abs(int(outbox["ttl"]["N"]) - (time.time() + 24 * 3600)) < 60
    assert outbox["createdAt"]["S"].endswith("Z")


def test_business_change_and_outbox_item_are_one_transact_write_call(tables):
    calls: Counter[str] = Counter()
    tables.dynamodb.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.update([model.name])
    )

    create_order(tables.dynamodb, tables.orders, customer_id="cust-1", lines=LINES)

    assert calls == Counter({"TransactWriteItems": 1})


def test_invalid_payload_is_rejected_at_the_producer_and_nothing_is_written(tables):
    bad_lines = [{"sku": "SKU-1", "quantity": 1, "unitPrice": "-3.00"}]

    with pytest.raises(InvalidEventPayload, match="unitPrice"):
        create_order(tables.dynamodb, tables.orders, customer_id="cust-1", lines=bad_lines)

    assert tables.items(tables.orders) == []


def test_invalid_payment_leaves_the_order_unpaid_and_the_outbox_unchanged(tables):
    order = create_order(tables.dynamodb, tables.orders, customer_id="cust-1", lines=LINES)

    with pytest.raises(InvalidEventPayload, match="amount"):
        pay_order(
            tables.dynamodb,
            tables.orders,
            order_id=order.order_id,
            amount="-1",
            currency="EUR",
            correlation_id=order.correlation_id,
        )

    assert (
        tables.item(tables.orders, f"ORDER#{order.order_id}", "ORDER")["status"]["S"] == "CREATED"
    )
    assert len(tables.outbox()) == 1


def test_change_not_allowed_in_the_current_state_writes_nothing(tables):
    order = create_order(tables.dynamodb, tables.orders, customer_id="cust-1", lines=LINES)

    with pytest.raises(OrderStateConflict):
        ship_order(
            tables.dynamodb,
            tables.orders,
            order_id=order.order_id,
            carrier="UPS",
            tracking_number="T1",
            correlation_id=order.correlation_id,
        )

    assert (
        tables.item(tables.orders, f"ORDER#{order.order_id}", "ORDER")["status"]["S"] == "CREATED"
    )
    assert len(tables.outbox()) == 1
