"""EventBridge schema registry (EventSchemas) adapter, as dataclasses.

moto does not implement EventSchemas: the tests use botocore's Stubber, and
devstack serves these calls through its emulator extension.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from operations.aws.client import client
from operations.aws.errors import translate

MAX_PAGES = 20


@dataclass(frozen=True)
class Registry:
    name: str
    arn: str
    description: str


@dataclass(frozen=True)
class SchemaSummary:
    registry: str
    name: str
    arn: str
    version_count: int
    last_modified: datetime | None


@dataclass(frozen=True)
class SchemaVersion:
    version: str
    type: str


@dataclass(frozen=True)
class Schema:
    """One version of a schema, with its content (JSON text as the registry stores it)."""

    registry: str
    name: str
    version: str
    type: str
    content: str
    description: str
    version_created: datetime | None


def _pages(method: Any, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        try:
            page = method(**params)
        except Exception as exc:
            raise translate(exc, operation) from exc
        items.extend(page.get(key, []))
        token = page.get("NextToken")
        if not token:
            break
        params["NextToken"] = token
    return items


# https://docs.aws.amazon.com/eventbridge/latest/schema-reference/v1-registries.html
def list_registries(prefix: str = "") -> list[Registry]:
    params: dict[str, Any] = {"Limit": 100}
    if prefix:
        params["RegistryNamePrefix"] = prefix
    raw = _pages(client("schemas").list_registries, "ListRegistries", "Registries", **params)
    return [
        Registry(
            name=r["RegistryName"],
            arn=r.get("RegistryArn", ""),
            description=r.get("Description", ""),
        )
        for r in raw
    ]


# https://docs.aws.amazon.com/eventbridge/latest/schema-reference/v1-registries-name-registryname-schemas.html
def list_schemas(registry: str) -> list[SchemaSummary]:
    raw = _pages(
        client("schemas").list_schemas, "ListSchemas", "Schemas", RegistryName=registry, Limit=100
    )
    return [
        SchemaSummary(
            registry=registry,
            name=s["SchemaName"],
            arn=s.get("SchemaArn", ""),
            version_count=int(s.get("VersionCount") or 0),
            last_modified=s.get("LastModified"),
        )
        for s in raw
    ]


# https://docs.aws.amazon.com/eventbridge/latest/schema-reference/v1-registries-name-registryname-schemas-name-schemaname-versions.html
def list_schema_versions(registry: str, schema: str) -> list[SchemaVersion]:
    raw = _pages(
        client("schemas").list_schema_versions,
        "ListSchemaVersions",
        "SchemaVersions",
        RegistryName=registry,
        SchemaName=schema,
        Limit=100,
    )
    versions = [SchemaVersion(version=str(v["SchemaVersion"]), type=v.get("Type", "")) for v in raw]
    return sorted(versions, key=lambda v: int(v.version) if v.version.isdigit() else 0)


# https://docs.aws.amazon.com/eventbridge/latest/schema-reference/v1-registries-name-registryname-schemas-name-schemaname.html
def describe_schema(registry: str, schema: str, version: str = "") -> Schema:
    """One schema version (the latest if ``version`` is empty)."""
    params: dict[str, Any] = {"RegistryName": registry, "SchemaName": schema}
    if version:
        params["SchemaVersion"] = version
    try:
        raw = client("schemas").describe_schema(**params)
    except Exception as exc:
        raise translate(exc, "DescribeSchema") from exc
    return Schema(
        registry=registry,
        name=raw.get("SchemaName", schema),
        version=str(raw.get("SchemaVersion", version)),
        type=raw.get("Type", ""),
        content=raw.get("Content", ""),
        description=raw.get("Description", ""),
        version_created=raw.get("VersionCreatedDate"),
    )
