"""A small event system in moto, and personas, for the archive / replay / schema tests.

Import the fixtures into a test module: ``from tests.operations.archive_world import ...``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

BUS = "shop-bus"
ARCHIVE = "shop-archive"
LOG_GROUP = "/aws/events/shop-bus"
SOURCE = "eventops.orders"


@dataclass
class World:
    bus_arn: str
    archive_arn: str
    queues: dict[str, str]  # rule name -> queue URL
    rule_arns: dict[str, str]

    def put(self, detail_type: str, detail: dict[str, Any], **extra: Any) -> str:
        entry = {
            "Source": SOURCE,
            "DetailType": detail_type,
            "Detail": json.dumps(detail),
            "EventBusName": BUS,
            **extra,
        }
        response = boto3.client("events", region_name="us-east-1").put_events(Entries=[entry])
        assert response["FailedEntryCount"] == 0
        return str(response["Entries"][0]["EventId"])

    def drain(self, rule: str) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs", region_name="us-east-1")
        bodies: list[dict[str, Any]] = []
        while True:
            got = sqs.receive_message(QueueUrl=self.queues[rule], MaxNumberOfMessages=10)
            messages = got.get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                sqs.delete_message(
                    QueueUrl=self.queues[rule], ReceiptHandle=message["ReceiptHandle"]
                )


def detail(correlation_id: str, order: str = "o-1", **extra: Any) -> dict[str, Any]:
    return {
        "correlationId": correlation_id,
        "orderId": order,
        "occurredAt": datetime.now(tz=UTC).isoformat(),
        **extra,
    }


def build_world() -> World:
    """Bus, archive, event-log rule, and two consumer rules with SQS targets."""
    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    logs = boto3.client("logs", region_name="us-east-1")
    bus_arn = events.create_event_bus(Name=BUS)["EventBusArn"]
    archive_arn = events.create_archive(
        ArchiveName=ARCHIVE, EventSourceArn=bus_arn, RetentionDays=90
    )["ArchiveArn"]
    logs.create_log_group(logGroupName=LOG_GROUP)
    log_arn = f"arn:aws:logs:us-east-1:123456789012:log-group:{LOG_GROUP}"
    catch_all = json.dumps({"source": [{"prefix": ""}]})
    events.put_rule(Name="event-log", EventBusName=BUS, EventPattern=catch_all)
    events.put_targets(Rule="event-log", EventBusName=BUS, Targets=[{"Id": "log", "Arn": log_arn}])
    patterns = {
        "billing-rule": {"source": [SOURCE], "detail-type": ["OrderPaid", "OrderCancelled"]},
        "notify-rule": {"source": [SOURCE]},
    }
    queues, rule_arns = {}, {}
    for rule, pattern in patterns.items():
        url = sqs.create_queue(QueueName=rule.replace("-rule", ""))["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        arn = attrs["Attributes"]["QueueArn"]
        rule_arns[rule] = events.put_rule(
            Name=rule, EventBusName=BUS, EventPattern=json.dumps(pattern)
        )["RuleArn"]
        events.put_targets(Rule=rule, EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])
        queues[rule] = url
    return World(bus_arn=bus_arn, archive_arn=archive_arn, queues=queues, rule_arns=rule_arns)


IDEMPOTENCY_TABLE = "shop-idempotency"


def create_idempotency_table() -> None:
    """A table with Powertools' schema and the by-correlation-id index."""
    boto3.client("dynamodb", region_name="us-east-1").create_table(
        TableName=IDEMPOTENCY_TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "correlation_id", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-correlation-id",
                "KeySchema": [{"AttributeName": "correlation_id", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def put_record(
    *, key: str, correlation_id: str, consumer: str, event_type: str, status: str, expiration: int
) -> None:
    boto3.client("dynamodb", region_name="us-east-1").put_item(
        TableName=IDEMPOTENCY_TABLE,
        Item={
            "id": {"S": key},
            "status": {"S": status},
            "expiration": {"N": str(expiration)},
            "correlation_id": {"S": correlation_id},
            "consumer": {"S": consumer},
            "event_type": {"S": event_type},
        },
    )


@pytest.fixture
def world(aws: None) -> World:
    return build_world()


def _persona(username: str, group: str | None) -> Client:
    # No password: force_login needs none, and hashing one costs seconds.
    user = User.objects.create_user(username=username)
    if group:
        user.groups.add(Group.objects.get(name=group))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def operator_client(db: None) -> Client:
    return _persona("olga", "operator")


@pytest.fixture
def viewer_client(db: None) -> Client:
    return _persona("victor", "viewer")
