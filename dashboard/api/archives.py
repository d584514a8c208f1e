"""Archives and replays: the list, and a replay (previewed with ``dry_run``)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from ninja import Query, Router

from dashboard.api import schemas
from dashboard.api.auth import environment_scope, require
from dashboard.api.idempotency import Answer, idempotent
from dashboard.api.pagination import ListParams, page
from dashboard.api.problems import Problem
from dashboard.api.render import Viewer, absolute, iso
from dashboard.environment import env_url
from operations import archive as reads
from operations import replay
from operations.access import Action
from operations.archive import QueryTimedOut
from operations.aws import events

router = Router(tags=["Archives"])


def _archive(request: HttpRequest, a: events.ArchiveDetail) -> dict[str, Any]:
    return {
        "name": a.name,
        "arn": a.arn,
        "bus": a.bus_name,
        "state": a.state,
        "retention_days": a.retention_days,
        "event_count": a.event_count,
        "size_bytes": a.size_bytes,
        "created_at": iso(a.created_at),
        "page": absolute(request, env_url("archive_detail", a.name)),
    }


@router.get("/env/{environment}/archives/", response={200: schemas.PageOut}, summary="Archives")
def archive_list(request: HttpRequest, environment: str, params: Query[ListParams]) -> Any:
    with environment_scope(request, environment):
        found = reads.list_archive_details()
        if found.value is None:
            raise Problem(502, found.error or "Listing archives failed.", kind="aws-error")
        rows = sorted(found.value, key=lambda a: a.name)
        return page(request, rows, params.limit, params.offset, lambda a: _archive(request, a))


@router.post(
    "/env/{environment}/archives/{name}/replay",
    response={
        200: schemas.ReplayPreviewOut,
        202: schemas.OperationOut,
        403: schemas.ProblemOut,
        404: schemas.ProblemOut,
        409: schemas.ProblemOut,
        422: schemas.ProblemOut,
    },
    summary="Replay a window of the archive (or preview it with dry_run)",
)
def replay_start(
    request: HttpRequest, environment: str, name: str, body: schemas.ReplayIn
) -> JsonResponse:
    """Replay events archived between ``start`` and ``end`` (ISO 8601 with a zone) to the
    bus's rules (all, or ``rules``). ``dry_run`` answers 200 with the preview (counts by
    detail type and rule, idempotency warnings); otherwise 202 with the operation."""
    with environment_scope(request, environment) as env:
        if not body.dry_run:
            require(request, Action.REPLAY, env.name)

        def handle() -> Answer:
            try:
                view = reads.cached_archive(name).value
            except reads.ArchiveNotFound:
                raise Problem(404, f"No archive named {name}.", kind="not-found") from None
            if view is None:
                raise Problem(502, f"Archive {name} could not be read.", kind="aws-error")
            try:
                plan = replay.plan_replay(view, body.start, body.end, body.rules)
            except replay.ReplayRequestError as exc:
                raise Problem(422, str(exc), kind="validation-error") from None
            if body.dry_run:
                return _preview(plan)
            if not body.reason.strip():
                raise Problem(422, "A reason is required: it goes into the audit trail.")
            try:
                op = replay.start_replay_operation(plan, reason=body.reason, user=request.user)
            except replay.ReplayRequestError as exc:
                raise Problem(409, str(exc), kind="replay-refused") from None
            return 202, Viewer(request, env.name).operation(request, op)

        return idempotent(request, body.model_dump(mode="json"), handle)


def _preview(plan: replay.ReplayPlan) -> Answer:
    try:
        found = replay.preview(plan)
    except QueryTimedOut as exc:
        raise Problem(504, str(exc), kind="query-timed-out") from None
    return 200, {
        "dry_run": True,
        "total": found.total,
        "truncated": found.truncated,
        "delivered": found.delivered,
        "by_detail_type": [{"detail_type": k, "count": n} for k, n in found.by_detail_type],
        "by_rule": [{"rule": k, "count": n} for k, n in found.by_rule],
        "idempotency_skipped": found.idempotency.skipped_by_consumer,
        "warnings": [*plan.warnings, *found.warnings],
    }
