"""The environment of a request: ``/env/<name>/...`` in the URL, active for the whole view.

Every AWS-backed page and fragment lives under ``/env/<name>/``. ``EnvironmentMiddleware``
takes the ``env`` URL parameter (so views do not receive it), answers 404 for an unknown
environment and 403 for one the user may not see, sets ``request.environment``, and runs
the view inside ``environments.activate(environment, username)``: every AWS call of the
view (and of the threads it fans out to) goes to that environment, as that person.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse

from operations import access, environments
from operations.environments import Environment

ENV_KWARG = "env"


class EnvironmentConverter:
    """``<env:env>``: an environment name (known or not: the middleware answers 404)."""

    regex = r"[a-z0-9][a-z0-9_-]{0,31}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: Any) -> str:
        return str(getattr(value, "name", value))


class EnvironmentMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.environment = None  # type: ignore[attr-defined]
        stack = contextlib.ExitStack()
        request._environment_stack = stack  # type: ignore[attr-defined]
        with stack:
            return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        name = view_kwargs.pop(ENV_KWARG, None)
        if name is None:
            return None
        environment = environments.get(str(name))
        if environment is None:
            raise Http404(f"No environment named {name!r}.")
        if not access.may_see(request.user, environment.name):
            raise PermissionDenied(f"You have no role in {environment.label}.")
        request.environment = environment  # type: ignore[attr-defined]
        stack: contextlib.ExitStack = request._environment_stack  # type: ignore[attr-defined]
        stack.enter_context(environments.activate(environment, _identity(request)))
        return None


def _identity(request: HttpRequest) -> str:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    return str(user.get_username())


def environment_of(request: HttpRequest) -> Environment:
    """The request's environment (the default one outside ``/env/<name>/``)."""
    return getattr(request, "environment", None) or environments.default()


def env_reverse(name: str, *args: Any, environment: str | None = None) -> str:
    """``reverse`` of a page inside an environment (the current one unless named)."""
    return reverse(name, args=[environment or environments.current().name, *args])


def env_url(name: str, *args: Any, environment: str | None = None) -> str:
    """``env_reverse``, or "" when the arguments do not fit the URL (an AWS name a
    pattern cannot hold gets no link, never a 500)."""
    try:
        return env_reverse(name, *args, environment=environment)
    except NoReverseMatch:
        return ""


def operation_url(operation: Any) -> str:
    """The page of an operation, in the environment it acted in."""
    return env_reverse("operations:detail", operation.pk, environment=operation.environment)
