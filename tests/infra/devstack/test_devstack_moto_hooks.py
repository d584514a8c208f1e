"""The devstack's adjustments of moto: safe transactions, full event envelope."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from infra.devstack import moto_hooks
from infra.devstack.clients import Clients


@pytest.fixture
def serialized_writes(moto_clients: Clients) -> Iterator[Clients]:
    undo = moto_hooks.serialize_dynamodb_writes()
    yield moto_clients
    undo()


def stream_keys(clients: Clients, iterator: str) -> tuple[list[str], str]:
    response = clients("dynamodbstreams").get_records(ShardIterator=iterator)
    keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in response["Records"]]
    return keys, response["NextShardIterator"]


def test_failed_transaction_leaves_the_stream_readable_without_its_writes(
    serialized_writes: Clients,
) -> None:
    clients = serialized_writes
    ddb = clients("dynamodb")
    stream_arn = ddb.create_table(
        TableName="t",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )["TableDescription"]["LatestStreamArn"]
    ddb.put_item(TableName="t", Item={"pk": {"S": "a"}})
    streams = clients("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    first, iterator = stream_keys(clients, iterator)
    with pytest.raises(ClientError):
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "rolled-back"}}}},
                {
                    "Put": {
                        "TableName": "t",
                        "Item": {"pk": {"S": "a"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    ddb.put_item(TableName="t", Item={"pk": {"S": "c"}})

    later, _ = stream_keys(clients, iterator)

    assert first == ["a"]
    assert later == ["c"]


def test_rule_targets_receive_the_account_field(moto_clients: Clients) -> None:
    undo = moto_hooks.add_account_to_event_envelope()
    try:
        url = moto_clients("sqs").create_queue(QueueName="q")["QueueUrl"]
        events = moto_clients("events")
        events.put_rule(Name="all", EventPattern=json.dumps({"source": ["s"]}))
        events.put_targets(
            Rule="all", Targets=[{"Id": "q", "Arn": "arn:aws:sqs:us-east-1:123456789012:q"}]
        )
        events.put_events(Entries=[{"Source": "s", "DetailType": "T", "Detail": "{}"}])
        body = json.loads(moto_clients("sqs").receive_message(QueueUrl=url)["Messages"][0]["Body"])
    finally:
        undo()

    assert body["account"] == "123456789012"
    assert body["detail-type"] == "T" and body["detail"] == {}
