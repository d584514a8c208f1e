"""Who calls the API (a bearer token), where (the path's environment) and what they may do
(the same ``operations.access`` rules as the pages)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer

from dashboard.api.problems import Problem
from operations import access, api_tokens, audit_channel, environments
from operations.access import Action
from operations.environments import Environment


class TokenAuth(HttpBearer):
    """``Authorization: Bearer eo_...``: the token's user becomes ``request.user``."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        found = api_tokens.authenticate(token)
        if found is None:
            return None
        request.user = found.user
        request.api_token = found  # type: ignore[attr-defined]
        return found


def token_name(request: HttpRequest) -> str:
    token = getattr(request, "api_token", None)
    return str(getattr(token, "name", ""))


@contextlib.contextmanager
def environment_scope(request: HttpRequest, name: str) -> Iterator[Environment]:
    """Run the handler's AWS calls in environment ``name``, as the token's user, recording
    operations as made through the API with this token. 404 for an unknown environment,
    403 for one the user has no role in (as ``dashboard.environment`` does for pages)."""
    environment = environments.get(name)
    if environment is None:
        raise Problem(404, f"No environment named {name!r}.", kind="unknown-environment")
    if not access.may_see(request.user, environment.name):
        raise Problem(403, f"You have no role in {environment.label}.", kind="forbidden")
    request.environment = environment  # type: ignore[attr-defined]
    identity = str(request.user.get_username())
    with (
        environments.activate(environment, identity),
        audit_channel.acting_via(audit_channel.API, token_name(request)),
    ):
        yield environment


def require(request: HttpRequest, action: Action, environment: str) -> None:
    """403 unless the user may take ``action`` here; in read-only mode every mutation is
    refused, to everyone, with its own problem type."""
    if action in access.MUTATIONS and access.read_only():
        raise Problem(
            403,
            "The dashboard is in read-only mode (EVENTOPS_READ_ONLY): nothing can be changed.",
            kind="read-only",
            title="Read-only mode",
        )
    if not access.allows(request.user, action, environment):
        raise Problem(403, access.who_can(action, environment), kind="forbidden")
