"""Failure groups (issue 15): listed when the triage model exists in this build.

The model (``operations.models.FailureGroup``) is added by the failure-groups work; until
it is merged this endpoint answers a 501 problem. Each group is rendered from the fields it
has (``title``, ``environment``, ``count``, and, when present, ``state``, ``signature``,
``first_seen``, ``last_seen``), masked like every other body."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router

from dashboard.api import schemas
from dashboard.api.auth import environment_scope
from dashboard.api.pagination import ListParams, page
from dashboard.api.problems import Problem
from dashboard.api.render import Viewer

router = Router(tags=["Failure groups"])
OPTIONAL = ("state", "signature", "first_seen", "last_seen")


def group_model() -> Any:
    from operations import models

    return getattr(models, "FailureGroup", None)


def _json(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


@router.get(
    "/env/{environment}/failure-groups/",
    response={200: schemas.PageOut, 501: schemas.ProblemOut},
    summary="Failure groups",
)
def failure_groups(request: HttpRequest, environment: str, params: Query[ListParams]) -> Any:
    with environment_scope(request, environment) as env:
        model = group_model()
        if model is None:
            raise Problem(
                501, "Failure groups are not available in this version.", kind="not-implemented"
            )
        viewer = Viewer(request, env.name)

        def row(group: Any) -> dict[str, Any]:
            found = {
                "id": group.pk,
                "title": viewer.text(str(group.title)),
                "environment": group.environment,
                "count": group.count,
            }
            for name in OPTIONAL:
                if hasattr(group, name):
                    found[name] = _json(getattr(group, name))
            return found

        rows = model.objects.filter(environment=env.name).order_by("-pk")
        return page(request, rows, params.limit, params.offset, row)
