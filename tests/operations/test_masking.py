"""Masking of sensitive values (operations/masking.py): keys, card numbers, patterns, shapes."""

from __future__ import annotations

import json

import pytest

from operations import masking
from operations.masking import MASK, Masker, luhn_ok, split_patterns

VISA = "4111111111111111"
AMEX_SPACED = "3782 822463 10005"
MASTERCARD_DASHED = "5555-5555-5555-4444"


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "Password",
        "userPassword",
        "passwd",
        "client_secret",
        "secretKey",
        "token",
        "access_token",
        "refreshToken",
        "Authorization",
        "api_key",
        "apiKey",
        "X-Api-Key",
        "APIKEY",
        "card",
        "card_number",
        "cardNumber",
        "creditCard",
        "cards",
        "PAN",
        "pan",
        "cvv",
        "CVC",
        "ssn",
        "customer_ssn",
        "iban",
        "payee-IBAN",
    ],
)
def test_secret_keys_are_recognised(key: str) -> None:
    assert Masker().sensitive_key(key)


@pytest.mark.parametrize(
    "key", ["company", "expand", "span", "panel", "discard", "orderId", "amount", "email", "", "x"]
)
def test_ordinary_keys_are_not(key: str) -> None:
    assert not Masker().sensitive_key(key)


def test_json_values_under_secret_keys_are_masked_at_any_depth_keys_kept() -> None:
    body = json.dumps(
        {
            "orderId": "o-1",
            "customer": {"email": "a@example.com", "password": "hunter2"},
            "payment": {"card": {"number": VISA, "expiry": "12/30"}, "cvv": 123},
            "items": [{"sku": "x", "apiKey": "k-1"}],
            "flag": True,
        }
    )
    masked = json.loads(Masker().mask_text(body))
    assert masked["orderId"] == "o-1"
    assert masked["customer"] == {"email": "a@example.com", "password": MASK}
    assert masked["payment"]["card"] == {"number": MASK + "1111", "expiry": MASK}
    assert masked["payment"]["cvv"] == MASK
    assert masked["items"] == [{"sku": "x", "apiKey": MASK}]
    assert masked["flag"] is True
    assert "hunter2" not in Masker().mask_text(body)


@pytest.mark.parametrize("number", [VISA, AMEX_SPACED, MASTERCARD_DASHED, "4012888888881881"])
def test_card_numbers_anywhere_keep_their_last_four(number: str) -> None:
    digits = number.replace(" ", "").replace("-", "")
    text = f"refund to {number} please"
    assert Masker().mask_text(text) == f"refund to {MASK}{digits[-4:]} please"
    nested = json.dumps({"note": f"card {number}", "n": int(digits)})
    masked = json.loads(Masker().mask_text(nested))
    assert masked == {"note": f"card {MASK}{digits[-4:]}", "n": MASK + digits[-4:]}


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111112",  # fails Luhn
        "order 123456789012",  # 12 digits
        "12345678901234567890",  # 20 digits
        "2026-12-05T10:00:00Z",
        "+1 415 555 0100",
    ],
)
def test_other_numbers_stay(text: str) -> None:
    assert Masker().mask_text(text) == text


# UUIDs whose digit runs, read across their dashes, are Luhn-valid 13-19 digit numbers: about
# one random UUID in 640 (one made an event ID unlinkable and the archive list a 500).
@pytest.mark.parametrize(
    "identifier",
    [
        "313874cd-dfbc-423d-b246-548991270564",
        "53033190-7660-45b1-99e1-7b552e94525c",
        "8b1c8329-0483-4963-83ea-7d7ff7db0951",
    ],
)
def test_identifiers_are_not_card_numbers(identifier: str) -> None:
    body = json.dumps({"id": identifier, "detail": {"correlationId": identifier}})
    assert Masker().mask_text(body) == body
    assert Masker().mask_text(f"event {identifier} failed") == f"event {identifier} failed"


def test_a_card_number_beside_an_underscore_or_punctuation_is_still_one() -> None:
    for text in ("card_4111111111111111", "(4111111111111111)", "ref=4111-1111-1111-1111"):
        assert MASK + "1111" in Masker().mask_text(text), text


