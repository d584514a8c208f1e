"""Orders table (outbox stream) and idempotency table (Powertools schema)."""

from __future__ import annotations

from infra.topology import TOPOLOGY


def _table(cfn, name):
    (props,) = [
        t["Properties"]
        for t in cfn.of_type("AWS::DynamoDB::Table").values()
        if t["Properties"]["TableName"] == name
    ]
    return props


def _correlation_index(props):
    (index,) = props["GlobalSecondaryIndexes"]
    return index["IndexName"], index["KeySchema"], index["Projection"]


def test_orders_table_streams_new_images_with_ttl(cfn):
    props = _table(cfn, TOPOLOGY.orders_table)
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}


def test_orders_table_indexes_correlation_id(cfn):
    props = _table(cfn, TOPOLOGY.orders_table)
    assert _correlation_index(props) == (
        "by-correlation-id",
        [{"AttributeName": "correlationId", "KeyType": "HASH"}],
        {"ProjectionType": "ALL"},
    )
    assert props["BillingMode"] == "PAY_PER_REQUEST"


def test_idempotency_table_has_the_powertools_schema(cfn):
    props = _table(cfn, TOPOLOGY.idempotency_table)
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


def test_idempotency_table_indexes_correlation_id(cfn):
    name, keys, _ = _correlation_index(_table(cfn, TOPOLOGY.idempotency_table))
    assert name == "by-correlation-id"
    assert keys == [{"AttributeName": "correlation_id", "KeyType": "HASH"}]
