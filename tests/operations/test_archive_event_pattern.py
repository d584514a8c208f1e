"""The local event-pattern matcher, against EventBridge's documented behaviour and moto.

moto 5.2's TestEventPattern answers with an empty body (no ``Result``), so the
cross-check goes through moto's rule engine instead: each case becomes a rule
with an SQS target, the event is put on the bus, and delivery is the verdict.
The adapter's own TestEventPattern call is checked with Stubber.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from operations import event_pattern
from operations.aws import client as aws_client
from operations.aws import events
from operations.aws.errors import AwsError

SOURCE = "eventops.orders"


def envelope(
    detail: dict[str, Any], detail_type: str = "OrderPaid", **extra: Any
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": detail_type,
        "source": SOURCE,
        "account": "123456789012",
        "time": "2024-05-01T12:00:00Z",
        "region": "us-east-1",
        "resources": extra.pop("resources", []),
        "detail": detail,
    }


# (name, pattern, event detail, expected) as the EventBridge user guide documents them.
CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    ("exact string", {"detail": {"currency": ["EUR"]}}, {"currency": "EUR"}, True),
    ("exact string miss", {"detail": {"currency": ["EUR"]}}, {"currency": "USD"}, False),
    ("string is not a number", {"detail": {"qty": ["5"]}}, {"qty": 5}, False),
    ("number", {"detail": {"qty": [5]}}, {"qty": 5.0}, True),
    ("null", {"detail": {"note": [None]}}, {"note": None}, True),
    ("null does not match missing", {"detail": {"note": [None]}}, {}, False),
    ("empty string", {"detail": {"note": [""]}}, {"note": ""}, True),
    ("array value, any element", {"detail": {"tags": ["b"]}}, {"tags": ["a", "b"]}, True),
    ("prefix", {"detail": {"sku": [{"prefix": "AB-"}]}}, {"sku": "AB-123"}, True),
    ("prefix miss", {"detail": {"sku": [{"prefix": "AB-"}]}}, {"sku": "ab-123"}, False),
    (
        "prefix ignore case",
        {"detail": {"sku": [{"prefix": {"equals-ignore-case": "ab-"}}]}},
        {"sku": "AB-123"},
        True,
    ),
    ("suffix", {"detail": {"file": [{"suffix": ".png"}]}}, {"file": "a.png"}, True),
    ("suffix miss", {"detail": {"file": [{"suffix": ".png"}]}}, {"file": "a.jpg"}, False),
    (
        "equals-ignore-case",
        {"detail": {"carrier": [{"equals-ignore-case": "dhl"}]}},
        {"carrier": "DHL"},
        True,
    ),
    (
        "anything-but value",
        {"detail": {"currency": [{"anything-but": "EUR"}]}},
        {"currency": "USD"},
        True,
    ),
    (
        "anything-but list miss",
        {"detail": {"currency": [{"anything-but": ["EUR", "USD"]}]}},
        {"currency": "USD"},
        False,
    ),
    (
        "anything-but missing field",
        {"detail": {"currency": [{"anything-but": "EUR"}]}},
        {},
        False,
    ),
    (
        "anything-but prefix",
        {"detail": {"sku": [{"anything-but": {"prefix": "AB-"}}]}},
        {"sku": "CD-1"},
        True,
    ),
    (
        "anything-but prefix miss",
        {"detail": {"sku": [{"anything-but": {"prefix": "AB-"}}]}},
        {"sku": "AB-1"},
        False,
    ),
    (
        "numeric range",
        {"detail": {"amount": [{"numeric": [">", 0, "<=", 100]}]}},
        {"amount": 100},
        True,
    ),
    (
        "numeric range miss",
        {"detail": {"amount": [{"numeric": [">", 0, "<=", 100]}]}},
        {"amount": 100.5},
        False,
    ),
    (
        "numeric needs a number",
        {"detail": {"amount": [{"numeric": [">", 0]}]}},
        {"amount": "5"},
        False,
    ),
    ("exists true", {"detail": {"refund": [{"exists": True}]}}, {"refund": 1}, True),
    ("exists true miss", {"detail": {"refund": [{"exists": True}]}}, {}, False),
    ("exists false", {"detail": {"refund": [{"exists": False}]}}, {}, True),
    ("exists false miss", {"detail": {"refund": [{"exists": False}]}}, {"refund": 1}, False),
    ("wildcard", {"detail": {"key": [{"wildcard": "dir/*.png"}]}}, {"key": "dir/a/b.png"}, True),
    ("wildcard miss", {"detail": {"key": [{"wildcard": "dir/*.png"}]}}, {"key": "x/a.png"}, False),
    (
        "several matchers are OR",
        {"detail": {"currency": ["GBP", {"prefix": "E"}]}},
        {"currency": "EUR"},
        True,
    ),
    (
        "fields are AND",
        {"detail-type": ["OrderPaid"], "detail": {"currency": ["USD"]}},
        {"currency": "EUR"},
        False,
    ),
    (
        "$or",
        {"detail": {"$or": [{"currency": ["GBP"]}, {"amount": [{"numeric": [">", 10]}]}]}},
        {"currency": "EUR", "amount": 20},
        True,
    ),
    (
        "$or miss",
        {"detail": {"$or": [{"currency": ["GBP"]}, {"amount": [{"numeric": [">", 10]}]}]}},
        {"currency": "EUR", "amount": 5},
        False,
    ),
    (
        "nested object",
        {"detail": {"customer": {"tier": ["gold"]}}},
        {"customer": {"tier": "gold"}},
        True,
    ),
    ("source and type", {"source": [SOURCE], "detail-type": ["OrderPaid"]}, {}, True),
    ("source miss", {"source": ["other.source"]}, {}, False),
]


@pytest.mark.parametrize(
    ("name", "pattern", "detail", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_matcher_follows_documented_rules(name, pattern, detail, expected):
    assert event_pattern.matches(pattern, envelope(detail)) is expected


@pytest.mark.parametrize(
    "bad",
    ['{"source": "x"}', '{"source": []}', "[1]", "not json", '{"a": [{"numeric": ["~", 1]}]}'],
)
def test_invalid_patterns_are_refused(bad):
    with pytest.raises(event_pattern.InvalidPattern):
        event_pattern.parse_pattern(bad)


def _moto_delivers(cases) -> list[bool]:
    """Each case as a rule on its own bus with an SQS target; True when the event arrives."""
    eb = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    verdicts = []
    for index, (_name, pattern, detail, _expected) in enumerate(cases):
        bus = f"case-{index}"
        eb.create_event_bus(Name=bus)
        url = sqs.create_queue(QueueName=bus)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        eb.put_rule(Name="r", EventBusName=bus, EventPattern=json.dumps(pattern))
        eb.put_targets(Rule="r", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn["QueueArn"]}])
        eb.put_events(
            Entries=[
                {
                    "Source": SOURCE,
                    "DetailType": "OrderPaid",
                    "Detail": json.dumps(detail),
                    "EventBusName": bus,
                }
            ]
        )
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        verdicts.append(bool(got))
    return verdicts


def test_matcher_agrees_with_moto_rule_engine(aws):
    delivered = _moto_delivers(CASES)
    local = [event_pattern.matches(pattern, envelope(detail)) for _n, pattern, detail, _e in CASES]
    disagreements = [c[0] for c, a, b in zip(CASES, delivered, local, strict=True) if a != b]
    assert disagreements == []
    assert any(delivered) and not all(delivered)


def test_test_event_pattern_adapter_sends_the_exact_request(settings):
    settings.AWS_ENDPOINT_URL = ""
    eb = aws_client.client("events")
    pattern = json.dumps({"source": [SOURCE]})
    event = json.dumps(envelope({"currency": "EUR"}))
    with Stubber(eb) as stub:
        stub.add_response(
            "test_event_pattern", {"Result": True}, {"EventPattern": pattern, "Event": event}
        )
        assert events.test_event_pattern(pattern, event) is True
        stub.assert_no_pending_responses()


def test_test_event_pattern_without_result_is_an_error(settings):
    eb = aws_client.client("events")
    with Stubber(eb) as stub:
        stub.add_response("test_event_pattern", {})
        with pytest.raises(AwsError, match="no Result"):
            events.test_event_pattern("{}", "{}")
