"""DynamoDB adapter: discover tables and query the ``by-correlation-id`` indexes."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from operations.aws.client import client
from operations.aws.errors import translate

CORRELATION_INDEX = "by-correlation-id"
_deserializer = TypeDeserializer()


@dataclass(frozen=True)
class Item:
    """One item, with DynamoDB types turned into plain Python values."""

    table: str
    attributes: dict[str, Any]

    def get(self, name: str, default: Any = None) -> Any:
        return self.attributes.get(name, default)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    return value


def deserialize(raw: dict[str, Any]) -> dict[str, Any]:
    """A low-level item (``{"S": ...}`` values) as plain Python values."""
    return {name: _plain(_deserializer.deserialize(value)) for name, value in raw.items()}


# https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ListTables.html
def list_table_names() -> list[str]:
    """Every table name in the region, following pagination."""
    dynamodb = client("dynamodb")
    names: list[str] = []
    params: dict[str, Any] = {}
    try:
        while True:
            page = dynamodb.list_tables(**params)
            names.extend(page.get("TableNames", []))
            last = page.get("LastEvaluatedTableName")
            if not last:
                return names
            params["ExclusiveStartTableName"] = last
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, "ListTables") from exc


# https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Query.html
def query_index(
    table: str,
    attribute: str,
    value: str,
    index: str = CORRELATION_INDEX,
    limit: int = 100,
) -> list[Item]:
    """Items whose ``attribute`` (the index's partition key) equals ``value``; at most ``limit``.

    The value travels as an expression attribute value, never inside the
    expression text, so no escaping is needed.
    """
    dynamodb = client("dynamodb")
    params: dict[str, Any] = {
        "TableName": table,
        "IndexName": index,
        "KeyConditionExpression": "#k = :v",
        "ExpressionAttributeNames": {"#k": attribute},
        "ExpressionAttributeValues": {":v": {"S": value}},
        "Limit": limit,
    }
    items: list[Item] = []
    try:
        while len(items) < limit:
            page = dynamodb.query(**params)
            items.extend(
                Item(table=table, attributes=deserialize(raw)) for raw in page.get("Items", [])
            )
            last = page.get("LastEvaluatedKey")
            if not last:
                break
            params["ExclusiveStartKey"] = last
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, "Query") from exc
    return items[:limit]
