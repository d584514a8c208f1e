"""Amazon EventBridge Schemas (the ``schemas`` API), which moto does not have at all.

A small moto service: :class:`SchemasBackend` keeps registries, versioned schemas and
discoverers per account and region; :class:`SchemasResponse` answers the REST-JSON API with
moto's own model-driven request parsing and response serialisation, so boto3's ``schemas``
client parses every answer. :func:`register` makes moto route to it, both in server mode
(``DomainDispatcherApplication`` picks a backend by matching the host it infers from the
SigV4 credential scope, ``schemas.<region>.amazonaws.com``, against
``moto.backend_index.backend_url_patterns``) and under ``mock_aws`` (the botocore stubber
matches the request URL against the same list).

Operations: Create/Describe/Update/Delete/ListRegistries, Create/Update/Describe/Delete
Schema, DeleteSchemaVersion, ListSchemas, ListSchemaVersions, ExportSchema (JSONSchemaDraft4 of
a JSONSchemaDraft4 schema), SearchSchemas, Create/Describe/Update/Delete/Start/Stop/
ListDiscoverers.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from moto.core.base_backend import BackendDict, BaseBackend
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, BaseResponse, EmptyResult

from infra.devstack.emulator._patches import Patcher

SERVICE = "schemas"
URL_BASE = r"https?://schemas\.(.+)\.amazonaws\.com"
SCHEMA_TYPES = ("OpenApi3", "JSONSchemaDraft4")
_NAME = re.compile(r"^[.\-_A-Za-z@0-9]{1,385}$")


class SchemasError(ServiceException):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        # The error shapes of this API carry Code and Message members.
        self.Code = code
        self.Message = message


def not_found(what: str) -> SchemasError:
    return SchemasError("NotFoundException", f"{what} does not exist.")


def bad_request(message: str) -> SchemasError:
    return SchemasError("BadRequestException", message)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SchemaVersion:
    version: str
    content: str
    type: str
    created: datetime


@dataclass
class Schema:
    registry: str
    name: str
    arn: str
    description: str | None
    tags: dict[str, str]
    versions: list[SchemaVersion] = field(default_factory=list)
    next_version: int = 1

    @property
    def latest(self) -> SchemaVersion:
        return self.versions[-1]

    @property
    def last_modified(self) -> datetime:
        return self.latest.created

    def version(self, number: str | None) -> SchemaVersion:
        if number is None:
            return self.latest
        for version in self.versions:
            if version.version == str(number):
                return version
        raise not_found(f"Schema version {number} of {self.name}")

    def shape(self, version: SchemaVersion | None = None) -> dict[str, Any]:
        version = version or self.latest
        return {
            "Description": self.description,
            "LastModified": self.last_modified,
            "SchemaArn": self.arn,
            "SchemaName": self.name,
            "SchemaVersion": version.version,
            "Tags": self.tags,
            "Type": version.type,
            "VersionCreatedDate": version.created,
        }


@dataclass
class Registry:
    name: str
    arn: str
    description: str | None
    tags: dict[str, str]
    schemas: dict[str, Schema] = field(default_factory=dict)

    def shape(self) -> dict[str, Any]:
        return {
            "Description": self.description,
            "RegistryArn": self.arn,
            "RegistryName": self.name,
            "Tags": self.tags,
        }


@dataclass
class Discoverer:
    discoverer_id: str
    arn: str
    source_arn: str
    description: str | None
    cross_account: bool
    tags: dict[str, str]
    state: str = "STARTED"

    def shape(self) -> dict[str, Any]:
        return {
            "Description": self.description,
            "DiscovererArn": self.arn,
            "DiscovererId": self.discoverer_id,
            "SourceArn": self.source_arn,
            "State": self.state,
            "CrossAccount": self.cross_account,
            "Tags": self.tags,
        }


def _validate_content(content: str, schema_type: str) -> None:
    if schema_type not in SCHEMA_TYPES:
        raise bad_request(f"Type must be one of {', '.join(SCHEMA_TYPES)}.")
    try:
        parsed = json.loads(content)
    except ValueError as exc:
        raise bad_request("Content is not valid JSON.") from exc
    if not isinstance(parsed, dict):
        raise bad_request("Content must be a JSON object.")


def _page(items: list[Any], token: str | None, limit: Any) -> tuple[list[Any], str | None]:
    size = int(limit) if limit else 100
    try:
        offset = int(token) if token else 0
    except ValueError as exc:
        raise bad_request("Invalid NextToken.") from exc
    if size < 1 or offset < 0:
        raise bad_request("Invalid Limit or NextToken.")
    return items[offset : offset + size], (
        str(offset + size) if offset + size < len(items) else None
    )


class SchemasBackend(BaseBackend):
    """Registries, schemas (with versions) and discoverers of one account and region."""

    def __init__(self, region_name: str, account_id: str) -> None:
        super().__init__(region_name, account_id)
        self.registries: dict[str, Registry] = {}
        self.discoverers: dict[str, Discoverer] = {}
        self.lock = threading.RLock()

    @property
    def _url_module(self) -> Any:
        return SimpleNamespace(url_bases=[URL_BASE], url_paths={"{0}/.*": SchemasResponse.dispatch})

    def _arn(self, resource: str) -> str:
        return f"arn:{self.partition}:schemas:{self.region_name}:{self.account_id}:{resource}"

    # registries
    def create_registry(self, name: str, description: str | None, tags: dict[str, str]) -> Registry:
        with self.lock:
            if not _NAME.match(name or ""):
                raise bad_request("RegistryName is not valid.")
            if name in self.registries:
                raise SchemasError("ConflictException", f"Registry {name} already exists.")
            registry = Registry(name, self._arn(f"registry/{name}"), description, dict(tags or {}))
            self.registries[name] = registry
            return registry

    def registry(self, name: str) -> Registry:
        registry = self.registries.get(name)
        if registry is None:
            raise not_found(f"Registry {name}")
        return registry

    def update_registry(self, name: str, description: str | None) -> Registry:
        with self.lock:
            registry = self.registry(name)
            registry.description = description
            return registry

    def delete_registry(self, name: str) -> None:
        with self.lock:
            self.registry(name)
            del self.registries[name]

    # schemas
    def schema(self, registry_name: str, schema_name: str) -> Schema:
        schema = self.registry(registry_name).schemas.get(schema_name)
        if schema is None:
            raise not_found(f"Schema {schema_name}")
        return schema

    def create_schema(
        self,
        registry_name: str,
        schema_name: str,
        content: str,
        schema_type: str,
        description: str | None,
        tags: dict[str, str],
    ) -> Schema:
        with self.lock:
            registry = self.registry(registry_name)
            if not _NAME.match(schema_name or ""):
                raise bad_request("SchemaName is not valid.")
            if schema_name in registry.schemas:
                raise SchemasError("ConflictException", f"Schema {schema_name} already exists.")
            _validate_content(content, schema_type)
            schema = Schema(
                registry_name,
                schema_name,
                self._arn(f"schema/{registry_name}/{schema_name}"),
                description,
                dict(tags or {}),
            )
            self._add_version(schema, content, schema_type)
            registry.schemas[schema_name] = schema
            return schema

    @staticmethod
    def _add_version(schema: Schema, content: str, schema_type: str) -> SchemaVersion:
        version = SchemaVersion(str(schema.next_version), content, schema_type, _now())
        schema.next_version += 1
        schema.versions.append(version)
        return version

    def update_schema(
        self,
        registry_name: str,
        schema_name: str,
        content: str | None,
        schema_type: str | None,
        description: str | None,
    ) -> Schema:
        with self.lock:
            schema = self.schema(registry_name, schema_name)
            if description is not None:
                schema.description = description
            new_type = schema_type or schema.latest.type
            if content is not None and (
                content != schema.latest.content or new_type != schema.latest.type
            ):
                _validate_content(content, new_type)
                self._add_version(schema, content, new_type)
            return schema

    def delete_schema(self, registry_name: str, schema_name: str) -> None:
        with self.lock:
            self.schema(registry_name, schema_name)
            del self.registries[registry_name].schemas[schema_name]

    def delete_schema_version(self, registry_name: str, schema_name: str, version: str) -> None:
        with self.lock:
            schema = self.schema(registry_name, schema_name)
            doomed = schema.version(version)
            if len(schema.versions) == 1:
                raise bad_request("The only version of a schema cannot be deleted.")
            schema.versions.remove(doomed)

    # discoverers
    def create_discoverer(
        self, source_arn: str, description: str | None, cross_account: bool, tags: dict[str, str]
    ) -> Discoverer:
        with self.lock:
            if not source_arn or ":event-bus/" not in source_arn:
                raise bad_request("SourceArn must be an event bus ARN.")
            bus = source_arn.split(":event-bus/", 1)[1]
            discoverer_id = f"events-event-bus-{bus}"
            if discoverer_id in self.discoverers:
                discoverer_id = f"{discoverer_id}-{uuid.uuid4().hex[:8]}"
            discoverer = Discoverer(
                discoverer_id,
                self._arn(f"discoverer/{discoverer_id}"),
                source_arn,
                description,
                bool(cross_account) if cross_account is not None else True,
                dict(tags or {}),
            )
            self.discoverers[discoverer_id] = discoverer
            return discoverer

    def discoverer(self, discoverer_id: str) -> Discoverer:
        discoverer = self.discoverers.get(discoverer_id)
        if discoverer is None:
            raise not_found(f"Discoverer {discoverer_id}")
        return discoverer


schemas_backends: BackendDict[SchemasBackend] = BackendDict(SchemasBackend, SERVICE)


class SchemasResponse(BaseResponse):
    """The REST-JSON front end; routing and (de)serialisation come from botocore's model."""

    def __init__(self) -> None:
        super().__init__(service_name=SERVICE)
        self.automated_parameter_parsing = True

    @property
    def backend(self) -> SchemasBackend:
        return schemas_backends[self.current_account][self.region]

    def _result(self, shape: dict[str, Any]) -> ActionResult:
        return ActionResult({k: v for k, v in shape.items() if v is not None})

    # registries
    def create_registry(self) -> ActionResult:
        registry = self.backend.create_registry(
            self._get_param("RegistryName"),
            self._get_param("Description"),
            self._get_param("Tags") or {},
        )
        return self._result(registry.shape())

    def describe_registry(self) -> ActionResult:
        return self._result(self.backend.registry(self._get_param("RegistryName")).shape())

    def update_registry(self) -> ActionResult:
        registry = self.backend.update_registry(
            self._get_param("RegistryName"), self._get_param("Description")
        )
        return self._result(registry.shape())

    def delete_registry(self) -> ActionResult:
        self.backend.delete_registry(self._get_param("RegistryName"))
        return EmptyResult()

    def list_registries(self) -> ActionResult:
        prefix = self._get_param("RegistryNamePrefix") or ""
        scope = self._get_param("Scope")
        registries = (
            []
            if scope == "AWS"
            else sorted(
                (r for r in self.backend.registries.values() if r.name.startswith(prefix)),
                key=lambda r: r.name,
            )
        )
        page, token = _page(registries, self._get_param("NextToken"), self._get_param("Limit"))
        result: dict[str, Any] = {
            "Registries": [
                {"RegistryArn": r.arn, "RegistryName": r.name, "Tags": r.tags} for r in page
            ]
        }
        if token:
            result["NextToken"] = token
        return ActionResult(result)

    # schemas
    def create_schema(self) -> ActionResult:
        schema = self.backend.create_schema(
            self._get_param("RegistryName"),
            self._get_param("SchemaName"),
            self._get_param("Content"),
            self._get_param("Type"),
            self._get_param("Description"),
            self._get_param("Tags") or {},
        )
        return self._result(schema.shape())

    def update_schema(self) -> ActionResult:
        schema = self.backend.update_schema(
            self._get_param("RegistryName"),
            self._get_param("SchemaName"),
            self._get_param("Content"),
            self._get_param("Type"),
            self._get_param("Description"),
        )
        return self._result(schema.shape())

    def describe_schema(self) -> ActionResult:
        schema = self.backend.schema(self._get_param("RegistryName"), self._get_param("SchemaName"))
        version = schema.version(self._get_param("SchemaVersion"))
        return self._result({**schema.shape(version), "Content": version.content})

    def export_schema(self) -> ActionResult:
        schema = self.backend.schema(self._get_param("RegistryName"), self._get_param("SchemaName"))
        version = schema.version(self._get_param("SchemaVersion"))
        wanted = self._get_param("Type")
        if wanted != "JSONSchemaDraft4" or version.type != "JSONSchemaDraft4":
            raise bad_request("Only JSONSchemaDraft4 schemas can be exported as JSONSchemaDraft4.")
        return self._result(
            {
                "Content": version.content,
                "SchemaArn": schema.arn,
                "SchemaName": schema.name,
                "SchemaVersion": version.version,
                "Type": wanted,
            }
        )

    def delete_schema(self) -> ActionResult:
        self.backend.delete_schema(self._get_param("RegistryName"), self._get_param("SchemaName"))
        return EmptyResult()

    def delete_schema_version(self) -> ActionResult:
        self.backend.delete_schema_version(
            self._get_param("RegistryName"),
            self._get_param("SchemaName"),
            self._get_param("SchemaVersion"),
        )
        return EmptyResult()

    def list_schemas(self) -> ActionResult:
        registry = self.backend.registry(self._get_param("RegistryName"))
        prefix = self._get_param("SchemaNamePrefix") or ""
        schemas = sorted(
            (s for s in registry.schemas.values() if s.name.startswith(prefix)),
            key=lambda s: s.name,
        )
        page, token = _page(schemas, self._get_param("NextToken"), self._get_param("Limit"))
        result: dict[str, Any] = {
            "Schemas": [
                {
                    "LastModified": s.last_modified,
                    "SchemaArn": s.arn,
                    "SchemaName": s.name,
                    "Tags": s.tags,
                    "VersionCount": len(s.versions),
                }
                for s in page
            ]
        }
        if token:
            result["NextToken"] = token
        return ActionResult(result)

    def list_schema_versions(self) -> ActionResult:
        schema = self.backend.schema(self._get_param("RegistryName"), self._get_param("SchemaName"))
        page, token = _page(
            list(schema.versions), self._get_param("NextToken"), self._get_param("Limit")
        )
        result: dict[str, Any] = {
            "SchemaVersions": [
                {
                    "SchemaArn": schema.arn,
                    "SchemaName": schema.name,
                    "SchemaVersion": v.version,
                    "Type": v.type,
                }
                for v in page
            ]
        }
        if token:
            result["NextToken"] = token
        return ActionResult(result)

    def search_schemas(self) -> ActionResult:
        registry = self.backend.registry(self._get_param("RegistryName"))
        keywords = (self._get_param("Keywords") or "").lower()
        found = sorted(
            (s for s in registry.schemas.values() if keywords in s.name.lower()),
            key=lambda s: s.name,
        )
        page, token = _page(found, self._get_param("NextToken"), self._get_param("Limit"))
        result: dict[str, Any] = {
            "Schemas": [
                {
                    "RegistryName": registry.name,
                    "SchemaArn": s.arn,
                    "SchemaName": s.name,
                    "SchemaVersions": [
                        {
                            "CreatedDate": v.created,
                            "SchemaVersion": v.version,
                            "Type": v.type,
                        }
                        for v in s.versions
                    ],
                }
                for s in page
            ]
        }
        if token:
            result["NextToken"] = token
        return ActionResult(result)

    # discoverers
    def create_discoverer(self) -> ActionResult:
        discoverer = self.backend.create_discoverer(
            self._get_param("SourceArn"),
            self._get_param("Description"),
            self._get_param("CrossAccount"),
            self._get_param("Tags") or {},
        )
        return self._result(discoverer.shape())

    def describe_discoverer(self) -> ActionResult:
        return self._result(self.backend.discoverer(self._get_param("DiscovererId")).shape())

    def update_discoverer(self) -> ActionResult:
        discoverer = self.backend.discoverer(self._get_param("DiscovererId"))
        if self._get_param("Description") is not None:
            discoverer.description = self._get_param("Description")
        if self._get_param("CrossAccount") is not None:
            discoverer.cross_account = bool(self._get_param("CrossAccount"))
        return self._result(discoverer.shape())

    def delete_discoverer(self) -> ActionResult:
        self.backend.discoverer(self._get_param("DiscovererId"))
        del self.backend.discoverers[self._get_param("DiscovererId")]
        return EmptyResult()

    def start_discoverer(self) -> ActionResult:
        return self._set_discoverer_state("STARTED")

    def stop_discoverer(self) -> ActionResult:
        return self._set_discoverer_state("STOPPED")

    def _set_discoverer_state(self, state: str) -> ActionResult:
        discoverer = self.backend.discoverer(self._get_param("DiscovererId"))
        discoverer.state = state
        return ActionResult({"DiscovererId": discoverer.discoverer_id, "State": state})

    def list_discoverers(self) -> ActionResult:
        id_prefix = self._get_param("DiscovererIdPrefix") or ""
        arn_prefix = self._get_param("SourceArnPrefix") or ""
        found = sorted(
            (
                d
                for d in self.backend.discoverers.values()
                if d.discoverer_id.startswith(id_prefix) and d.source_arn.startswith(arn_prefix)
            ),
            key=lambda d: d.discoverer_id,
        )
        page, token = _page(found, self._get_param("NextToken"), self._get_param("Limit"))
        result: dict[str, Any] = {
            "Discoverers": [
                {k: v for k, v in d.shape().items() if k != "Description"} for d in page
            ]
        }
        if token:
            result["NextToken"] = token
        return ActionResult(result)


def register(patcher: Patcher) -> None:
    """Route ``schemas`` requests to :data:`schemas_backends` (undone by the patcher)."""
    import moto.backend_index as backend_index
    import moto.backends as backends

    entry = (SERVICE, re.compile(URL_BASE))
    backend_index.backend_url_patterns.append(entry)

    def unregister() -> None:
        if entry in backend_index.backend_url_patterns:
            backend_index.backend_url_patterns.remove(entry)

    patcher.on_undo(unregister)
    original: Callable[..., Any] = backends.get_backend

    def get_backend(name: Any) -> Any:
        if name == SERVICE:
            return schemas_backends
        return original(name)

    patcher.setattr(backends, "get_backend", get_backend)
