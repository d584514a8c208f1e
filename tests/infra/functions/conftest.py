"""Fixtures for the Lambda code tests: moto tables, queues, events and stream reading."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aws_lambda_powertools import Logger

from infra.functions.config import new_client
from infra.topology import TOPOLOGY

ORDERS_TABLE = TOPOLOGY.orders_table
IDEMPOTENCY_TABLE = TOPOLOGY.idempotency_table


@pytest.fixture(autouse=True)
def _tracing_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)


@dataclass
class Tables:
    orders: str
    idempotency: str
    dynamodb: Any

    def items(self, table: str) -> list[dict[str, Any]]:
        return self.dynamodb.scan(TableName=table)["Items"]

    def item(self, table: str, pk: str, sk: str) -> dict[str, Any] | None:
        key = {"pk": {"S": pk}, "sk": {"S": sk}}
        return self.dynamodb.get_item(TableName=table, Key=key).get("Item")

    def outbox(self) -> list[dict[str, Any]]:
        return [i for i in self.items(self.orders) if i["pk"]["S"].startswith("OUTBOX#")]


@pytest.fixture
def tables(aws: None) -> Tables:
    """The orders table (stream NEW_IMAGE, GSI by-correlation-id) and the idempotency table."""
    dynamodb = new_client("dynamodb")
    dynamodb.create_table(
        TableName=ORDERS_TABLE,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "correlationId", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-correlation-id",
                "KeySchema": [{"AttributeName": "correlationId", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    dynamodb.create_table(
        TableName=IDEMPOTENCY_TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return Tables(ORDERS_TABLE, IDEMPOTENCY_TABLE, dynamodb)


class StreamReader:
    """Reads the orders table's stream from moto, as Lambda would receive it."""

    def __init__(self, table: str) -> None:
        # botocore >= 1.40 sends stream calls to an account-based host that moto's mock does
        # not route; the classic regional endpoint is the one it intercepts.
        self.streams = new_client(
            "dynamodbstreams", endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com"
        )
        arn = new_client("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"]
        shard = self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
        self.iterator = self.streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]

    def read(self) -> list[dict[str, Any]]:
        """The records written since the previous read."""
        response = self.streams.get_records(ShardIterator=self.iterator)
        self.iterator = response["NextShardIterator"]
        return response["Records"]


@pytest.fixture
def stream(tables: Tables) -> StreamReader:
    return StreamReader(tables.orders)


@pytest.fixture
def log_capture() -> Iterator[tuple[Logger, Callable[[], list[dict[str, Any]]]]]:
    """A Powertools Logger writing JSON lines to memory, and a reader of those lines."""
    buffer = io.StringIO()
    logger = Logger(service=f"test-{uuid.uuid4().hex[:8]}", stream=buffer)

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]

    yield logger, lines
