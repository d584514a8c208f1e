"""operations/dlq.py: describing untrusted messages, filters, bounded peeks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from operations import dlq
from operations.aws import sqs


def message(
    body: str, attributes: dict[str, str] | None = None, **message_attributes: str
) -> sqs.SqsMessage:
    return sqs.SqsMessage(
        "id-1",
        "handle",
        body,
        attributes or {},
        {k: {"DataType": "String", "StringValue": v} for k, v in message_attributes.items()},
    )


EVENT = json.dumps({"detail-type": "OrderPaid", "detail": {"correlationId": "c-1"}})


def test_correlation_id_and_event_type_come_from_the_envelope() -> None:
    described = dlq.describe(message(EVENT))
    assert (described.correlation_id, described.event_type) == ("c-1", "OrderPaid")


def test_correlation_id_attribute_wins_over_the_body() -> None:
    assert dlq.describe(message(EVENT, correlation_id="attr")).correlation_id == "attr"


def test_lambda_error_attribute_is_the_error() -> None:
    assert dlq.describe(message(EVENT, ErrorMessage="boom")).error == "boom"


def test_error_from_an_on_failure_destination_payload() -> None:
    body = json.dumps({"responsePayload": {"errorMessage": "KeyError: 'x'"}})
    assert dlq.describe(message(body)).error == "KeyError: 'x'"


def test_non_json_body_is_kept_as_text() -> None:
    described = dlq.describe(message("not {json"))
    assert (described.is_json, described.pretty_body, described.event_type) == (
        False,
        "not {json",
        "",
    )


def test_json_that_is_not_an_object_does_not_break() -> None:
    described = dlq.describe(message('[1, "detail"]'))
    assert described.is_json and described.correlation_id == ""


def test_system_attributes_are_parsed() -> None:
    attrs = {
        "SentTimestamp": "1767225600000",
        "ApproximateReceiveCount": "4",
        "AWSTraceHeader": "Root=1-x",
    }
    described = dlq.describe(message(EVENT, attrs))
    assert described.sent_at == datetime(2026, 1, 1, tzinfo=UTC) and described.receive_count == 4
    assert described.system_attributes["AWSTraceHeader"] == "Root=1-x"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (dlq.Filters(), True),
        (dlq.Filters(event_type="OrderPaid"), True),
        (dlq.Filters(event_type="OrderShipped"), False),
        (dlq.Filters(correlation_id="c-1"), True),
        (dlq.Filters(correlation_id="c-2"), False),
        (dlq.Filters(attribute_name="tenant", attribute_value="acme"), True),
        (dlq.Filters(attribute_name="tenant", attribute_value="other"), False),
        (dlq.Filters(contains="OrderPaid"), True),
        (dlq.Filters(contains="nope"), False),
        (dlq.Filters(sent_after=datetime(2025, 12, 31, tzinfo=UTC)), True),
        (dlq.Filters(sent_before=datetime(2025, 12, 31, tzinfo=UTC)), False),
        (dlq.Filters(message_ids=frozenset({"id-1", "other"})), True),
        (dlq.Filters(message_ids=frozenset({"other"})), False),
    ],
)
def test_filters_match(filters: dlq.Filters, expected: bool) -> None:
    described = dlq.describe(message(EVENT, {"SentTimestamp": "1767225600000"}, tenant="acme"))
    assert filters.matches(described) is expected


def test_filters_survive_the_parameters_json() -> None:
    filters = dlq.Filters(
        event_type="OrderPaid",
        sent_after=datetime(2026, 1, 1, tzinfo=UTC),
        message_ids=frozenset({"b", "a"}),
    )
    assert filters.to_dict()["message_ids"] == ["a", "b"]
    assert dlq.Filters.from_dict(json.loads(json.dumps(filters.to_dict()))) == filters


def test_empty_filters_are_empty() -> None:
    assert dlq.Filters().is_empty and not dlq.Filters(contains="x").is_empty
    assert not dlq.Filters(message_ids=frozenset({"m-1"})).is_empty


@pytest.fixture
def queue(aws: None) -> tuple[Any, str]:
    client = boto3.client("sqs", region_name="us-east-1")
    url = client.create_queue(QueueName="q-dlq")["QueueUrl"]
    for i in range(35):
        client.send_message(QueueUrl=url, MessageBody=json.dumps({"n": i}))
    return client, url


def test_peek_is_bounded_by_the_number_of_receives(queue: tuple[Any, str], settings: Any) -> None:
    settings.EVENTOPS_PEEK_MAX_RECEIVES = 2
    peeked = dlq.peek(queue[1], limit=50)
    assert (peeked.receives, len(peeked.messages)) == (2, 20)


def test_peek_hides_what_it_received(queue: tuple[Any, str]) -> None:
    client, url = queue
    dlq.peek(url, limit=10, visibility_seconds=300)
    attrs = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "10"


def test_find_messages_releases_the_others(queue: tuple[Any, str]) -> None:
    client, url = queue
    wanted = dlq.peek(url, limit=1, visibility_seconds=0).messages[0].message_id
    found = dlq.find_messages(url, {wanted})
    attrs = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert list(found) == [wanted] and attrs["ApproximateNumberOfMessagesNotVisible"] == "1"


def nested(depth: int) -> list[Any]:
    """A list nested ``depth`` deep, built without recursion."""
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def test_json_too_deep_to_pretty_print_is_shown_as_received() -> None:
    raw = "[" * 5000 + "]" * 5000
    shown = dlq.DlqMessage(raw=message(raw), body_json=nested(5000), is_json=True)
    assert shown.pretty_body == raw and shown.shown_body == raw
    assert shown.pretty_failed


def test_json_too_deep_to_parse_is_text() -> None:
    described = dlq.describe(message("[" * 100_000))
    assert not described.is_json and described.pretty_body == "[" * 100_000


def test_pretty_printed_json_is_not_marked_failed() -> None:
    described = dlq.describe(message(EVENT))
    assert not described.pretty_failed and '"detail-type": "OrderPaid"' in described.pretty_body


def test_lone_surrogate_escapes_stay_printable() -> None:
    body = '{"detail-type": "\\ud800", "detail": {"correlationId": "c\\udfff"}}'
    described = dlq.describe(message(body))
    assert (described.event_type, described.correlation_id) == ("\\ud800", "c\\udfff")
    assert '"detail-type": "\\ud800"' in described.pretty_body
    described.pretty_body.encode("utf-8")  # no UnicodeEncodeError


def test_lone_surrogate_in_an_error_payload_stays_printable() -> None:
    described = dlq.describe(message('{"responsePayload": {"errorMessage": "x\\ud83d"}}'))
    assert described.error == "x\\ud83d"


def preview_of(examined: int, matching: int, depth: int, id_limit: int | None = None):
    found = [dlq.describe(message(EVENT)) for _ in range(matching)]
    return dlq.Preview(examined, found, [], [], depth, id_limit=id_limit)


@pytest.mark.parametrize(
    "examined, matching, depth, id_limit, expected",
    [
        (100, 10, 1000, None, 100),  # scaled from the sample
        (100, 0, 1000, None, 0),  # none in the sample: about none
        (100, 1, 120, None, 1),  # never fewer than were found
        (40, 10, 40, None, None),  # the whole queue was examined: a count, no estimate
        (0, 0, 50, None, None),  # nothing examined: nothing to scale
        (100, 2, 1000, 5, 5),  # named messages: at most that many
        (100, 3, 1000, 3, None),  # every named message was found
    ],
)
def test_preview_estimate_for_the_whole_queue(
    examined: int, matching: int, depth: int, id_limit: int | None, expected: int | None
) -> None:
    assert preview_of(examined, matching, depth, id_limit).estimate == expected


def test_preview_knows_how_many_messages_were_named(queue: tuple[Any, str], settings: Any) -> None:
    settings.EVENTOPS_PEEK_MAX_RECEIVES = 1
    found = dlq.preview(queue[1], dlq.Filters(message_ids=frozenset({"a", "b"})))
    assert (found.examined, found.queue_depth, found.id_limit) == (10, 35, 2)
    assert found.estimate == 0


def test_last_peek_keeps_the_loops_for_the_queue_and_each_operation(cache_cleared: None) -> None:
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    dlq.remember_peek("https://sqs/q/a-dlq", 7, {"c-2": [5, 4], "c-1": [4]}, at=at)
    record = dlq.last_peek("https://sqs/q/a-dlq")
    assert record == dlq.PeekRecord(at, 7, [("c-1", [4]), ("c-2", [4, 5])])
    assert dlq.loops_of_operation(4) == ["c-1", "c-2"] and dlq.loops_of_operation(5) == ["c-2"]


def test_a_later_peek_replaces_the_queue_record_but_adds_to_operations(
    cache_cleared: None,
) -> None:
    dlq.remember_peek("https://sqs/q/a-dlq", 7, {"c-1": [4]})
    dlq.remember_peek("https://sqs/q/a-dlq", 3, {"c-9": [4]})
    record = dlq.last_peek("https://sqs/q/a-dlq")
    assert record is not None and (record.examined, record.loops) == (3, [("c-9", [4])])
    assert dlq.loops_of_operation(4) == ["c-1", "c-9"]


def test_no_peek_no_record(cache_cleared: None) -> None:
    assert dlq.last_peek("https://sqs/q/other-dlq") is None


@pytest.fixture
def cache_cleared() -> Any:
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
