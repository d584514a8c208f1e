"""Shipping: books a shipment for each paid order and emits ``OrderShipped``.

On ``OrderPaid`` it moves the order to SHIPPED and writes ``OrderShipped`` to the
outbox, in one transaction (``infra.functions.orders.ship_order``). The tracking
number derives from the event ID, so a retry books the same shipment. An order
already shipped or cancelled is acknowledged without change.
"""

from __future__ import annotations

import hashlib
from typing import Any

from infra.functions.consumer import (
    BusinessRuleViolation,
    ConsumerContext,
    ConsumerEvent,
    lambda_handler,
)
from infra.functions.orders import (
    CANCELLED,
    PAID,
    SHIPPED,
    OrderStateConflict,
    get_order,
    ship_order,
)
from infra.schemas import OrderCancelled, OrderPaid

CARRIERS = ("UPS", "DHL", "FedEx", "GLS")


def _shipment_for(event_id: str) -> tuple[str, str]:
    digest = hashlib.sha256(event_id.encode()).hexdigest()
    return CARRIERS[int(digest[:8], 16) % len(CARRIERS)], f"TRK{digest[:12].upper()}"


def book(event: ConsumerEvent, detail: OrderPaid, ctx: ConsumerContext) -> dict[str, Any]:
    order = get_order(ctx.dynamodb, ctx.orders_table, detail.orderId)
    if order is None:
        raise BusinessRuleViolation(f"cannot ship unknown order {detail.orderId}")
    status = order.get("status")
    if status in (SHIPPED, CANCELLED):
        return {"shipment": "unchanged", "status": status}
    if status != PAID:
        raise BusinessRuleViolation(f"order {detail.orderId} is {status}, not PAID")
    carrier, tracking = _shipment_for(event.event_id)
    try:
        ship_order(
            ctx.dynamodb,
            ctx.orders_table,
            order_id=detail.orderId,
            carrier=carrier,
            tracking_number=tracking,
            correlation_id=event.correlation_id,
        )
    except OrderStateConflict:
        # Cancelled or shipped between our read and our write: nothing left to do.
        current = get_order(ctx.dynamodb, ctx.orders_table, detail.orderId) or {}
        if current.get("status") in (SHIPPED, CANCELLED):
            return {"shipment": "unchanged", "status": current.get("status")}
        raise
    return {"shipment": "booked", "carrier": carrier, "trackingNumber": tracking}


def process(event: ConsumerEvent, ctx: ConsumerContext) -> dict[str, Any]:
    if isinstance(event.detail, OrderPaid):
        return book(event, event.detail, ctx)
    if isinstance(event.detail, OrderCancelled):
        ctx.logger.info("shipment cancelled", extra={"order_id": event.detail.orderId})
        return {"shipment": "cancelled"}
    raise BusinessRuleViolation(f"shipping cannot handle {event.event_type}")


handler = lambda_handler("shipping")
