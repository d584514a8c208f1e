"""The outbox publisher: stream INSERTs of outbox items -> PutEvents, at least once."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from botocore.stub import ANY, Stubber

from infra.functions.config import new_client
from infra.functions.orders import create_order
from infra.functions.publisher import build_publisher
from infra.topology import TOPOLOGY

LINES = [{"sku": "SKU-1", "quantity": 1, "unitPrice": "10.00"}]
BUS = TOPOLOGY.bus_name


@pytest.fixture
def bus_queue(tables) -> str:
    """The bus with one catch-all rule targeting an SQS queue; returns the queue URL."""
    events = new_client("events")
    sqs = new_client("sqs")
    events.create_event_bus(Name=BUS)
    url = sqs.create_queue(QueueName="sink")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name="all-orders",
        EventBusName=BUS,
        EventPattern=json.dumps({"source": ["eventops.orders"]}),
    )
    events.put_targets(Rule="all-orders", EventBusName=BUS, Targets=[{"Id": "sink", "Arn": arn}])
    return url


def _drain(url: str) -> list[dict]:
    sqs = new_client("sqs")
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        bodies.extend(json.loads(m["Body"]) for m in messages)
        for m in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


def _orders(tables, count: int) -> list:
    return [
        create_order(tables.dynamodb, tables.orders, customer_id=f"c{i}", lines=LINES)
        for i in range(count)
    ]


def _outbox_sequence_numbers(records: list[dict]) -> list[str]:
    return [
        r["dynamodb"]["SequenceNumber"]
        for r in records
        if r["dynamodb"]["Keys"]["pk"]["S"].startswith("OUTBOX#")
    ]


def _stubbed_events(response: dict, expected: dict | None = None):
    events = new_client("events")
    stubber = Stubber(events)
    stubber.add_response("put_events", response, expected or {"Entries": ANY})
    stubber.activate()
    return events, stubber


def test_published_event_reaches_the_rule_target_with_its_correlation_id(tables, stream, bus_queue):
    (order,) = _orders(tables, 1)

    result = build_publisher(BUS, tables.orders)({"Records": stream.read()}, None)

    (event,) = _drain(bus_queue)
    assert result == {"batchItemFailures": []}
    assert (event["detail-type"], event["source"], event["detail"]["correlationId"]) == (
        "OrderCreated",
        "eventops.orders",
        order.correlation_id,
    )


def test_published_outbox_item_is_marked_published(tables, stream, bus_queue):
    _orders(tables, 1)

    build_publisher(BUS, tables.orders)({"Records": stream.read()}, None)

    (outbox,) = tables.outbox()
    assert outbox["status"]["S"] == "PUBLISHED"
    assert "publishedAt" in outbox


def test_failed_publish_is_not_marked_done_and_is_reported_for_retry(tables, stream):
    _orders(tables, 1)
    records = stream.read()
    events, stubber = _stubbed_events(
        {
            "FailedEntryCount": 1,
            "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}],
        }
    )

    result = build_publisher(BUS, tables.orders, events_client=events)({"Records": records}, None)

    (outbox,) = tables.outbox()
    (sequence_number,) = _outbox_sequence_numbers(records)
    assert result == {"batchItemFailures": [{"itemIdentifier": sequence_number}]}
    assert outbox["status"]["S"] == "PENDING"


def test_only_the_failed_entries_of_a_batch_are_reported(tables, stream):
    _orders(tables, 2)
    records = stream.read()
    events, _ = _stubbed_events(
        {
            "FailedEntryCount": 1,
            "Entries": [
                {"EventId": "e-1"},
                {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"},
            ],
        }
    )

    result = build_publisher(BUS, tables.orders, events_client=events)({"Records": records}, None)

    statuses = sorted(item["status"]["S"] for item in tables.outbox())
    assert result["batchItemFailures"] == [{"itemIdentifier": _outbox_sequence_numbers(records)[1]}]
    assert statuses == ["PENDING", "PUBLISHED"]


def test_retried_stream_batch_does_not_publish_an_event_twice(tables, stream, bus_queue):
    _orders(tables, 1)
    records = stream.read()
    publisher = build_publisher(BUS, tables.orders)

    publisher({"Records": records}, None)
    second = publisher({"Records": records}, None)

    assert second == {"batchItemFailures": []}
    assert len(_drain(bus_queue)) == 1


def test_records_other_than_outbox_inserts_are_not_published(tables, stream, bus_queue):
    _orders(tables, 1)
    first = stream.read()
    build_publisher(BUS, tables.orders)({"Records": first}, None)
    # The business item's INSERT and the outbox item's PUBLISHED update (a MODIFY).
    others = [
        r
        for r in first + stream.read()
        if r["dynamodb"]["SequenceNumber"] not in _outbox_sequence_numbers(first)
    ]
    events = new_client("events")
    calls: list[str] = []
    events.meta.events.register("before-call.events.*", lambda model, **_: calls.append(model.name))

    result = build_publisher(BUS, tables.orders, events_client=events)({"Records": others}, None)

    assert sorted(r["eventName"] for r in others) == ["INSERT", "MODIFY"]
    assert result == {"batchItemFailures": []} and calls == []


def test_put_events_calls_carry_at_most_ten_entries(tables, stream, bus_queue):
    _orders(tables, 12)
    events = new_client("events")
    sizes: list[int] = []
    events.meta.events.register(
        "provide-client-params.events.PutEvents",
        lambda params, **_: sizes.append(len(params["Entries"])),
    )

    build_publisher(BUS, tables.orders, events_client=events)({"Records": stream.read()}, None)

    assert sizes == [10, 2]
    assert Counter(i["status"]["S"] for i in tables.outbox()) == Counter({"PUBLISHED": 12})


def test_lambda_trace_header_is_passed_to_put_events(tables, stream, monkeypatch):
    _orders(tables, 1)
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    monkeypatch.setenv("_X_AMZN_TRACE_ID", header)
    events, stubber = _stubbed_events(
        {"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]},
        {
            "Entries": [
                {
                    "Source": "eventops.orders",
                    "DetailType": "OrderCreated",
                    "Detail": ANY,
                    "EventBusName": BUS,
                    "TraceHeader": header,
                }
            ]
        },
    )

    result = build_publisher(BUS, tables.orders, events_client=events)(
        {"Records": stream.read()}, None
    )

    stubber.assert_no_pending_responses()
    assert result == {"batchItemFailures": []}
