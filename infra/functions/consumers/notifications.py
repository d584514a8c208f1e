"""Notifications: tells the customer about each step of their order.

The demo has no mail service: the "email" is a structured log line naming the
template, which the idempotency record stores as the result.
"""

from __future__ import annotations

from typing import Any

from infra.functions.consumer import ConsumerContext, ConsumerEvent, lambda_handler

TEMPLATES = {
    "OrderCreated": "order-received",
    "OrderPaid": "payment-received",
    "OrderShipped": "order-shipped",
    "OrderCancelled": "order-cancelled",
}


def process(event: ConsumerEvent, ctx: ConsumerContext) -> dict[str, Any]:
    template = TEMPLATES[event.event_type]
    ctx.logger.info("notification sent", extra={"template": template})
    return {"template": template, "orderId": event.detail.orderId}


handler = lambda_handler("notifications")
