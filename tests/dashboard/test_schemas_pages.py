"""Schema registry pages and "Why did this fail?" (EventSchemas stubbed: moto lacks it)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from botocore.stub import Stubber
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from infra.schemas import json_schema_text, schema_name
from operations.aws import client as aws_client
from tests.operations import archive_world

viewer_client = archive_world.viewer_client
pytestmark = pytest.mark.django_db

REGISTRY = "eventops-demo-events"
PAID = schema_name("OrderPaid")


@pytest.fixture
def stub() -> Iterator[Stubber]:
    cache.clear()
    with Stubber(aws_client.client("schemas")) as stubber:
        yield stubber


def test_schemas_page_lists_registries_and_schemas(stub, viewer_client):
    stub.add_response("list_registries", {"Registries": [{"RegistryName": REGISTRY}]})
    stub.add_response("list_schemas", {"Schemas": [{"SchemaName": PAID, "VersionCount": 2}]})
    response = viewer_client.get(reverse("schemas", args=["default"]))
    assert response.status_code == 200
    assert (
        PAID in response.text
        and reverse("schema_detail", args=["default", REGISTRY, PAID]) in response.text
    )


def test_schema_page_shows_versions_and_content(stub, viewer_client):
    stub.add_response(
        "list_schema_versions", {"SchemaVersions": [{"SchemaVersion": "1"}, {"SchemaVersion": "2"}]}
    )
    stub.add_response(
        "describe_schema",
        {
            "SchemaName": PAID,
            "SchemaVersion": "1",
            "Type": "JSONSchemaDraft4",
            "Content": json_schema_text("OrderPaid"),
        },
        {"RegistryName": REGISTRY, "SchemaName": PAID, "SchemaVersion": "1"},
    )
    response = viewer_client.get(
        reverse("schema_detail", args=["default", REGISTRY, PAID]), {"version": "1"}
    )
    assert response.status_code == 200
    assert "paymentId" in response.text and "?version=2" in response.text


def test_unknown_schema_is_404(stub, viewer_client):
    stub.add_client_error("list_schema_versions", "NotFoundException", http_status_code=404)
    response = viewer_client.get(reverse("schema_detail", args=["default", REGISTRY, "nope"]))
    assert response.status_code == 404


def test_registry_outage_is_shown_not_500(stub, viewer_client):
    stub.add_client_error("list_registries", "AccessDeniedException", http_status_code=403)
    response = viewer_client.get(reverse("schemas", args=["default"]))
    assert response.status_code == 200 and "Permission missing" in response.text


def test_why_did_this_fail_lists_errors_escaped(stub, viewer_client):
    stub.add_response(
        "describe_schema",
        {"SchemaName": PAID, "SchemaVersion": "2", "Content": json_schema_text("OrderPaid")},
    )
    body = json.dumps(
        {
            "source": "eventops.orders",
            "detail-type": "OrderPaid",
            "detail": {
                "correlationId": "c-1",
                "orderId": "o-1",
                "occurredAt": "2024-05-01T00:00:00Z",
                "paymentId": "p",
                "amount": "1.00",
                "currency": "<script>x</script>",
            },
        }
    )
    response = viewer_client.post(
        reverse("schema_check", args=["default"]),
        {"body": body, "registry": REGISTRY, "schema": PAID},
    )
    assert response.status_code == 200 and "$.currency" in response.text
    assert "<script>x</script>" not in response.text


def test_why_did_this_fail_with_bad_json_is_a_clear_400(viewer_client):
    response = viewer_client.post(reverse("schema_check", args=["default"]), {"body": "{not json"})
    assert response.status_code == 400 and "not valid JSON" in response.text


def test_schemas_need_login():
    response = Client().get(reverse("schemas", args=["default"]))
    assert response.status_code == 302 and "/login/" in response["Location"]
