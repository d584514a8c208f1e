"""The ``orders`` producer: each state change is one outbox transaction.

Business item: ``pk=ORDER#<orderId>``, ``sk=ORDER``, with ``status`` moving
CREATED -> PAID -> SHIPPED, or CREATED/PAID -> CANCELLED. Every function below
validates the event detail first (``InvalidEventPayload``, nothing written), then
writes the business change and the outbox item in one ``TransactWriteItems``
call whose condition enforces the state machine (``OrderStateConflict``).

The traffic simulator (devstack) and the shipping consumer call these functions
with their own boto3 DynamoDB client.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from infra.functions.outbox import (
    OutboxRecord,
    TransactionConflict,
    serialize,
    write_with_outbox,
)

ORDER_PREFIX = "ORDER#"
ORDER_SK = "ORDER"

CREATED = "CREATED"
PAID = "PAID"
SHIPPED = "SHIPPED"
CANCELLED = "CANCELLED"

_deserializer = TypeDeserializer()


class OrderStateConflict(RuntimeError):
    """The order does not exist or is not in a state that allows this change."""

    def __init__(self, order_id: str, change: str, expected: Sequence[str]) -> None:
        super().__init__(f"cannot {change} order {order_id}: it is not {' or '.join(expected)}")
        self.order_id = order_id
        self.change = change
        self.expected = tuple(expected)


def order_key(order_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"{ORDER_PREFIX}{order_id}"}, "sk": {"S": ORDER_SK}}


def get_order(dynamodb: Any, table_name: str, order_id: str) -> dict[str, Any] | None:
    """The business item as plain Python (numbers as Decimal), or None."""
    # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_GetItem.html
    response = dynamodb.get_item(TableName=table_name, Key=order_key(order_id), ConsistentRead=True)
    item = response.get("Item")
    if item is None:
        return None
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _transition(
    table_name: str,
    order_id: str,
    expected: Sequence[str],
    new_status: str,
    moment: datetime,
    fields: Mapping[str, Any],
) -> dict[str, Any]:
    """An ``Update`` transaction item moving the order from ``expected`` to ``new_status``."""
    values: dict[str, Any] = {":new": new_status, ":now": _iso(moment)}
    sets = ["#status = :new", "updatedAt = :now"]
    names = {"#status": "status"}
    for index, (name, value) in enumerate(fields.items()):
        names[f"#f{index}"] = name
        values[f":f{index}"] = value
        sets.append(f"#f{index} = :f{index}")
    allowed = []
    for index, status in enumerate(expected):
        values[f":e{index}"] = status
        allowed.append(f":e{index}")
    return {
        "Update": {
            "TableName": table_name,
            "Key": order_key(order_id),
            "UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": f"#status IN ({', '.join(allowed)})",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": serialize(values),
        }
    }


def _write(
    dynamodb: Any,
    table_name: str,
    *,
    change: str,
    order_id: str,
    expected: Sequence[str],
    event_type: str,
    detail: Mapping[str, Any],
    business_item: Mapping[str, Any],
    moment: datetime,
) -> OutboxRecord:
    try:
        return write_with_outbox(
            dynamodb,
            table_name,
            event_type=event_type,
            detail=detail,
            business_item=business_item,
            now=moment,
        )
    except TransactionConflict as exc:
        raise OrderStateConflict(order_id, change, expected) from exc


def create_order(
    dynamodb: Any,
    table_name: str,
    *,
    customer_id: str,
    lines: Sequence[Mapping[str, Any]],
    currency: str = "EUR",
    order_id: str | None = None,
    correlation_id: str | None = None,
    now: datetime | None = None,
) -> OutboxRecord:
    """Create an order (status CREATED) and its ``OrderCreated`` event.

    ``lines`` are ``{"sku", "quantity", "unitPrice"}`` mappings; the amount is their
    sum. A new order ID and correlation ID are generated unless given.
    """
    moment = _now(now)
    order_id = order_id or f"o-{uuid.uuid4().hex[:12]}"
    correlation_id = correlation_id or f"c-{uuid.uuid4()}"
    amount = sum(
        (Decimal(str(line.get("unitPrice", 0))) * int(line.get("quantity", 0)) for line in lines),
        Decimal("0"),
    )
    detail = {
        "correlationId": correlation_id,
        "orderId": order_id,
        "occurredAt": moment,
        "customerId": customer_id,
        "lines": [dict(line) for line in lines],
        "amount": amount,
        "currency": currency,
    }
    business = {
        "pk": f"{ORDER_PREFIX}{order_id}",
        "sk": ORDER_SK,
        "orderId": order_id,
        "customerId": customer_id,
        "status": CREATED,
        "amount": amount,
        "currency": currency,
        "lineCount": len(lines),
        "correlationId": correlation_id,
        "createdAt": _iso(moment),
        "updatedAt": _iso(moment),
    }
    put = {
        "Put": {
            "TableName": table_name,
            "Item": serialize(business),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }
    return _write(
        dynamodb,
        table_name,
        change="create",
        order_id=order_id,
        expected=("new",),
        event_type="OrderCreated",
        detail=detail,
        business_item=put,
        moment=moment,
    )


def pay_order(
    dynamodb: Any,
    table_name: str,
    *,
    order_id: str,
    amount: Decimal | str | int,
    currency: str,
    correlation_id: str,
    payment_id: str | None = None,
    now: datetime | None = None,
) -> OutboxRecord:
    """Record a payment (CREATED -> PAID) and its ``OrderPaid`` event.

    The amount is not compared with the order's here: the payment provider decides
    what was charged, and billing flags a mismatch when it consumes the event.
    """
    moment = _now(now)
    paid = Decimal(str(amount))
    payment_id = payment_id or f"p-{uuid.uuid4().hex[:12]}"
    detail = {
        "correlationId": correlation_id,
        "orderId": order_id,
        "occurredAt": moment,
        "paymentId": payment_id,
        "amount": paid,
        "currency": currency,
    }
    update = _transition(
        table_name,
        order_id,
        (CREATED,),
        PAID,
        moment,
        {"paymentId": payment_id, "paidAmount": paid, "paidCurrency": currency},
    )
    return _write(
        dynamodb,
        table_name,
        change="pay",
        order_id=order_id,
        expected=(CREATED,),
        event_type="OrderPaid",
        detail=detail,
        business_item=update,
        moment=moment,
    )


def ship_order(
    dynamodb: Any,
    table_name: str,
    *,
    order_id: str,
    carrier: str,
    tracking_number: str,
    correlation_id: str,
    now: datetime | None = None,
) -> OutboxRecord:
    """Mark a paid order shipped (PAID -> SHIPPED) and emit ``OrderShipped``."""
    moment = _now(now)
    detail = {
        "correlationId": correlation_id,
        "orderId": order_id,
        "occurredAt": moment,
        "carrier": carrier,
        "trackingNumber": tracking_number,
    }
    update = _transition(
        table_name,
        order_id,
        (PAID,),
        SHIPPED,
        moment,
        {"carrier": carrier, "trackingNumber": tracking_number},
    )
    return _write(
        dynamodb,
        table_name,
        change="ship",
        order_id=order_id,
        expected=(PAID,),
        event_type="OrderShipped",
        detail=detail,
        business_item=update,
        moment=moment,
    )


def cancel_order(
    dynamodb: Any,
    table_name: str,
    *,
    order_id: str,
    reason: str,
    refund_amount: Decimal | str | int,
    currency: str,
    correlation_id: str,
    now: datetime | None = None,
) -> OutboxRecord:
    """Cancel an unshipped order (CREATED/PAID -> CANCELLED) and emit ``OrderCancelled``."""
    moment = _now(now)
    refund = Decimal(str(refund_amount))
    detail = {
        "correlationId": correlation_id,
        "orderId": order_id,
        "occurredAt": moment,
        "reason": reason,
        "refundAmount": refund,
        "currency": currency,
    }
    update = _transition(
        table_name,
        order_id,
        (CREATED, PAID),
        CANCELLED,
        moment,
        {"cancelReason": reason, "refundAmount": refund},
    )
    return _write(
        dynamodb,
        table_name,
        change="cancel",
        order_id=order_id,
        expected=(CREATED, PAID),
        event_type="OrderCancelled",
        detail=detail,
        business_item=update,
        moment=moment,
    )
