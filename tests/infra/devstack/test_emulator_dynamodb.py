"""The emulator's DynamoDB: item-level transaction rollback, idempotency tokens, TTL, streams."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.devstack.clients import Clients
from infra.devstack.emulator import dynamodb
from infra.devstack.emulator._patches import Patcher


def utc_now() -> datetime:
    """Naive UTC, like moto's clock (stream records carry moto's real creation time)."""
    return datetime.now(UTC).replace(tzinfo=None)


@pytest.fixture
def ddb(moto_clients: Clients) -> Iterator[Any]:
    patcher = Patcher()
    dynamodb.install(patcher)
    yield moto_clients("dynamodb")
    patcher.undo_all()


def create_table(ddb: Any, name: str = "t", *, ttl: bool = False) -> str:
    stream_arn = ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )["TableDescription"]["LatestStreamArn"]
    if ttl:
        ddb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"}
        )
    return str(stream_arn)


def moto_table(name: str = "t") -> Any:
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends["123456789012"]["us-east-1"].tables[name]


def stream_keys(clients: Clients, iterator: str) -> tuple[list[str], str]:
    response = clients("dynamodbstreams").get_records(ShardIterator=iterator)
    keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in response["Records"]]
    return keys, response["NextShardIterator"]


def first_iterator(clients: Clients, stream_arn: str, kind: str = "TRIM_HORIZON") -> str:
    streams = clients("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
    return str(
        streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType=kind
        )["ShardIterator"]
    )


def shard_iterators() -> dict[str, Any]:
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    return dynamodbstreams_backends["123456789012"]["us-east-1"].shard_iterators  # type: ignore[no-any-return]


def put_keys(ddb: Any, count: int) -> None:
    """Items k0, k1, ... in table t."""
    for n in range(count):
        ddb.put_item(TableName="t", Item={"pk": {"S": f"k{n}"}})


def age_iterators() -> None:
    """As if every iterator had been handed out more than a minute ago."""
    for handed_out in shard_iterators().values():
        handed_out.__dict__[dynamodb.CREATED_ATTR] -= dynamodb.READER_WINDOW_S


def failing_transaction(ddb: Any) -> None:
    """Writes "new" and changes "a", then fails its condition on "b"."""
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "new"}}}},
            {
                "Update": {
                    "TableName": "t",
                    "Key": {"pk": {"S": "a"}},
                    "UpdateExpression": "SET v = :v",
                    "ExpressionAttributeValues": {":v": {"S": "changed"}},
                }
            },
            {
                "Put": {
                    "TableName": "t",
                    "Item": {"pk": {"S": "b"}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
    )


def test_failed_transaction_puts_back_the_items_it_changed_in_the_same_table(ddb: Any) -> None:
    create_table(ddb)
    ddb.put_item(TableName="t", Item={"pk": {"S": "a"}, "v": {"S": "before"}})
    ddb.put_item(TableName="t", Item={"pk": {"S": "b"}})
    table = moto_table()

    with pytest.raises(ClientError, match="TransactionCanceled"):
        failing_transaction(ddb)

    items = {i["pk"]["S"]: i for i in ddb.scan(TableName="t")["Items"]}
    assert set(items) == {"a", "b"} and items["a"]["v"]["S"] == "before"
    # moto's own rollback swaps in a deep copy taken before the transaction.
    assert moto_table() is table


def test_failed_transaction_leaves_the_stream_readable_without_its_writes(
    ddb: Any, moto_clients: Clients
) -> None:
    stream_arn = create_table(ddb)
    ddb.put_item(TableName="t", Item={"pk": {"S": "a"}})
    ddb.put_item(TableName="t", Item={"pk": {"S": "b"}})
    first, iterator = stream_keys(moto_clients, first_iterator(moto_clients, stream_arn))

    with pytest.raises(ClientError):
        failing_transaction(ddb)
    ddb.put_item(TableName="t", Item={"pk": {"S": "c"}})
    later, _ = stream_keys(moto_clients, iterator)

    assert first == ["a", "b"]
    assert later == ["c"]


def test_a_retried_transaction_with_its_token_succeeds_without_writing_twice(ddb: Any) -> None:
    create_table(ddb)
    create = {
        "TransactItems": [
            {
                "Put": {
                    "TableName": "t",
                    "Item": {"pk": {"S": "order"}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ],
        "ClientRequestToken": "retry-of-a-timed-out-call",
    }
    ddb.transact_write_items(**create)

    ddb.transact_write_items(**create)  # what botocore sends again after a read timeout

    assert ddb.scan(TableName="t")["Count"] == 1
    with pytest.raises(ClientError, match="TransactionCanceled"):
        # A new call (botocore gives it a new token) runs again, and fails its condition.
        ddb.transact_write_items(TransactItems=create["TransactItems"])


def test_a_token_reused_for_other_items_is_refused(ddb: Any) -> None:
    create_table(ddb)
    ddb.transact_write_items(
        TransactItems=[{"Put": {"TableName": "t", "Item": {"pk": {"S": "x"}}}}],
        ClientRequestToken="tok",
    )

    with pytest.raises(ClientError, match="IdempotentParameterMismatch"):
        ddb.transact_write_items(
            TransactItems=[{"Put": {"TableName": "t", "Item": {"pk": {"S": "y"}}}}],
            ClientRequestToken="tok",
        )


def test_ttl_deletes_expired_items_of_tables_with_ttl_only(ddb: Any, moto_clients: Clients) -> None:
    stream_arn = create_table(ddb, ttl=True)
    create_table(ddb, "no-ttl")
    now = utc_now()
    past, future = int((now - timedelta(minutes=1) - datetime(1970, 1, 1)).total_seconds()), 2**40
    for table in ("t", "no-ttl"):
        ddb.put_item(TableName=table, Item={"pk": {"S": "old"}, "ttl": {"N": str(past)}})
        ddb.put_item(TableName=table, Item={"pk": {"S": "new"}, "ttl": {"N": str(future)}})
    iterator = first_iterator(moto_clients, stream_arn, "LATEST")

    report = dynamodb.sweep(now, stream_limit=1000)

    assert report["ttl_deleted"] == 1
    assert [i["pk"]["S"] for i in ddb.scan(TableName="t")["Items"]] == ["new"]
    assert ddb.scan(TableName="no-ttl")["Count"] == 2
    records = moto_clients("dynamodbstreams").get_records(ShardIterator=iterator)["Records"]
    assert [r["eventName"] for r in records] == ["REMOVE"]


def test_stream_trimmed_to_its_limit_stays_readable_from_where_a_reader_was(
    ddb: Any, moto_clients: Clients
) -> None:
    stream_arn = create_table(ddb)
    put_keys(ddb, 5)
    read, iterator = stream_keys(moto_clients, first_iterator(moto_clients, stream_arn))
    ddb.put_item(TableName="t", Item={"pk": {"S": "k5"}})
    age_iterators()

    trimmed = dynamodb.trim_stream(moto_table(), utc_now(), limit=2)
    later, _ = stream_keys(moto_clients, iterator)

    assert (read, trimmed) == (["k0", "k1", "k2", "k3", "k4"], 4)
    assert later == ["k5"]
    assert stream_keys(moto_clients, first_iterator(moto_clients, stream_arn))[0] == ["k4", "k5"]


def test_records_a_recent_reader_has_not_read_are_kept_past_the_limit(
    ddb: Any, moto_clients: Clients
) -> None:
    stream_arn = create_table(ddb)
    iterator = first_iterator(moto_clients, stream_arn)
    put_keys(ddb, 4)

    trimmed = dynamodb.trim_stream(moto_table(), utc_now(), limit=1)

    assert trimmed == 0
    assert stream_keys(moto_clients, iterator)[0] == ["k0", "k1", "k2", "k3"]


def test_records_every_reader_has_read_are_kept_only_for_a_short_replay(
    ddb: Any, moto_clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dynamodb, "STREAM_READ_KEEP", 1)
    stream_arn = create_table(ddb)
    put_keys(ddb, 4)
    _, iterator = stream_keys(moto_clients, first_iterator(moto_clients, stream_arn))
    age_iterators()
    stream_keys(moto_clients, iterator)  # the reader polls again, at the end of the stream

    trimmed = dynamodb.trim_stream(moto_table(), utc_now(), limit=100)

    assert trimmed == 3
    assert stream_keys(moto_clients, first_iterator(moto_clients, stream_arn))[0] == ["k3"]


def test_a_reader_gone_quiet_behind_the_trimmed_records_resumes_at_the_oldest_kept(
    ddb: Any, moto_clients: Clients
) -> None:
    stream_arn = create_table(ddb)
    iterator = first_iterator(moto_clients, stream_arn)
    put_keys(ddb, 4)
    age_iterators()

    dynamodb.trim_stream(moto_table(), utc_now(), limit=1)
    keys, _ = stream_keys(moto_clients, iterator)

    assert keys == ["k3"]


def test_shard_iterators_expire_after_fifteen_minutes(ddb: Any, moto_clients: Clients) -> None:
    stream_arn = create_table(ddb)
    first_iterator(moto_clients, stream_arn)
    iterators = shard_iterators()
    created = next(iter(iterators.values())).__dict__[dynamodb.CREATED_ATTR]

    kept = dynamodb.expire_iterators(created + 14 * 60)
    dropped = dynamodb.expire_iterators(created + 15 * 60)

    assert (kept, dropped) == (0, 1)
    assert not iterators
