"""The triage contract: error fallbacks and failure signatures."""

from __future__ import annotations

from operations.aws.sqs import SqsMessage
from operations.dlq import describe
from operations.triage.errors import NO_ERROR, ConsumerError, Source, errors_for
from operations.triage.signature import normalise, signature_of


def _message(message_id: str, attributes: dict[str, str] | None = None) -> SqsMessage:
    return SqsMessage(
        message_id=message_id,
        receipt_handle="rh",
        body='{"detail": {}}',
        attributes={},
        message_attributes={
            name: {"DataType": "String", "StringValue": value}
            for name, value in (attributes or {}).items()
        },
    )


def test_lambda_dlq_attributes_then_nothing(aws: None) -> None:
    messages = [
        describe(_message("m1", {"ErrorCode": "200", "ErrorMessage": "Task timed out"})),
        describe(_message("m2")),
    ]
    errors = errors_for("https://sqs/q-dlq", messages)
    assert errors["m1"].source is Source.ATTRIBUTES
    assert errors["m1"].summary == "200: Task timed out"
    assert errors["m2"].source is Source.NONE and errors["m2"].summary == NO_ERROR


def test_values_do_not_split_a_group() -> None:
    first = ConsumerError(
        "a", Source.LOGS, "orders-consumer", "ValueError", "amount -5 for 'o-1' invalid", "h.py:10"
    )
    second = ConsumerError(
        "b", Source.LOGS, "orders-consumer", "ValueError", "amount -7 for 'o-9' invalid", "h.py:10"
    )
    other = ConsumerError("c", Source.LOGS, "orders-consumer", "KeyError", "amount", "h.py:10")
    assert signature_of(first).key == signature_of(second).key
    assert signature_of(first).key != signature_of(other).key
    assert normalise("id 3f2b1c9e-1111-2222-3333-444455556666 x=12.5") == "id <uuid> x=<n>"
