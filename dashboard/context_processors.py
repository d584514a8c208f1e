"""Template context shared by every page: the environment, its switcher, the navigation."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.urls import NoReverseMatch, resolve
from django.urls.exceptions import Resolver404

from dashboard.environment import env_reverse, environment_of
from operations import access, masking
from operations.environments import Environment

# (label, URL name), every one inside the environment.
NAV_ITEMS = (
    ("Overview", "overview"),
    ("Queues", "queues"),
    ("Alarms", "alarms"),
    ("Failures", "failures"),
    ("Traces", "correlation"),
    ("Archive", "archives"),
    ("Schemas", "schemas"),
    ("Operations", "operations:list"),
)


def _url(name: str, environment: str) -> str | None:
    try:
        return env_reverse(name, environment=environment)
    except NoReverseMatch:
        return None


def navigation(request: HttpRequest) -> dict[str, object]:
    env = environment_of(request)
    items = []
    for label, name in NAV_ITEMS:
        url = _url(name, env.name)
        if url is not None:
            items.append({"label": label, "url": url, "active": _is_active(request.path, url)})
    user = getattr(request, "user", None)
    visible = access.visible_environments(user) if user is not None else []
    return {
        "env": env,
        "in_environment": getattr(request, "environment", None) is not None,
        "switcher": [
            {"env": other, "url": _same_page(request, env, other), "current": other == env}
            for other in visible
        ],
        "nav_items": items,
        "search_url": _url("correlation", env.name),
        "aws_endpoint": env.endpoint_url,
        "aws_endpoint_host": env.where if env.endpoint_url else "",
        "aws_region": env.region or settings.AWS_REGION,
        "poll_seconds": settings.EVENTOPS_POLL_SECONDS,
        "role_badge": _role(user, env.name),
        # {% if can.redrive %}: what the user may do here; who_can.redrive says who may.
        "can": {
            action.name.lower(): access.allows(user, action, env.name) for action in access.Action
        },
        "who_can": _WhoCan(env.name),
        "read_only": access.read_only(),
        "masking_on": masking.enabled(),
    }


class _WhoCan:
    """``who_can.delete`` in a template: computed only when a page shows it."""

    def __init__(self, environment: str) -> None:
        self.environment = environment

    def __getitem__(self, name: str) -> str:
        return access.who_can(access.Action[name.upper()], self.environment)


def _role(user: object, environment: str) -> str:
    """What the user is here, for the badge next to the name."""
    actions = access.actions_for(user, environment)
    if actions >= access.ADMIN:
        return "admin"
    if access.Action.REDRIVE in actions:
        return "operator"
    return "viewer"


def _same_page(request: HttpRequest, current: Environment, other: Environment) -> str:
    """The page of the same name in ``other`` when it takes no object (a list, the
    overview), else ``other``'s overview: a queue of prod need not exist in staging."""
    fallback = _url("overview", other.name) or "/"
    if getattr(request, "environment", None) is None:
        return fallback
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return fallback
    if match.args or set(match.kwargs) - {"env"}:
        return fallback
    return _url(match.view_name, other.name) or fallback


def _is_active(path: str, url: str) -> bool:
    if url.rstrip("/").count("/") <= 2:  # the overview, /env/<name>/
        return path == url
    return path.startswith(url)
