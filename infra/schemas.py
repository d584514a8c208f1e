"""Event schemas: the ``detail`` of every event on the bus, as pydantic models.

Producers validate before they write the outbox; consumers validate on receipt,
and a message that fails validation is a poison message. The IaC exports these
models as JSON Schema (draft 4, what the EventBridge schema registry takes for
``JSONSchemaDraft4``) and registers one schema per event type.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from infra.topology import ORDERS_SOURCE

CorrelationId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")]
Money = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2)]
Currency = Literal["EUR", "USD", "GBP"]


class EventDetail(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    correlationId: CorrelationId
    orderId: str = Field(min_length=1, max_length=64)
    occurredAt: datetime


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(gt=0, le=1000)
    unitPrice: Money


class OrderCreated(EventDetail):
    customerId: str = Field(min_length=1, max_length=64)
    lines: list[OrderLine] = Field(min_length=1, max_length=100)
    amount: Money
    currency: Currency


class OrderPaid(EventDetail):
    paymentId: str = Field(min_length=1, max_length=64)
    amount: Money
    currency: Currency


class OrderShipped(EventDetail):
    carrier: str = Field(min_length=1, max_length=32)
    trackingNumber: str = Field(min_length=1, max_length=64)


class OrderCancelled(EventDetail):
    reason: str = Field(min_length=1, max_length=256)
    refundAmount: Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]
    currency: Currency


EVENT_MODELS: dict[str, type[EventDetail]] = {
    model.__name__: model for model in (OrderCreated, OrderPaid, OrderShipped, OrderCancelled)
}


class UnknownEventType(KeyError):
    pass


def model_for(detail_type: str) -> type[EventDetail]:
    try:
        return EVENT_MODELS[detail_type]
    except KeyError:
        raise UnknownEventType(detail_type) from None


def validate_detail(detail_type: str, detail: Any) -> EventDetail:
    """Parse ``detail`` as ``detail_type``.

    Raises ``pydantic.ValidationError`` or ``UnknownEventType``.
    """
    return model_for(detail_type).model_validate(detail)


def schema_name(detail_type: str) -> str:
    """Registry name, as schema discovery would name it: ``<source>@<DetailType>``."""
    return f"{ORDERS_SOURCE}@{detail_type}"


def _to_draft4(node: Any) -> Any:
    """Rewrite pydantic's JSON Schema (draft 2020-12) into valid draft 4.

    Draft 4 spells an exclusive bound as ``minimum`` plus ``exclusiveMinimum: true``
    and keeps sub-schemas under ``definitions``; the registry's ``JSONSchemaDraft4``
    type and draft-4 validators would misread the newer forms.
    """
    if isinstance(node, list):
        return [_to_draft4(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$defs":
            out["definitions"] = _to_draft4(value)
        elif key == "$ref" and isinstance(value, str):
            out[key] = value.replace("#/$defs/", "#/definitions/")
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = value
            out[key] = True
        else:
            out[key] = _to_draft4(value)
    return out


def json_schema(detail_type: str) -> dict[str, Any]:
    """The JSON Schema (draft 4) of one event type's ``detail``, ready for the registry."""
    schema: dict[str, Any] = _to_draft4(model_for(detail_type).model_json_schema())
    schema["$schema"] = "http://json-schema.org/draft-04/schema#"
    schema["title"] = detail_type
    return schema


def json_schema_text(detail_type: str) -> str:
    return json.dumps(json_schema(detail_type), sort_keys=True, separators=(",", ":"))
