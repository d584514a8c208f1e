"""Plain helpers for the Lambda code tests (events as SQS and EventBridge shape them)."""

from __future__ import annotations

import json
import uuid
from typing import Any


def envelope(detail_type: str, detail: dict[str, Any], event_id: str | None = None) -> dict:
    """An EventBridge event as an SQS body from a rule target carries it."""
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "eventops.orders",
        "account": "123456789012",
        "time": "2026-11-26T15:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def paid_detail(order_id: str = "o-1", amount: str = "25.00", **extra: Any) -> dict[str, Any]:
    return {
        "correlationId": f"corr-{order_id}",
        "orderId": order_id,
        "occurredAt": "2026-11-26T15:00:00Z",
        "paymentId": "p-1",
        "amount": amount,
        "currency": "EUR",
        **extra,
    }


def sqs_event(*bodies: Any, attributes: dict[str, str] | None = None) -> dict[str, Any]:
    """A Lambda SQS event with one record per body (dicts are JSON-encoded)."""
    records = []
    for body in bodies:
        message_attributes = {
            name: {"stringValue": value, "dataType": "String"}
            for name, value in (attributes or {}).items()
        }
        records.append(
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "handle",
                "body": body if isinstance(body, str) else json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": message_attributes,
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}


def sqs_event_from_messages(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The Lambda event the SQS event source builds from received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {
                    name: {"stringValue": v.get("StringValue"), "dataType": v["DataType"]}
                    for name, v in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }
