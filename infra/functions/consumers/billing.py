"""Billing: keeps a per-order ledger of charges and refunds.

Ledger item in the orders table: ``pk=ORDER#<orderId>``, ``sk=BILLING``, with
``charges``/``chargedTotal`` and ``refunds``/``refundedTotal``.

Business rules (a violation is a poison message, it ends in the DLQ):
- ``OrderPaid``: the order must exist, and the paid amount and currency must match
  the order's (an inconsistent amount is refused);
- ``OrderCancelled``: the currency must match the ledger's, and the refund cannot
  exceed what was charged and not yet refunded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from infra.functions.consumer import (
    BusinessRuleViolation,
    ConsumerContext,
    ConsumerEvent,
    lambda_handler,
)
from infra.functions.orders import ORDER_PREFIX, get_order
from infra.functions.outbox import serialize
from infra.schemas import OrderCancelled, OrderPaid

LEDGER_SK = "BILLING"
_deserializer = TypeDeserializer()


def ledger_key(order_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"{ORDER_PREFIX}{order_id}"}, "sk": {"S": LEDGER_SK}}


def get_ledger(dynamodb: Any, table_name: str, order_id: str) -> dict[str, Any] | None:
    response = dynamodb.get_item(
        TableName=table_name, Key=ledger_key(order_id), ConsistentRead=True
    )
    item = response.get("Item")
    return {k: _deserializer.deserialize(v) for k, v in item.items()} if item else None


def _add_to_ledger(ctx: ConsumerContext, order_id: str, values: dict[str, Any]) -> None:
    adds = {k: v for k, v in values.items() if k != "currency"}
    # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateItem.html
    ctx.dynamodb.update_item(
        TableName=ctx.orders_table,
        Key=ledger_key(order_id),
        UpdateExpression="ADD "
        + ", ".join(f"{name} :{name}" for name in adds)
        + " SET currency = :currency, updatedAt = :now",
        ExpressionAttributeValues=serialize(
            {
                **{f":{name}": value for name, value in adds.items()},
                ":currency": values["currency"],
                ":now": datetime.now(UTC).isoformat(),
            }
        ),
    )


def charge(detail: OrderPaid, ctx: ConsumerContext) -> dict[str, Any]:
    order = get_order(ctx.dynamodb, ctx.orders_table, detail.orderId)
    if order is None:
        raise BusinessRuleViolation(f"payment for unknown order {detail.orderId}")
    expected = Decimal(str(order.get("amount", "0")))
    if detail.currency != order.get("currency") or detail.amount != expected:
        raise BusinessRuleViolation(
            f"paid {detail.amount} {detail.currency} but order {detail.orderId} "
            f"is {expected} {order.get('currency')}"
        )
    _add_to_ledger(
        ctx,
        detail.orderId,
        {"charges": 1, "chargedTotal": detail.amount, "currency": detail.currency},
    )
    return {"charged": str(detail.amount), "currency": detail.currency}


def refund(detail: OrderCancelled, ctx: ConsumerContext) -> dict[str, Any]:
    ledger = get_ledger(ctx.dynamodb, ctx.orders_table, detail.orderId) or {}
    charged = Decimal(str(ledger.get("chargedTotal", 0)))
    refunded = Decimal(str(ledger.get("refundedTotal", 0)))
    if ledger and ledger.get("currency") != detail.currency:
        raise BusinessRuleViolation(
            f"refund in {detail.currency} but order {detail.orderId} was charged in "
            f"{ledger.get('currency')}"
        )
    if detail.refundAmount > charged - refunded:
        raise BusinessRuleViolation(
            f"refund {detail.refundAmount} exceeds the {charged - refunded} left to refund "
            f"on order {detail.orderId}"
        )
    if detail.refundAmount == 0:
        return {"refunded": "0", "currency": detail.currency}
    _add_to_ledger(
        ctx,
        detail.orderId,
        {"refunds": 1, "refundedTotal": detail.refundAmount, "currency": detail.currency},
    )
    return {"refunded": str(detail.refundAmount), "currency": detail.currency}


def process(event: ConsumerEvent, ctx: ConsumerContext) -> dict[str, Any]:
    if isinstance(event.detail, OrderPaid):
        return charge(event.detail, ctx)
    if isinstance(event.detail, OrderCancelled):
        return refund(event.detail, ctx)
    raise BusinessRuleViolation(f"billing cannot handle {event.event_type}")


handler = lambda_handler("billing")
