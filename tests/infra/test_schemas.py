from __future__ import annotations

import jsonschema
import pytest
from pydantic import ValidationError

from infra.schemas import EVENT_MODELS, UnknownEventType, json_schema, validate_detail

PAID = {
    "correlationId": "corr-1",
    "orderId": "o-1",
    "occurredAt": "2026-11-26T10:00:00Z",
    "paymentId": "pay-1",
    "amount": 12.5,
    "currency": "EUR",
}


@pytest.mark.parametrize("detail_type", sorted(EVENT_MODELS))
def test_exported_schemas_are_valid_draft_4(detail_type):
    schema = json_schema(detail_type)
    jsonschema.Draft4Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"


def test_draft_4_schema_rejects_a_non_positive_amount():
    validator = jsonschema.Draft4Validator(json_schema("OrderPaid"))
    assert list(validator.iter_errors(PAID)) == []
    assert list(validator.iter_errors({**PAID, "amount": -5}))


def test_pydantic_model_rejects_unknown_fields():
    with pytest.raises(ValidationError):
        validate_detail("OrderPaid", {**PAID, "extra": "x"})


def test_unknown_event_type_is_its_own_error():
    with pytest.raises(UnknownEventType):
        validate_detail("OrderTeleported", PAID)
