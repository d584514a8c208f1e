"""The EventSchemas API served by the emulator, through boto3's ``schemas`` client."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

SCHEMA = {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object"}


def _create(client: Any, registry: str, schema: str = "eventops.orders@OrderPaid") -> Any:
    schemas = client("schemas")
    schemas.create_registry(RegistryName=registry, Description="eventops event schemas")
    schemas.create_schema(
        RegistryName=registry,
        SchemaName=schema,
        Type="JSONSchemaDraft4",
        Content=json.dumps(SCHEMA),
    )
    return schemas


def test_registry_round_trip(client, name):
    schemas = _create(client, name)
    described = schemas.describe_registry(RegistryName=name)
    listed = schemas.list_registries(RegistryNamePrefix=name)["Registries"]
    assert described["RegistryArn"] == f"arn:aws:schemas:us-east-1:123456789012:registry/{name}"
    assert [r["RegistryName"] for r in listed] == [name]


def test_update_adds_a_version_and_old_versions_stay_readable(client, name):
    schemas = _create(client, name)
    changed = json.dumps({**SCHEMA, "required": ["orderId"]})
    schemas.update_schema(
        RegistryName=name, SchemaName="eventops.orders@OrderPaid", Content=changed
    )
    latest = schemas.describe_schema(RegistryName=name, SchemaName="eventops.orders@OrderPaid")
    first = schemas.describe_schema(
        RegistryName=name, SchemaName="eventops.orders@OrderPaid", SchemaVersion="1"
    )
    versions = schemas.list_schema_versions(
        RegistryName=name, SchemaName="eventops.orders@OrderPaid"
    )
    assert (latest["SchemaVersion"], latest["Content"]) == ("2", changed)
    assert json.loads(first["Content"]) == SCHEMA
    assert [v["SchemaVersion"] for v in versions["SchemaVersions"]] == ["1", "2"]


def test_update_with_the_same_content_keeps_the_version(client, name):
    schemas = _create(client, name)
    schemas.update_schema(
        RegistryName=name, SchemaName="eventops.orders@OrderPaid", Content=json.dumps(SCHEMA)
    )
    listed = schemas.list_schemas(RegistryName=name)["Schemas"]
    assert [(s["SchemaName"], s["VersionCount"]) for s in listed] == [
        ("eventops.orders@OrderPaid", 1)
    ]


def test_missing_registry_or_schema_is_not_found(client, name):
    schemas = _create(client, name)
    with pytest.raises(ClientError) as registry:
        schemas.describe_registry(RegistryName=f"{name}-nope")
    with pytest.raises(ClientError) as schema:
        schemas.describe_schema(RegistryName=name, SchemaName="nope")
    assert registry.value.response["Error"]["Code"] == "NotFoundException"
    assert schema.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_duplicate_registry_is_a_conflict(client, name):
    schemas = _create(client, name)
    with pytest.raises(ClientError) as caught:
        schemas.create_registry(RegistryName=name)
    assert caught.value.response["Error"]["Code"] == "ConflictException"


def test_delete_schema_and_search(client, name):
    schemas = _create(client, name)
    schemas.create_schema(
        RegistryName=name,
        SchemaName="eventops.orders@OrderShipped",
        Type="JSONSchemaDraft4",
        Content=json.dumps(SCHEMA),
    )
    schemas.delete_schema(RegistryName=name, SchemaName="eventops.orders@OrderPaid")
    found = schemas.search_schemas(RegistryName=name, Keywords="order")["Schemas"]
    assert [s["SchemaName"] for s in found] == ["eventops.orders@OrderShipped"]


def test_discoverer_on_a_bus(client, name):
    schemas = client("schemas")
    bus_arn = f"arn:aws:events:us-east-1:123456789012:event-bus/{name}"
    created = schemas.create_discoverer(SourceArn=bus_arn, Description="bus discovery")
    listed = schemas.list_discoverers(SourceArnPrefix=bus_arn)["Discoverers"]
    assert (created["State"], created["DiscovererId"]) == ("STARTED", f"events-event-bus-{name}")
    assert [d["SourceArn"] for d in listed] == [bus_arn]


def test_invalid_content_is_a_bad_request(client, name):
    schemas = client("schemas")
    schemas.create_registry(RegistryName=name)
    with pytest.raises(ClientError) as caught:
        schemas.create_schema(
            RegistryName=name, SchemaName="x", Type="JSONSchemaDraft4", Content="{"
        )
    assert caught.value.response["Error"]["Code"] == "BadRequestException"


def test_schemas_also_work_in_process_under_mock_aws(stack, name):
    with mock_aws():
        schemas = boto3.client("schemas", region_name="us-east-1")
        schemas.create_registry(RegistryName=name)
        listed = schemas.list_registries()["Registries"]
    assert [r["RegistryName"] for r in listed] == [name]
