"""Business rules of the demo consumers, and their Lambda entry points."""

from __future__ import annotations

import importlib

import pytest

from infra.functions.config import ConfigurationError
from infra.functions.consumer import build_consumer_handler, lambda_handler
from infra.functions.orders import cancel_order, create_order, pay_order
from infra.topology import TOPOLOGY
from tests.infra.functions.fn_helpers import envelope, sqs_event

LINES = [{"sku": "SKU-1", "quantity": 2, "unitPrice": "20.00"}]


@pytest.fixture
def order(tables):
    return create_order(tables.dynamodb, tables.orders, customer_id="c-1", lines=LINES)


def _pay(tables, order, amount: str):
    return pay_order(
        tables.dynamodb,
        tables.orders,
        order_id=order.order_id,
        amount=amount,
        currency="EUR",
        correlation_id=order.correlation_id,
    )


def _ledger(tables, order) -> dict:
    return tables.item(tables.orders, f"ORDER#{order.order_id}", "BILLING") or {}


def _deliver(handler, record) -> dict:
    return handler(sqs_event(envelope(record.event_type, record.detail)), None)


def test_billing_charges_a_payment_that_matches_the_order(tables, order):
    billing = build_consumer_handler("billing", idempotency_table=tables.idempotency)

    result = _deliver(billing, _pay(tables, order, "40.00"))

    assert result == {"batchItemFailures": []}
    assert _ledger(tables, order)["chargedTotal"]["N"] == "40"


def test_billing_rejects_a_payment_inconsistent_with_the_order(tables, order, log_capture):
    logger, lines = log_capture
    billing = build_consumer_handler("billing", idempotency_table=tables.idempotency, logger=logger)

    result = _deliver(billing, _pay(tables, order, "39.99"))

    assert len(result["batchItemFailures"]) == 1 and _ledger(tables, order) == {}
    assert any("rule_error" in line for line in lines())


def test_billing_rejects_a_refund_larger_than_the_charge(tables, order):
    billing = build_consumer_handler("billing", idempotency_table=tables.idempotency)
    _deliver(billing, _pay(tables, order, "40.00"))
    cancelled = cancel_order(
        tables.dynamodb,
        tables.orders,
        order_id=order.order_id,
        reason="customer request",
        refund_amount="50.00",
        currency="EUR",
        correlation_id=order.correlation_id,
    )

    result = _deliver(billing, cancelled)

    assert len(result["batchItemFailures"]) == 1
    assert "refundedTotal" not in _ledger(tables, order)


def test_shipping_ships_a_paid_order_through_the_outbox(tables, order):
    shipping = build_consumer_handler("shipping", idempotency_table=tables.idempotency)

    result = _deliver(shipping, _pay(tables, order, "40.00"))

    shipped = [o for o in tables.outbox() if o["eventType"]["S"] == "OrderShipped"]
    assert result == {"batchItemFailures": []} and len(shipped) == 1
    assert (
        tables.item(tables.orders, f"ORDER#{order.order_id}", "ORDER")["status"]["S"] == "SHIPPED"
    )


def test_shipping_leaves_a_cancelled_order_alone(tables, order):
    shipping = build_consumer_handler("shipping", idempotency_table=tables.idempotency)
    paid = _pay(tables, order, "40.00")
    cancel_order(
        tables.dynamodb,
        tables.orders,
        order_id=order.order_id,
        reason="changed mind",
        refund_amount="40.00",
        currency="EUR",
        correlation_id=order.correlation_id,
    )

    result = _deliver(shipping, paid)

    assert result == {"batchItemFailures": []}
    assert not [o for o in tables.outbox() if o["eventType"]["S"] == "OrderShipped"]


def test_lambda_handler_reads_its_tables_from_the_environment(tables, order, monkeypatch):
    monkeypatch.setenv("IDEMPOTENCY_TABLE", tables.idempotency)
    monkeypatch.setenv("ORDERS_TABLE", tables.orders)
    handler = lambda_handler("notifications")

    result = handler(sqs_event(envelope(order.event_type, order.detail)), None)

    assert result == {"batchItemFailures": []}
    assert len(tables.items(tables.idempotency)) == 1


def test_lambda_handler_refuses_a_mismatched_consumer_name(tables, monkeypatch):
    monkeypatch.setenv("CONSUMER_NAME", "billing")
    handler = lambda_handler("notifications")

    with pytest.raises(ConfigurationError, match="CONSUMER_NAME"):
        handler(sqs_event(), None)


def test_every_handler_path_in_the_topology_is_a_callable():
    paths = [c.handler for c in TOPOLOGY.consumers]
    paths += [TOPOLOGY.outbox_publisher_handler, TOPOLOGY.dlq_reprocessor_handler]

    resolved = [
        getattr(importlib.import_module(p.rpartition(".")[0]), p.rpartition(".")[2]) for p in paths
    ]

    assert len(resolved) == 6
    assert all(callable(handler) for handler in resolved)
