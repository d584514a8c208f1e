"""One order through the chain: outbox, stream, publisher, bus, queues, consumers."""

from __future__ import annotations

import json

import pytest

from infra.functions.config import new_client
from infra.functions.consumer import build_consumer_handler
from infra.functions.orders import create_order, pay_order
from infra.functions.publisher import build_publisher
from infra.topology import TOPOLOGY
from tests.infra.functions.fn_helpers import sqs_event_from_messages


@pytest.fixture
def topology_queues(tables) -> dict[str, tuple[str, str]]:
    """The bus and, per consumer, its rule and queue; returns {consumer: (URL, ARN)}."""
    events = new_client("events")
    sqs = new_client("sqs")
    events.create_event_bus(Name=TOPOLOGY.bus_name)
    queues = {}
    for consumer in TOPOLOGY.consumers:
        url = sqs.create_queue(QueueName=TOPOLOGY.queue_name(consumer))["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        rule = TOPOLOGY.rule_name(consumer)
        events.put_rule(
            Name=rule,
            EventBusName=TOPOLOGY.bus_name,
            EventPattern=json.dumps(consumer.event_pattern),
        )
        events.put_targets(
            Rule=rule, EventBusName=TOPOLOGY.bus_name, Targets=[{"Id": "queue", "Arn": arn}]
        )
        queues[consumer.name] = (url, arn)
    return queues


def _deliver_all(queues, handlers) -> list[dict]:
    """Feed every queued message to its consumer; returns the non-empty failure lists."""
    sqs = new_client("sqs")
    failures = []
    for name, (url, arn) in queues.items():
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
            result = handlers[name](sqs_event_from_messages(messages, arn), None)
            if result["batchItemFailures"]:
                failures.append(result)
            for m in messages:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return failures


def test_paid_order_is_charged_shipped_and_counted(tables, stream, topology_queues):
    handlers = {
        c.name: build_consumer_handler(c.name, idempotency_table=tables.idempotency)
        for c in TOPOLOGY.consumers
    }
    publisher = build_publisher(TOPOLOGY.bus_name, tables.orders)
    order = create_order(
        tables.dynamodb,
        tables.orders,
        customer_id="c-1",
        lines=[{"sku": "S", "quantity": 1, "unitPrice": "30.00"}],
    )
    pay_order(
        tables.dynamodb,
        tables.orders,
        order_id=order.order_id,
        amount="30.00",
        currency="EUR",
        correlation_id=order.correlation_id,
    )

    failures = []
    for _ in range(2):  # the second round carries OrderShipped, written by shipping
        publisher({"Records": stream.read()}, None)
        failures += _deliver_all(topology_queues, handlers)

    records = tables.items(tables.idempotency)
    assert failures == []
    assert sorted((r["consumer"]["S"], r["event_type"]["S"]) for r in records) == [
        ("analytics", "OrderCreated"),
        ("analytics", "OrderPaid"),
        ("analytics", "OrderShipped"),
        ("billing", "OrderPaid"),
        ("notifications", "OrderCreated"),
        ("notifications", "OrderPaid"),
        ("notifications", "OrderShipped"),
        ("shipping", "OrderPaid"),
    ]
