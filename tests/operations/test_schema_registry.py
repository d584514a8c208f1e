"""The EventSchemas adapter (Stubber: moto lacks the service) and "Why did this fail?"."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from botocore.stub import Stubber

from infra.schemas import json_schema_text, schema_name
from operations import schema_check
from operations.aws import client as aws_client
from operations.aws import schemas
from operations.aws.errors import AwsError

REGISTRY = "eventops-demo-events"
PAID = schema_name("OrderPaid")


@pytest.fixture
def stub() -> Iterator[Stubber]:
    with Stubber(aws_client.client("schemas")) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def paid_event(**detail_changes: object) -> str:
    detail = {
        "correlationId": "c-1",
        "orderId": "o-1",
        "occurredAt": "2024-05-01T12:00:00Z",
        "paymentId": "p-1",
        "amount": "12.50",
        "currency": "EUR",
    }
    detail.update(detail_changes)
    return json.dumps(
        {"id": "e-1", "source": "eventops.orders", "detail-type": "OrderPaid", "detail": detail}
    )


def expect_lookup(stub: Stubber, content: str, version: str = "") -> None:
    stub.add_response(
        "list_registries",
        {"Registries": [{"RegistryName": REGISTRY, "RegistryArn": "arn:r"}]},
        {"Limit": 100},
    )
    stub.add_response(
        "list_schemas",
        {"Schemas": [{"SchemaName": PAID, "VersionCount": 2}]},
        {"RegistryName": REGISTRY, "Limit": 100},
    )
    request = {"RegistryName": REGISTRY, "SchemaName": PAID}
    if version:
        request["SchemaVersion"] = version
    stub.add_response(
        "describe_schema",
        {
            "SchemaName": PAID,
            "SchemaVersion": version or "2",
            "Type": "JSONSchemaDraft4",
            "Content": content,
        },
        request,
    )


def test_list_schemas_follows_next_token(stub):
    stub.add_response(
        "list_schemas",
        {"Schemas": [{"SchemaName": "a"}], "NextToken": "t1"},
        {"RegistryName": REGISTRY, "Limit": 100},
    )
    stub.add_response(
        "list_schemas",
        {"Schemas": [{"SchemaName": "b", "VersionCount": 3}]},
        {"RegistryName": REGISTRY, "Limit": 100, "NextToken": "t1"},
    )
    found = schemas.list_schemas(REGISTRY)
    assert [(s.name, s.version_count) for s in found] == [("a", 0), ("b", 3)]


def test_schema_versions_are_sorted_numerically(stub):
    stub.add_response(
        "list_schema_versions",
        {"SchemaVersions": [{"SchemaVersion": "10"}, {"SchemaVersion": "9"}]},
        {"RegistryName": REGISTRY, "SchemaName": PAID, "Limit": 100},
    )
    assert [v.version for v in schemas.list_schema_versions(REGISTRY, PAID)] == ["9", "10"]


def test_describe_schema_errors_are_translated(stub):
    stub.add_client_error(
        "describe_schema", service_error_code="NotFoundException", http_status_code=404
    )
    with pytest.raises(AwsError) as caught:
        schemas.describe_schema(REGISTRY, "nope")
    assert caught.value.not_found


def test_valid_event_passes_its_schema(stub):
    expect_lookup(stub, json_schema_text("OrderPaid"))
    result = schema_check.check(paid_event())
    assert result.valid and result.target == "detail"
    assert (result.schema_name, result.version) == (PAID, "2")


def test_invalid_event_lists_each_error_with_its_path(stub):
    expect_lookup(stub, json_schema_text("OrderPaid"), version="1")
    result = schema_check.check(paid_event(currency="JPY", paymentId=""), version="1")
    paths = {issue.path for issue in result.issues}
    assert paths == {"$.currency", "$.paymentId"}
    assert not result.valid


def test_openapi_schemas_validate_the_whole_envelope():
    content = json.dumps(
        {
            "openapi": "3.0.0",
            "components": {
                "schemas": {
                    "AWSEvent": {
                        "type": "object",
                        "required": ["detail"],
                        "properties": {"detail": {"$ref": "#/components/schemas/OrderPaid"}},
                    },
                    "OrderPaid": {"type": "object", "required": ["paymentId"]},
                }
            },
        }
    )
    target, issues, _ = schema_check.validate(content, json.loads('{"detail": {}}'))
    assert target == "event"
    assert [i.message for i in issues] == ["'paymentId' is a required property"]


@pytest.mark.parametrize(
    ("text", "message"),
    [("not json", "not valid JSON"), ("[1, 2]", "JSON object"), ('{"a": 1}', "no source")],
)
def test_unusable_input_gets_a_clear_error(text, message):
    with pytest.raises(schema_check.SchemaCheckError, match=message):
        schema_check.check(text)


def test_event_without_a_registered_schema_is_explained(stub):
    stub.add_response("list_registries", {"Registries": [{"RegistryName": REGISTRY}]})
    stub.add_response("list_schemas", {"Schemas": []})
    with pytest.raises(schema_check.SchemaCheckError, match="No schema named"):
        schema_check.check(paid_event())


@pytest.fixture
def emulated_schemas(aws) -> Iterator[None]:
    """devstack's EventSchemas extension for moto, installed for this test only."""
    from infra.devstack import emulator

    already = emulator.current() is not None and emulator.current().installed
    emulator.install()
    try:
        yield
    finally:
        if not already:
            emulator.uninstall()


def test_why_did_this_fail_works_through_the_devstack_emulator(emulated_schemas):
    registry = aws_client.client("schemas")
    registry.create_registry(RegistryName=REGISTRY)
    registry.create_schema(
        RegistryName=REGISTRY,
        SchemaName=PAID,
        Type="JSONSchemaDraft4",
        Content=json_schema_text("OrderPaid"),
    )
    result = schema_check.check(paid_event(amount=-3))
    assert (result.registry, result.schema_name, result.version) == (REGISTRY, PAID, "1")
    assert [issue.path for issue in result.issues] == ["$.amount"]
