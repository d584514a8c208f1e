"""The transactional outbox: business item and event written in one transaction.

A producer never calls ``PutEvents`` itself. It writes its business change and an
outbox item with ONE DynamoDB ``TransactWriteItems`` call; the table's stream
feeds the outbox publisher (``infra.functions.publisher``), which puts the event
on the bus. Either both writes happen or neither does, so no event is lost and
none is published for a change that did not commit.

The detail is validated against ``infra.schemas`` before anything is written:
an invalid payload raises ``InvalidEventPayload`` and the table is untouched.

Outbox item (COMMON.md "Shared data conventions"): ``pk=OUTBOX#<orderId>``,
``sk=EVENT#<uuid>``, ``eventType``, ``payload`` (JSON text of the detail),
``correlationId``, ``status`` PENDING, ``createdAt``, ``ttl`` (+24 h).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError
from pydantic import ValidationError

from infra.schemas import EventDetail, UnknownEventType, validate_detail
from infra.topology import TOPOLOGY

logger = logging.getLogger(__name__)

OUTBOX_PREFIX = "OUTBOX#"
EVENT_PREFIX = "EVENT#"
STATUS_PENDING = "PENDING"
STATUS_PUBLISHED = "PUBLISHED"

_serializer = TypeSerializer()


class InvalidEventPayload(ValueError):
    """The detail does not match its event schema; nothing was written."""

    def __init__(self, event_type: str, reason: str) -> None:
        super().__init__(f"invalid {event_type} payload: {reason}")
        self.event_type = event_type
        self.reason = reason


class TransactionConflict(RuntimeError):
    """A condition of the transaction failed (for example the order is in another state).

    ``reasons`` holds one cancellation code per transaction item, in order
    (``"None"`` for items that were fine, ``"ConditionalCheckFailed"`` etc.).
    """

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(f"transaction cancelled: {reasons}")
        self.reasons = reasons


@dataclass(frozen=True)
class OutboxRecord:
    """What was written to the outbox (and will be published)."""

    order_id: str
    event_id: str
    event_type: str
    correlation_id: str
    detail: dict[str, Any]
    payload: str
    created_at: str
    ttl: int

    @property
    def key(self) -> dict[str, str]:
        return {"pk": outbox_pk(self.order_id), "sk": f"{EVENT_PREFIX}{self.event_id}"}


def outbox_pk(order_id: str) -> str:
    return f"{OUTBOX_PREFIX}{order_id}"


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Amounts have at most 12 digits, which a float renders exactly; a JSON number
        # (not a string) lets EventBridge rules use numeric matching on amounts.
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def detail_json(model: EventDetail) -> str:
    """The canonical JSON text of a validated detail (what goes on the bus)."""
    return json.dumps(model.model_dump(mode="python"), default=_json_default, separators=(",", ":"))


def validate_payload(event_type: str, detail: Mapping[str, Any]) -> EventDetail:
    """Validate ``detail`` against the schema of ``event_type``, or raise InvalidEventPayload."""
    try:
        return validate_detail(event_type, dict(detail))
    except UnknownEventType:
        raise InvalidEventPayload(event_type, "unknown event type") from None
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise InvalidEventPayload(event_type, errors) from exc


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    """A plain dict as a DynamoDB attribute map (None values are dropped)."""
    return {k: _serializer.serialize(v) for k, v in item.items() if v is not None}


def build_outbox_record(
    event_type: str, detail: Mapping[str, Any], *, now: datetime | None = None
) -> OutboxRecord:
    """Validate ``detail`` and build the outbox record; raises InvalidEventPayload."""
    model = validate_payload(event_type, detail)
    payload = detail_json(model)
    created = (now or datetime.now(UTC)).astimezone(UTC)
    return OutboxRecord(
        order_id=model.orderId,
        event_id=str(uuid.uuid4()),
        event_type=event_type,
        correlation_id=model.correlationId,
        detail=json.loads(payload),
        payload=payload,
        created_at=created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        ttl=int(created.timestamp()) + TOPOLOGY.outbox_ttl_s,
    )


def outbox_put(table_name: str, record: OutboxRecord) -> dict[str, Any]:
    """The ``Put`` transaction item of one outbox record."""
    item = {
        **record.key,
        "eventType": record.event_type,
        "payload": record.payload,
        "correlationId": record.correlation_id,
        "status": STATUS_PENDING,
        "createdAt": record.created_at,
        "ttl": record.ttl,
    }
    return {
        "Put": {
            "TableName": table_name,
            "Item": serialize(item),
            # A uuid collision must never overwrite an unpublished event.
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


def write_with_outbox(
    dynamodb: Any,
    table_name: str,
    *,
    event_type: str,
    detail: Mapping[str, Any],
    business_item: Mapping[str, Any],
    now: datetime | None = None,
) -> OutboxRecord:
    """Validate the detail, then write ``business_item`` and the outbox item atomically.

    ``business_item`` is one complete ``TransactWriteItems`` element (``{"Put": ...}``,
    ``{"Update": ...}`` or ``{"ConditionCheck": ...}``, with its ``TableName``). It is
    the first item of the transaction, the outbox ``Put`` the second.

    Raises InvalidEventPayload (nothing written) or TransactionConflict (a condition
    failed; nothing written). Other botocore errors propagate unchanged.
    """
    record = build_outbox_record(event_type, detail, now=now)
    try:
        # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
        dynamodb.transact_write_items(
            TransactItems=[dict(business_item), outbox_put(table_name, record)]
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
            reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
            raise TransactionConflict(reasons) from exc
        raise
    logger.debug(
        "outbox %s %s for order %s written", record.event_type, record.event_id, record.order_id
    )
    return record