def test_a_body_with_nothing_to_mask_comes_back_byte_for_byte() -> None:
    body = '{ "orderId" :"o-1",\n  "amount": 12.50 }'
    assert Masker().mask_text(body) == body
    assert Masker().mask_text("not json {") == "not json {"


def test_json_inside_a_string_is_masked_too() -> None:
    inner = json.dumps({"token": "abc", "id": 1})
    body = json.dumps({"Type": "Notification", "Message": inner})
    masked = json.loads(Masker().mask_text(body))
    assert json.loads(masked["Message"]) == {"token": MASK, "id": 1}


def test_free_text_key_value_pairs() -> None:
    masker = Masker()
    assert masker.mask_text("user=bob&password=hunter2&x=1") == f"user=bob&password={MASK}&x=1"
    assert masker.mask_text("Authorization: Bearer-abc") == f"Authorization: {MASK}"
    assert masker.mask_text("<u token='t1' name='n'/>") == f"<u token='{MASK}' name='n'/>"
    assert masker.mask_text("company=acme") == "company=acme"


def test_attributes_are_masked_by_name_and_value() -> None:
    attributes = {
        "Authorization": {"DataType": "String", "StringValue": "Bearer x"},
        "note": {"DataType": "String", "StringValue": f"card {VISA}"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00"},
        "traceparent": {"DataType": "String", "StringValue": "00-abc-01"},
    }
    masked = Masker().mask_attributes(attributes)
    assert masked["Authorization"]["StringValue"] == MASK
    assert masked["note"]["StringValue"] == f"card {MASK}1111"
    assert masked["blob"] == attributes["blob"]
    assert masked["traceparent"] == attributes["traceparent"]
    assert attributes["Authorization"]["StringValue"] == "Bearer x"  # the input is untouched


def test_configured_keys_and_patterns_extend_it(settings) -> None:
    settings.EVENTOPS_MASK_KEYS = ["email", "dob"]
    settings.EVENTOPS_MASK_PATTERNS = [r"ORD-\d{3,4}"]
    body = json.dumps({"email": "a@b.c", "customerDob": "1990", "ref": "see ORD-1234 now"})
    masked = json.loads(masking.mask_text(body))
    assert masked == {"email": MASK, "customerDob": MASK, "ref": f"see {MASK} now"}


def test_masking_off_shows_everything(settings) -> None:
    settings.EVENTOPS_MASKING = False
    body = json.dumps({"password": "p"})
    assert masking.mask_text(body) == body
    assert masking.mask_attributes({"token": "t"}) == {"token": "t"}


def test_hostile_bodies_do_not_break_it() -> None:
    deep = "[" * 5000 + "]" * 5000
    assert Masker().mask_text(deep) == deep
    assert Masker().mask_text("\x00\ud800 password=x") == f"\x00\ud800 password={MASK}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (r"ORD-\d{3,4},CUST-\d+", [r"ORD-\d{3,4}", r"CUST-\d+"]),
        ('["a,b", "c"]', ["a,b", "c"]),
        (r"x\,y", [r"x\,y"]),
        ("", []),
    ],
)
def test_pattern_lists(value: str, expected: list[str]) -> None:
    assert split_patterns(value) == expected


def test_a_bad_pattern_names_itself() -> None:
    with pytest.raises(ValueError, match=r"EVENTOPS_MASK_PATTERNS: '\(' is not"):
        masking.compile_patterns(["("])


def test_luhn() -> None:
    assert luhn_ok(VISA) and not luhn_ok("4111111111111112")


@pytest.mark.django_db
def test_who_sees_masked(viewer, operator, admin, settings) -> None:
    body = json.dumps({"password": "p"})
    hidden = json.dumps({"password": MASK}, ensure_ascii=False)
    assert masking.for_viewer(body, viewer, "default") == hidden
    assert masking.for_viewer(body, operator, "default") == hidden
    assert masking.for_viewer(body, admin, "default") == body
    settings.EVENTOPS_MASKING = False
    assert masking.for_viewer(body, viewer, "default") == body
