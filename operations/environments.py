"""The AWS environments the dashboard looks after (production, staging, a second Region).

``EVENTOPS_ENVIRONMENTS_FILE`` names a TOML file::

    [environments.prod]
    region = "eu-west-1"
    label = "Production"
    role_arn = "arn:aws:iam::111111111111:role/eventops-dashboard"   # optional
    color = "red"                                                     # optional

    [environments.staging]
    region = "us-west-2"
    label = "Staging"
    profile = "staging"          # optional
    endpoint_url = "http://..."  # optional

Without it there is one environment, ``default``, from the standard credential chain and
``AWS_REGION`` / ``AWS_PROFILE`` / ``AWS_ENDPOINT_URL``, as before environments existed.
A bad file stops startup with a message naming the file, the environment and the field.
The order of the file is the order of the switcher; the first environment is the default.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import getpass
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from operations.aws import context
from operations.aws.context import Target

T = TypeVar("T")

DEFAULT_NAME = "default"
# URL-safe, short, and not to be mistaken for a path segment of a page.
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
REGION_PATTERN = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
ROLE_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
EXTERNAL_ID_PATTERN = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
# Colours the stylesheet knows (a band across the top of every page, in that colour).
COLORS = ("red", "orange", "amber", "green", "teal", "blue", "indigo", "purple", "pink", "gray")
FIELDS = {
    "region",
    "label",
    "role_arn",
    "external_id",
    "color",
    "profile",
    "endpoint_url",
    "resource_prefix",
}


@dataclass(frozen=True)
class Environment:
    """One AWS account and Region, as configured."""

    name: str
    region: str
    label: str
    role_arn: str = ""
    external_id: str = ""
    color: str = ""
    profile: str = ""
    endpoint_url: str = ""
    # Only discover resources whose names start with this (EVENTOPS_RESOURCE_PREFIX).
    resource_prefix: str = ""

    @property
    def target(self) -> Target:
        return Target(
            name=self.name,
            region=self.region,
            profile=self.profile,
            endpoint_url=self.endpoint_url,
            role_arn=self.role_arn,
            external_id=self.external_id,
        )

    @property
    def where(self) -> str:
        """The Region, or the endpoint's host for an emulator or VPC endpoint."""
        if self.endpoint_url:
            return urlsplit(self.endpoint_url).netloc or self.endpoint_url
        return self.region


class EnvironmentsFileError(ImproperlyConfigured):
    """The environments file cannot be used; the message names file, environment and field."""


def _fail(path: Path, where: str, message: str) -> EnvironmentsFileError:
    return EnvironmentsFileError(f"{path}: {where}: {message}")


def _text(path: Path, name: str, data: Mapping[str, Any], field: str) -> str:
    value = data.get(field, "")
    if not isinstance(value, str):
        raise _fail(path, f"[environments.{name}] {field}", "must be a string")
    return value.strip()


def _is_color(value: str) -> bool:
    return not value or value in COLORS


def _environment(path: Path, name: str, data: Any) -> Environment:
    where = f"[environments.{name}]"
    if not NAME_PATTERN.match(name):
        raise _fail(
            path, where, "the name must be 1-32 of a-z, 0-9, '-' and '_', starting with a letter"
        )
    if not isinstance(data, dict):
        raise _fail(path, where, "must be a table of settings")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise _fail(
            path, f"{where} {unknown[0]}", f"unknown field (known: {', '.join(sorted(FIELDS))})"
        )
    fields = {field: _text(path, name, data, field) for field in FIELDS}
    checks = [
        ("region", bool(REGION_PATTERN.match(fields["region"])), "a Region such as eu-west-1"),
        (
            "role_arn",
            not fields["role_arn"] or bool(ROLE_ARN_PATTERN.match(fields["role_arn"])),
            "an IAM role ARN, arn:aws:iam::<12 digits>:role/<name>",
        ),
        (
            "external_id",
            not fields["external_id"] or bool(EXTERNAL_ID_PATTERN.match(fields["external_id"])),
            "2-1224 characters of letters, digits and +=,.@:/-",
        ),
        (
            "color",
            _is_color(fields["color"]),
            f"one of {', '.join(COLORS)}",
        ),
        (
            "endpoint_url",
            not fields["endpoint_url"]
            or urlsplit(fields["endpoint_url"]).scheme in ("http", "https")
            and bool(urlsplit(fields["endpoint_url"]).netloc),
            "an http:// or https:// URL",
        ),
    ]
    for field, ok, expected in checks:
        if not ok:
            shown = fields[field] or "(missing)"
            raise _fail(path, f"{where} {field}", f"must be {expected}, not {shown!r}")
    if fields["external_id"] and not fields["role_arn"]:
        raise _fail(path, f"{where} external_id", "needs role_arn")
    return Environment(
        name=name,
        region=fields["region"],
        label=fields["label"] or name,
        role_arn=fields["role_arn"],
        external_id=fields["external_id"],
        color=fields["color"],
        profile=fields["profile"],
        endpoint_url=fields["endpoint_url"],
        resource_prefix=fields["resource_prefix"],
    )


