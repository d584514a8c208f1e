"""``--env NAME`` and ``--as NAME`` for the commands that talk to AWS (redrive, replay, trace).

A command acts in one environment (default: the first of the environments file) as one
person: the operating-system user, or ``--as``. Where the environment has a role, AWS's own
audit (CloudTrail) names that person, as it does for the pages.
"""

from __future__ import annotations

import contextlib
from argparse import ArgumentParser
from collections.abc import Iterator
from typing import Any

from django.core.management.base import CommandError

from operations import access, environments, masking, read_audit
from operations.environments import Environment


def add_arguments(parser: ArgumentParser) -> None:
    names = environments.names()
    parser.add_argument(
        "--env",
        dest="env",
        default="",
        help=f"the environment to act in: {', '.join(names)} (default: {names[0]})",
    )
    parser.add_argument(
        "--as",
        dest="acting_as",
        default="",
        help="who acts, for the audit trail and AWS's (default: the operating-system user)",
    )


def resolve(options: dict[str, Any]) -> tuple[Environment, str]:
    """The environment and identity the options name; ``CommandError`` for an unknown one."""
    name = str(options.get("env") or "")
    environment = environments.get(name) if name else environments.default()
    if environment is None:
        raise CommandError(
            f"No environment {name!r}; configured: {', '.join(environments.names())}."
        )
    return environment, environments.cli_identity(str(options.get("acting_as") or ""))


@contextlib.contextmanager
def activated(options: dict[str, Any]) -> Iterator[tuple[Environment, str]]:
    """Run the block in the options' environment, as the options' person."""
    environment, identity = resolve(options)
    with environments.activate(environment, identity):
        yield environment, identity


def require(environment: Environment, identity: str, action: access.Action) -> None:
    """Refuse ``action`` as the pages would: always in read-only mode, and, when the person
    has a dashboard account of the same name, unless that account may take it here.
    (Someone at the shell with the dashboard's settings is otherwise trusted, as the
    database and AWS credentials they can read already are.)"""
    if action in access.MUTATIONS:
        refuse_in_read_only()
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(username=identity).first()
    if user is not None and not access.allows(user, action, environment.name):
        raise CommandError(
            f"Refused: {identity} may not {access.VERBS[action]} in {environment.label}. "
            + access.who_can(action, environment.name),
            returncode=2,
        )


def refuse_in_read_only() -> None:
    """Refuse a mutation from the shell in read-only mode, as the pages do (exit 2)."""
    if access.read_only():
        raise CommandError(
            "Refused: the dashboard is in read-only mode (EVENTOPS_READ_ONLY).", returncode=2
        )


def add_unmasked_argument(parser: ArgumentParser) -> None:
    parser.add_argument(
        "--unmasked",
        action="store_true",
        help="show and filter sensitive values as they are (needs 'view unmasked'; recorded "
        "in the access log); by default they are masked, as on the pages",
    )


def must_mask(options: dict[str, Any], environment: Environment, identity: str) -> bool:
    """Whether the command shows (and filters) masked values: always unless ``--unmasked``,
    which is refused, as ``require`` refuses, to an account that may not see unmasked bodies."""
    if not masking.enabled():
        return False
    if not options.get("unmasked"):
        return True
    require(environment, identity, access.Action.VIEW_UNMASKED)
    return False


def record_read(
    environment: Environment, identity: str, target: str, count: int, *, masked: bool
) -> None:
    """Audit bodies a command printed or filtered on (operations/read_audit.py)."""
    if not count:
        return
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(username=identity).first()
    read_audit.record(
        user,
        read_audit.ReadAudit.Kind.VIEWED_BODIES,
        target,
        count=count,
        unmasked=not masked,
        via=read_audit.ReadAudit.Via.COMMAND,
        environment=environment.name,
        username=identity,
        every_time=True,
    )
