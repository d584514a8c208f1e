"""Powertools idempotency records that also carry the correlation ID.

The idempotency table (COMMON.md) has, besides the Powertools schema (``id``,
``expiration``, ``status``, ``data``, ``in_progress_expiration``), the attributes
``correlation_id``, ``consumer``, ``event_type`` and ``event_id``, so that the
dashboard finds a transaction's records through the ``by-correlation-id`` GSI.

Powertools writes the record itself (``PutItem`` when processing starts,
``UpdateItem`` when it completes). This layer adds the attributes to those two
requests with botocore ``before-parameter-build`` hooks on its own client; the
values come from ``record_attributes(...)``, a context manager the consumer
opens around each message.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

_ATTRIBUTES: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "eventops_idempotency_attributes", default=None
)


def idempotency_key(consumer_name: str, event_id: str) -> str:
    """The ``id`` of the record a consumer keeps for one event.

    Powertools hashes the JSON of the key (the event ``id``, a string) with MD5 and
    prefixes it with the key prefix, which is the consumer's name.
    """
    digest = hashlib.md5(json.dumps(event_id).encode(), usedforsecurity=False).hexdigest()
    return f"{consumer_name}#{digest}"


class CorrelatedPersistenceLayer(DynamoDBPersistenceLayer):
    """``DynamoDBPersistenceLayer`` whose records carry correlation attributes."""

    def __init__(self, table_name: str, *, boto3_client: Any) -> None:
        super().__init__(table_name=table_name, boto3_client=boto3_client)
        events = self.client.meta.events
        events.register("before-parameter-build.dynamodb.PutItem", self._add_to_put)
        events.register("before-parameter-build.dynamodb.UpdateItem", self._add_to_update)

    @staticmethod
    @contextmanager
    def record_attributes(**attributes: str) -> Iterator[None]:
        """Attach ``attributes`` to the records written inside this block (empty ones dropped)."""
        token = _ATTRIBUTES.set({k: v for k, v in attributes.items() if v})
        try:
            yield
        finally:
            _ATTRIBUTES.reset(token)

    def _current(self, params: dict[str, Any]) -> dict[str, str]:
        if params.get("TableName") != self.table_name:
            return {}
        return _ATTRIBUTES.get() or {}

    def _add_to_put(self, params: dict[str, Any], **_: Any) -> None:
        extra = self._current(params)
        if extra:
            params["Item"] = {**params["Item"], **{k: {"S": v} for k, v in extra.items()}}

    def _add_to_update(self, params: dict[str, Any], **_: Any) -> None:
        extra = self._current(params)
        if not extra:
            return
        names = dict(params.get("ExpressionAttributeNames", {}))
        values = dict(params.get("ExpressionAttributeValues", {}))
        clauses = []
        for index, (name, value) in enumerate(extra.items()):
            names[f"#eo{index}"] = name
            values[f":eo{index}"] = {"S": value}
            clauses.append(f"#eo{index} = :eo{index}")
        # Powertools' expression is a single SET clause, so more assignments append to it.
        params["UpdateExpression"] = f"{params['UpdateExpression']}, {', '.join(clauses)}"
        params["ExpressionAttributeNames"] = names
        params["ExpressionAttributeValues"] = values
