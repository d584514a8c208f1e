"""Operations: the audit list of one environment, one operation, and cancel."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from ninja import Field, Query, Router

from dashboard.api import schemas
from dashboard.api.auth import environment_scope, require
from dashboard.api.idempotency import Answer, idempotent
from dashboard.api.pagination import ListParams, page
from dashboard.api.problems import Problem
from dashboard.api.render import Viewer
from operations import cancel as cancelling
from operations.access import Action
from operations.models import Operation

router = Router(tags=["Operations"])


class OperationFilters(ListParams):
    kind: str = Field("", max_length=32)
    state: str = Field("", max_length=16)
    target: str = Field("", max_length=200)


def _operation(environment: str, pk: int) -> Operation:
    op = Operation.objects.filter(pk=pk, environment=environment).first()
    if op is None:
        raise Problem(404, f"No operation #{pk} in {environment}.", kind="not-found")
    return op


@router.get(
    "/env/{environment}/operations/",
    response={200: schemas.PageOut, 422: schemas.ProblemOut},
    summary="Operations",
)
def operation_list(request: HttpRequest, environment: str, filters: Query[OperationFilters]) -> Any:
    """Newest first; filter by ``kind``, ``state`` and ``target`` (a substring). A redrive
    split across workers is one row, with its parts' sums and its ``parts``; a part is
    read by its ID."""
    with environment_scope(request, environment) as env:
        rows = Operation.objects.filter(environment=env.name, parent__isnull=True)
        if filters.kind:
            if filters.kind not in Operation.Kind.values:
                raise Problem(422, f"kind must be one of {', '.join(Operation.Kind.values)}.")
            rows = rows.filter(kind=filters.kind)
        if filters.state:
            if filters.state not in Operation.State.values:
                raise Problem(422, f"state must be one of {', '.join(Operation.State.values)}.")
            rows = rows.filter(state=filters.state)
        if filters.target:
            rows = rows.filter(target__icontains=filters.target)
        viewer = Viewer(request, env.name)
        return page(
            request, rows, filters.limit, filters.offset, lambda op: viewer.operation(request, op)
        )


@router.get(
    "/env/{environment}/operations/{int:pk}",
    response={200: schemas.OperationOut, 404: schemas.ProblemOut},
    summary="One operation",
)
def operation_detail(request: HttpRequest, environment: str, pk: int) -> Any:
    """Its ``state``, counters (``moved``, ``failed``, ``skipped``...), outcome and page."""
    with environment_scope(request, environment) as env:
        return Viewer(request, env.name).operation(request, _operation(env.name, pk))


@router.post(
    "/env/{environment}/operations/{int:pk}/cancel",
    response={
        202: schemas.CancelOut,
        403: schemas.ProblemOut,
        404: schemas.ProblemOut,
        409: schemas.ProblemOut,
    },
    summary="Cancel an operation",
)
def operation_cancel(
    request: HttpRequest, environment: str, pk: int, body: schemas.CancelIn
) -> JsonResponse:
    """Ask it to stop (the reason is recorded). 202 with what became of the request; 409
    when it had already finished or AWS refused."""
    with environment_scope(request, environment) as env:
        require(request, Action.CANCEL, env.name)

        def handle() -> Answer:
            op = _operation(env.name, pk)
            result = cancelling.cancel(
                op, by=str(request.user.get_username()), reason=body.reason.strip()
            )
            op.refresh_from_db()
            viewer = Viewer(request, env.name)
            if result.status in (cancelling.REFUSED, cancelling.FINISHED):
                raise Problem(409, result.message, kind=f"cancel-{result.status}", state=op.state)
            return 202, {
                "status": result.status,
                "message": result.message,
                "operation": viewer.operation(request, op),
            }

        return idempotent(request, body.model_dump(mode="json"), handle)