def load(path: Path | str) -> tuple[Environment, ...]:
    """Read and check an environments file; ``EnvironmentsFileError`` says what is wrong."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise EnvironmentsFileError(f"{path}: no such file (EVENTOPS_ENVIRONMENTS_FILE)") from None
    except OSError as exc:
        raise EnvironmentsFileError(f"{path}: cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise EnvironmentsFileError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"environments"})
    if unknown:
        raise _fail(path, f"[{unknown[0]}]", "unknown table (only [environments.<name>])")
    tables = data.get("environments")
    if not isinstance(tables, dict) or not tables:
        raise _fail(path, "[environments]", "no environment: add [environments.<name>] tables")
    return tuple(_environment(path, name, table) for name, table in tables.items())


def from_settings() -> Environment:
    """The one environment of a dashboard without an environments file."""
    endpoint = str(getattr(settings, "AWS_ENDPOINT_URL", "") or "")
    region = str(getattr(settings, "AWS_REGION", "") or "")
    return Environment(
        name=DEFAULT_NAME,
        region=region,
        label=str(getattr(settings, "EVENTOPS_DEFAULT_ENVIRONMENT_LABEL", "") or "Default"),
        profile=str(getattr(settings, "AWS_PROFILE", "") or ""),
        endpoint_url=endpoint,
        resource_prefix=str(getattr(settings, "EVENTOPS_RESOURCE_PREFIX", "") or ""),
    )


def reset() -> None:
    """Read the file again on next use (tests that write one)."""
    _configured.cache_clear()


@lru_cache(maxsize=4)
def _configured(path: str, fallback: Environment) -> tuple[Environment, ...]:
    return load(path) if path else (fallback,)


def all_environments() -> tuple[Environment, ...]:
    """Every configured environment, in the file's order."""
    path = str(getattr(settings, "EVENTOPS_ENVIRONMENTS_FILE", "") or "")
    return _configured(path, from_settings())


def get(name: str) -> Environment | None:
    return next((env for env in all_environments() if env.name == name), None)


def name_for_arn(arn: str) -> str:
    """The environment an ARN belongs to: the one configured environment in its Region,
    or "" when none or several are (a message from SNS names no environment)."""
    parts = arn.split(":")
    region = parts[3] if len(parts) > 3 else ""
    found = [env.name for env in all_environments() if region and env.region == region]
    return found[0] if len(found) == 1 else ""


def default() -> Environment:
    """The first environment: where ``/`` leads and what commands use without ``--env``."""
    return all_environments()[0]


def names() -> list[str]:
    return [env.name for env in all_environments()]


def check() -> None:
    """Load the environments now, so a bad file stops startup (``AppConfig.ready``)."""
    all_environments()


def cli_identity(explicit: str = "") -> str:
    """Who a command acts as: ``--as NAME``, else the operating-system user."""
    if explicit:
        return explicit
    with contextlib.suppress(Exception):
        return getpass.getuser()
    return os.environ.get("USER", "") or "cli"


_active: contextvars.ContextVar[Environment | None] = contextvars.ContextVar(
    "eventops_environment", default=None
)


@contextlib.contextmanager
def activate(environment: Environment, identity: str = "") -> Iterator[Environment]:
    """Make every AWS call inside the block go to ``environment``, as ``identity``."""
    token = _active.set(environment)
    try:
        with context.acting(environment.target, identity):
            yield environment
    finally:
        _active.reset(token)


def current_name() -> str:
    """The current environment's name (the default of ``Operation.environment``)."""
    return current().name


def current_role_arn() -> str:
    """The role the current environment is reached through ("" for none)."""
    return current().role_arn


def current_session_name() -> str:
    """The ``RoleSessionName`` AWS records for the acting person ("" without a role)."""
    acting = context.current()
    if acting is None or not acting.target.role_arn:
        return ""
    return acting.session_name


def current() -> Environment:
    """The environment of the current ``activate`` block, else the default one."""
    active = _active.get()
    if active is not None:
        return active
    acting = context.current()
    if acting is not None:
        found = get(acting.target.name)
        if found is not None:
            return found
    return default()


def identity_of(requested_by_name: str) -> str:
    """The person behind an operation's ``requested_by_name`` ("cli:alice" -> "alice")."""
    return requested_by_name.split(":", 1)[1] if ":" in requested_by_name else requested_by_name


def in_operation_environment(task: Callable[..., T]) -> Callable[..., T]:
    """Run a Celery task of one operation in the operation's environment, as the person
    who asked for it: with a role, CloudTrail names them for the worker's calls too.

    An operation whose environment is no longer configured ends as failed, saying so."""

    @functools.wraps(task)
    def run(self: Any, operation_id: int, *args: Any, **kwargs: Any) -> T:
        from django.utils import timezone

        from operations.models import Operation
        from operations.operation_events import ended

        row = (
            Operation.objects.filter(pk=operation_id)
            .values("environment", "requested_by_name")
            .first()
        )
        if row is None:
            return task(self, operation_id, *args, **kwargs)
        environment = get(row["environment"])
        if environment is None:
            if Operation.objects.filter(pk=operation_id, state__in=Operation.ACTIVE_STATES).update(
                state=Operation.State.FAILED,
                error=f"The environment {row['environment']!r} is no longer configured.",
                finished_at=timezone.now(),
                lease_token=None,
                lease_expires_at=None,
            ):
                ended(operation_id)
            raise UnknownEnvironment(row["environment"])
        with activate(environment, identity_of(row["requested_by_name"])):
            return task(self, operation_id, *args, **kwargs)

    return run


class UnknownEnvironment(LookupError):
    """An operation names an environment the file no longer has."""
