"""A DLQ in moto for the failure-group and scan tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest


@dataclass
class Dlq:
    client: Any
    url: str

    def put(self, i: int, *, error: str = "", body: dict[str, Any] | None = None) -> str:
        payload = body or {
            "id": f"e-{i}",
            "detail-type": "OrderPaid",
            "detail": {"correlationId": f"corr-{i}", "orderId": f"o-{i}"},
        }
        kwargs: dict[str, Any] = {"QueueUrl": self.url, "MessageBody": json.dumps(payload)}
        if error:
            kwargs["MessageAttributes"] = {
                "ErrorMessage": {"DataType": "String", "StringValue": error}
            }
        return str(self.client.send_message(**kwargs)["MessageId"])

    def visible(self) -> int:
        attrs = self.client.get_queue_attributes(QueueUrl=self.url, AttributeNames=["All"])
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"])

    def hidden(self) -> int:
        attrs = self.client.get_queue_attributes(QueueUrl=self.url, AttributeNames=["All"])
        return int(attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture
def dlq_queue(aws: None, db: None) -> Iterator[Dlq]:
    client = boto3.client("sqs", region_name="us-east-1")
    url = client.create_queue(QueueName="billing-dlq")["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3})
    client.create_queue(QueueName="billing", Attributes={"RedrivePolicy": policy})
    yield Dlq(client, url)
