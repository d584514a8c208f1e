"""Who may do what, where: the one function every page, command and check uses.

Permissions are per action (``Action``), granted through groups. A group applies in every
environment, or, when its name ends in ``@<environment>`` (``operator@staging``), in that
environment only; such a group grants what the group of its base name grants
(``operator``) plus its own permissions. The default groups, made by the migrations:

- ``viewer``: everything read-only; message bodies masked (view bodies, export);
- ``operator``: a viewer who may also redrive, replay, re-publish and cancel;
- ``admin``: all of it, including unmasked bodies, edit and resend, and delete.

``EVENTOPS_READ_ONLY=true`` refuses every mutation to everyone, superusers included.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

APP = "operations"


class Action(StrEnum):
    """An action a permission allows; the value is the permission's codename."""

    VIEW_BODIES = "view_message_bodies"
    VIEW_UNMASKED = "view_unmasked"
    EXPORT = "export_messages"
    REDRIVE = "redrive"
    REPLAY = "replay"
    REPUBLISH = "republish"
    EDIT_RESEND = "edit_resend"
    DELETE = "delete_messages"
    CANCEL = "cancel_operation"


# Permission names, as the admin shows them.
DESCRIPTIONS = {
    Action.VIEW_BODIES: "Can see DLQ message bodies and event details (masked)",
    Action.VIEW_UNMASKED: "Can see message bodies unmasked",
    Action.EXPORT: "Can export DLQ messages",
    Action.REDRIVE: "Can redrive DLQs",
    Action.REPLAY: "Can replay archived events",
    Action.REPUBLISH: "Can re-publish events",
    Action.EDIT_RESEND: "Can edit and resend a DLQ message",
    Action.DELETE: "Can delete DLQ messages",
    Action.CANCEL: "Can cancel operations",
}
# Actions that change something in AWS: refused in read-only mode.
MUTATIONS = frozenset(
    {
        Action.REDRIVE,
        Action.REPLAY,
        Action.REPUBLISH,
        Action.EDIT_RESEND,
        Action.DELETE,
        Action.CANCEL,
    }
)
VIEWER = frozenset({Action.VIEW_BODIES, Action.EXPORT})
OPERATOR = VIEWER | {Action.REDRIVE, Action.REPLAY, Action.REPUBLISH, Action.CANCEL}
ADMIN = frozenset(Action)
DEFAULT_ROLES: dict[str, frozenset[Action]] = {
    "viewer": VIEWER,
    "operator": OPERATOR,
    "admin": ADMIN,
}
# What the pages call each action when they say who may take it.
VERBS = {
    Action.VIEW_BODIES: "see message bodies",
    Action.VIEW_UNMASKED: "see unmasked bodies",
    Action.EXPORT: "export messages",
    Action.REDRIVE: "redrive",
    Action.REPLAY: "replay",
    Action.REPUBLISH: "re-publish events",
    Action.EDIT_RESEND: "edit and resend messages",
    Action.DELETE: "delete messages",
    Action.CANCEL: "cancel operations",
}
_CACHE_ATTR = "_eventops_actions"
_BY_CODENAME = {action.value: action for action in Action}


def read_only() -> bool:
    return bool(getattr(settings, "EVENTOPS_READ_ONLY", False))


def split_group(name: str) -> tuple[str, str]:
    """``operator@staging`` -> ("operator", "staging"); ``viewer`` -> ("viewer", "")."""
    base, _, scope = name.partition("@")
    return base, scope


def _group_actions() -> dict[str, set[Action]]:
    """The actions each group's own permissions grant, by group name."""
    granted: dict[str, set[Action]] = {}
    rows = Group.objects.filter(permissions__content_type__app_label=APP).values_list(
        "name", "permissions__codename"
    )
    for name, codename in rows:
        if codename in _BY_CODENAME:
            granted.setdefault(name, set()).add(_BY_CODENAME[codename])
    return granted


def actions_for(user: Any, environment: str) -> frozenset[Action]:
    """Every action ``user`` may take in ``environment`` (read-only mode aside)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return frozenset()
    if not getattr(user, "is_active", True):
        return frozenset()
    if getattr(user, "is_superuser", False):
        return ADMIN
    cache: dict[str, frozenset[Action]] = user.__dict__.setdefault(_CACHE_ATTR, {})
    if environment in cache:
        return cache[environment]
    by_group = _group_actions()
    actions: set[Action] = set()
    for name in user.groups.values_list("name", flat=True):
        base, scope = split_group(name)
        if scope and scope != environment:
            continue
        actions |= by_group.get(name, set())
        if scope:
            actions |= by_group.get(base, set())
    for codename in user.user_permissions.filter(content_type__app_label=APP).values_list(
        "codename", flat=True
    ):
        if codename in _BY_CODENAME:
            actions.add(_BY_CODENAME[codename])
    cache[environment] = frozenset(actions)
    return cache[environment]


def allows(user: Any, action: Action, environment: str) -> bool:
    """Whether ``user`` may take ``action`` in ``environment``: the one decision."""
    if action in MUTATIONS and read_only():
        return False
    return action in actions_for(user, environment)


def who_can(action: Action, environment: str) -> str:
    """Who may take ``action`` here, for the message a page shows instead of the button."""
    if action in MUTATIONS and read_only():
        return "Nobody: the dashboard is in read-only mode (EVENTOPS_READ_ONLY)."
    groups = sorted(
        name
        for name, granted in _group_actions().items()
        if action in granted and split_group(name)[1] in ("", environment)
    )
    verb = VERBS[action]
    if not groups:
        return f"Only superusers can {verb} here."
    return f"Only members of {', '.join(groups)} can {verb} here."


def may_see(user: Any, environment: str) -> bool:
    """Whether ``user`` may look at ``environment`` at all: any role there, or no group
    scoped to some environment (a plain logged-in user sees every environment read-only,
    as before environments existed; ``viewer@prod`` alone sees only prod)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if actions_for(user, environment) or getattr(user, "is_superuser", False):
        return True
    return not any(split_group(name)[1] for name in user.groups.values_list("name", flat=True))


def visible_environments(user: Any) -> list[Any]:
    """The environments ``user`` may look at, in the file's order."""
    from operations import environments

    return [env for env in environments.all_environments() if may_see(user, env.name)]


def require(request: HttpRequest, action: Action, environment: str) -> None:
    """Raise 403 (saying who may) unless the request's user may take ``action``."""
    if not allows(request.user, action, environment):
        raise PermissionDenied(who_can(action, environment))


def forget(user: Any) -> None:
    """Drop what ``actions_for`` remembered on this user object (after a group change)."""
    user.__dict__.pop(_CACHE_ATTR, None)


def require_here(request: HttpRequest, action: Action) -> None:
    """``require`` in the request's (the current) environment."""
    require(request, action, _default_environment())


# --- the former two-role helper, for code that asks "may this user run operations?" ------


def _default_environment() -> str:
    from operations import environments

    return environments.current().name


def is_operator(user: Any) -> bool:
    """Whether ``user`` may start and cancel operations in the current environment."""
    return allows(user, Action.REDRIVE, _default_environment())
