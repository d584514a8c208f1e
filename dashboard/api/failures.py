"""Failure groups (issue 15): the environment's groups, worst first, masked like every body."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router

from dashboard.api import schemas
from dashboard.api.auth import environment_scope
from dashboard.api.pagination import ListParams, page
from dashboard.api.render import Viewer
from operations.triage.groups import worst_first
from operations.triage.models import FailureGroup

router = Router(tags=["Failure groups"])


def _time(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


@router.get(
    "/env/{environment}/failure-groups/",
    response={200: schemas.PageOut},
    summary="Failure groups, worst first",
)
def failure_groups(request: HttpRequest, environment: str, params: Query[ListParams]) -> Any:
    """Open groups first (regressions before the rest), then acknowledged, then resolved and
    ignored; by count, then last seen. Titles and samples are masked for whoever must see
    bodies masked."""
    with environment_scope(request, environment) as env:
        viewer = Viewer(request, env.name)

        def row(group: FailureGroup) -> dict[str, Any]:
            return {
                "id": group.pk,
                "environment": group.environment,
                "dlq": group.dlq_name,
                "signature": group.key,
                "consumer": group.consumer,
                "exception_name": group.exception_name,
                "title": viewer.text(group.title),
                "top_frame": group.top_frame,
                "count": group.count,
                "state": group.state,
                "regressed_at": _time(group.regressed_at),
                "first_seen": _time(group.first_seen),
                "last_seen": _time(group.last_seen),
                "sample_message_ids": list(group.sample_message_ids),
                "sample_excerpt": viewer.text(group.sample_excerpt),
                "sample_correlation_id": group.sample_correlation_id,
                "note": viewer.text(group.note),
            }

        return page(request, worst_first(env.name), params.limit, params.offset, row)
