"""``Filters(masked=True)``: what someone who sees masked bodies may filter on. A value must
be in the original and still there once masked; the mask itself is found in the masked
message; filters that look at no content never mask."""

from __future__ import annotations

import pytest

from operations import dlq, masking
from operations.aws import sqs
from tests.secret_bodies import BODY, CARD, PASSWORD


def message(body: str = BODY, **attributes: str) -> dlq.DlqMessage:
    attrs = {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}
    return dlq.describe(sqs.SqsMessage("m-1", "r", body, {}, attrs))


@pytest.mark.parametrize("text", [CARD, PASSWORD, f'"password": "{PASSWORD}"'])
def test_a_masked_value_never_matches(text: str) -> None:
    assert dlq.Filters(contains=text).matches(message())
    assert not dlq.Filters(contains=text, masked=True).matches(message())


def test_text_masking_leaves_alone_still_matches() -> None:
    assert dlq.Filters(contains="corr-secret", masked=True).matches(message())


def test_the_mask_itself_is_found_in_the_masked_message_only() -> None:
    assert dlq.Filters(contains="••••1111", masked=True).matches(message())
    assert not dlq.Filters(contains="••••1111").matches(message())


def test_a_masked_attribute_value_never_matches() -> None:
    found = message(api_key="sk_live_x", tenant="acme")
    assert not dlq.Filters(
        attribute_name="api_key", attribute_value="sk_live_x", masked=True
    ).matches(found)
    assert dlq.Filters(attribute_name="tenant", attribute_value="acme", masked=True).matches(found)


def test_filters_without_content_never_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(text: str) -> str:
        raise AssertionError("masked a body for a filter that looks at no content")

    monkeypatch.setattr(masking, "mask_text", refuse)
    assert dlq.Filters(message_ids=frozenset({"m-1"}), masked=True).matches(message())


def test_a_message_without_the_text_is_never_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(text: str) -> str:
        raise AssertionError("masked a message that cannot match")

    monkeypatch.setattr(masking, "mask_text", refuse)
    assert not dlq.Filters(contains="absent", masked=True).matches(message())


def test_the_masked_flag_is_kept_in_the_operation_parameters_and_is_not_a_filter() -> None:
    filters = dlq.Filters(masked=True)
    assert dlq.Filters.from_dict(filters.to_dict()) == filters and filters.is_empty
