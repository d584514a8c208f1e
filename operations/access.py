"""Permission helpers shared by every app's views."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

RUN_OPERATION = "operations.run_operation"


def is_operator(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether ``user`` may start, cancel and change operations."""
    has_perm = getattr(user, "has_perm", None)
    return bool(user.is_authenticated and has_perm is not None and has_perm(RUN_OPERATION))


def require_operator(request: HttpRequest) -> None:
    """Raise 403 unless the request's user may run operations."""
    if not is_operator(request.user):
        raise PermissionDenied("Only operators can do this.")
