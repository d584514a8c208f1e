"""Analytics: counts events per day and type (and revenue) for reporting.

Counter items in the orders table: ``pk=STATS#<YYYY-MM-DD>``, ``sk=<eventType>``,
``events`` (count) and, for ``OrderPaid``, ``revenue``. The counters use ``ADD``,
so they are only right because each event is processed once (idempotency).
"""

from __future__ import annotations

from typing import Any

from infra.functions.consumer import ConsumerContext, ConsumerEvent, lambda_handler
from infra.functions.outbox import serialize
from infra.schemas import OrderPaid

STATS_PREFIX = "STATS#"


def stats_key(day: str, event_type: str) -> dict[str, Any]:
    return {"pk": {"S": f"{STATS_PREFIX}{day}"}, "sk": {"S": event_type}}


def process(event: ConsumerEvent, ctx: ConsumerContext) -> dict[str, Any]:
    day = event.detail.occurredAt.date().isoformat()
    values: dict[str, Any] = {":one": 1}
    expression = "ADD events :one"
    if isinstance(event.detail, OrderPaid):
        values[":amount"] = event.detail.amount
        expression += ", revenue :amount"
    # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateItem.html
    ctx.dynamodb.update_item(
        TableName=ctx.orders_table,
        Key=stats_key(day, event.event_type),
        UpdateExpression=expression,
        ExpressionAttributeValues=serialize(values),
    )
    return {"counted": event.event_type, "day": day}


handler = lambda_handler("analytics")
