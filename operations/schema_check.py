""" "Why did this fail?": validate an event against its schema in the registry.

The input is a DLQ message body or an archived event: normally the full
EventBridge envelope (``{"id", "source", "detail-type", "detail", ...}``) as a
rule target delivers it. Its schema is found in the registry by name,
``<source>@<detail-type>`` (what schema discovery and the IaC use), and the
chosen (or latest) version is applied with jsonschema.

Registry schemas are either JSON Schema draft 4 of the event's ``detail`` (what
the IaC registers), a JSON Schema of the whole envelope (it has ``detail`` among
its properties), or OpenAPI 3 as schema discovery writes it (the ``AWSEvent``
component is the envelope).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError

from operations import masking
from operations.aws import schemas
from operations.aws.errors import AwsError

logger = logging.getLogger(__name__)

MAX_ERRORS = 50
MAX_INPUT_BYTES = 256 * 1024
TOO_DEEP = "The input is nested too deeply to check (hundreds of levels of arrays or objects)."


class SchemaCheckError(ValueError):
    """The input cannot be checked; the message says why."""


@dataclass(frozen=True)
class Issue:
    path: str
    message: str
    validator: str


@dataclass
class CheckResult:
    registry: str
    schema_name: str
    version: str
    target: str  # "detail" or "event": what the schema was applied to
    issues: list[Issue] = field(default_factory=list)
    truncated: bool = False

    @property
    def valid(self) -> bool:
        return not self.issues


def parse_input(text: str) -> dict[str, Any]:
    """The JSON object in ``text`` (a message body or an event)."""
    if len(text.encode()) > MAX_INPUT_BYTES:
        raise SchemaCheckError("The input is larger than 256 KiB, the largest event or message.")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaCheckError(
            f"The input is not valid JSON: {exc.msg} at line {exc.lineno}."
        ) from None
    except RecursionError:
        raise SchemaCheckError(TOO_DEEP) from None
    if not isinstance(value, dict):
        raise SchemaCheckError("The input must be a JSON object (an event or a message body).")
    return value


def schema_name_for(envelope: dict[str, Any]) -> str:
    source, detail_type = envelope.get("source"), envelope.get("detail-type")
    if not isinstance(source, str) or not isinstance(detail_type, str) or not detail_type:
        raise SchemaCheckError(
            "The input has no source and detail-type: paste the whole event envelope, or pick "
            "the schema yourself."
        )
    return f"{source}@{detail_type}"


def find_schema(name: str, registry: str = "") -> tuple[str, str]:
    """(registry, schema name) of the schema called ``name``; SchemaCheckError if none."""
    registries = [registry] if registry else [r.name for r in schemas.list_registries()]
    for reg in registries:
        if any(s.name == name for s in schemas.list_schemas(reg)):
            return reg, name
    raise SchemaCheckError(f"No schema named {name!r} in the registry.")


def _root_schema(content: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The schema to apply and what it applies to ("event" or "detail")."""
    if "openapi" in content:
        components = content.get("components", {}).get("schemas", {})
        if "AWSEvent" not in components:
            raise SchemaCheckError("The OpenAPI schema has no AWSEvent component.")
        root = {"$ref": "#/components/schemas/AWSEvent", "components": content["components"]}
        return root, "event"
    properties = content.get("properties", {})
    if isinstance(properties, dict) and "detail" in properties and "detail-type" in properties:
        return content, "event"
    return content, "detail"


def _path(error: jsonschema.ValidationError) -> str:
    parts = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return "$" + parts


def validate(content_text: str, instance: dict[str, Any]) -> tuple[str, list[Issue], bool]:
    """Apply a schema (JSON text) to an envelope; returns (target, issues, truncated)."""
    try:
        content = json.loads(content_text)
    except json.JSONDecodeError as exc:
        raise SchemaCheckError(f"The registry's schema is not valid JSON: {exc.msg}.") from None
    except RecursionError:
        raise SchemaCheckError("The registry's schema is nested too deeply to apply.") from None
    if not isinstance(content, dict):
        raise SchemaCheckError("The registry's schema is not a JSON object.")
    root, target = _root_schema(content)
    subject: Any = instance
    if target == "detail":
        subject = instance.get("detail", instance) if "detail-type" in instance else instance
    validator = _validator(root)
    try:
        errors = sorted(
            validator.iter_errors(subject), key=lambda e: list(map(str, e.absolute_path))
        )
    except RecursionError:
        # A recursive schema ("$ref": "#") applied to a deeply nested input.
        raise SchemaCheckError(TOO_DEEP) from None
    issues = [
        Issue(path=_path(e), message=e.message[:500], validator=str(e.validator))
        for e in errors[:MAX_ERRORS]
    ]
    return target, issues, len(errors) > MAX_ERRORS


def _validator(root: dict[str, Any]) -> Any:
    """A validator for the schema's declared draft (draft 4 if none).

    Schemas generated by pydantic declare draft 4 but use newer keywords (a
    numeric ``exclusiveMinimum``); when the declared draft rejects the schema and
    draft 2020-12 accepts it, 2020-12 is used so such constraints still apply.
    """
    declared = jsonschema.validators.validator_for(root, default=jsonschema.Draft4Validator)
    try:
        declared.check_schema(root)
        return declared(root)
    except SchemaError as exc:
        try:
            jsonschema.Draft202012Validator.check_schema(root)
        except SchemaError:
            raise SchemaCheckError(f"The registry's schema is invalid: {exc.message}") from None
        logger.info("Schema is not valid for its declared draft (%s); using 2020-12", exc.message)
        return jsonschema.Draft202012Validator(root)


def check(text: str, *, registry: str = "", schema: str = "", version: str = "") -> CheckResult:
    """Validate ``text`` against its schema (found by name unless given)."""
    envelope = parse_input(text)
    try:
        if schema:
            reg = registry or find_schema(schema)[0]
            name = schema
        else:
            reg, name = find_schema(schema_name_for(envelope), registry)
        found = schemas.describe_schema(reg, name, version)
    except AwsError as exc:
        if exc.not_found:
            raise SchemaCheckError(f"Schema not found: {exc.message}") from None
        raise
    target, issues, truncated = validate(found.content, envelope)
    return CheckResult(
        registry=reg,
        schema_name=found.name,
        version=found.version,
        target=target,
        issues=issues,
        truncated=truncated,
    )


def masked(result: CheckResult) -> CheckResult:
    """The result as someone who may not see secrets sees it: the problems' messages quote
    the failing values, so they are masked like a body."""
    issues = [dataclasses.replace(i, message=masking.mask_text(i.message)) for i in result.issues]
    return dataclasses.replace(result, issues=issues)
