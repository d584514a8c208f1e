"""DLQs: the list, one DLQ (sources, depth), a peek at its messages, and redrive (a dry
run previews; otherwise an Operation starts through the same service as the page)."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.db import IntegrityError
from django.http import Http404, HttpRequest, JsonResponse
from ninja import Query, Router

from dashboard.api import schemas
from dashboard.api.auth import environment_scope, require
from dashboard.api.idempotency import Answer, idempotent
from dashboard.api.pagination import ListParams, page
from dashboard.api.problems import Problem
from dashboard.api.render import Viewer, absolute, groups, queue
from dashboard.environment import env_url
from dashboard.forms import FilterForm, StartForm
from dashboard.views.dlq_common import Dlq, resolve_dlq, source_choices
from operations import dlq, dlq_peek, environments, masking, read_audit, topology
from operations import redrive as engine
from operations.access import Action
from operations.aws.errors import AwsError
from operations.enqueue import QueueUnavailable
from operations.triage import scan, table

router = Router(tags=["DLQs"])
PEEK_LIMIT = 50
PEEK_NOTE = (
    "These are the messages of the peek every viewer shares (one per DLQ per cache period): "
    "it released them at once, so nothing stays hidden; their receive count rose by one "
    "(SQS has no read-only peek)."
)


def _dlq(name: str) -> Dlq:
    try:
        return resolve_dlq(name)
    except Http404 as exc:
        raise Problem(404, str(exc) or "No such dead-letter queue.", kind="not-found") from None
    except AwsError as exc:
        raise Problem(502, str(exc), kind="aws-error") from None


@router.get("/env/{environment}/dlqs/", response={200: schemas.PageOut}, summary="DLQs")
def dlq_list(request: HttpRequest, environment: str, params: Query[ListParams]) -> Any:
    """Every dead-letter queue the dashboard discovered, with its depth and sources."""
    with environment_scope(request, environment):
        inventory = topology.queues()
        if inventory.value is None:
            raise Problem(502, inventory.error or "Queue discovery failed.", kind="aws-error")
        value = inventory.value
        dlqs = sorted(
            (q for q in value.queues.values() if q.name in value.dlq_names), key=lambda q: q.name
        )

        def row(q: Any) -> dict[str, Any]:
            sources = [{"name": s.name, "arn": s.arn} for s in value.sources_of(q.name)]
            page_path = env_url("operations:dlq_messages", q.name)
            return {
                **queue(q),
                "depth": q.visible + q.in_flight,
                "sources": sources,
                "page": absolute(request, page_path),
            }

        return page(request, dlqs, params.limit, params.offset, row)


@router.get("/env/{environment}/dlqs/{name}", response={200: schemas.DlqOut}, summary="One DLQ")
def dlq_detail(request: HttpRequest, environment: str, name: str) -> Any:
    with environment_scope(request, environment):
        found = _dlq(name)
        try:
            sources = source_choices(found.url)
        except AwsError as exc:
            raise Problem(502, str(exc), kind="aws-error") from None
        attrs = found.attributes
        return {
            **queue(attrs),
            "depth": attrs.visible + attrs.in_flight,
            "sources": [{"arn": arn, "name": label} for arn, label in sources],
            "page": absolute(request, env_url("operations:dlq_messages", name)),
        }


class PeekParams(schemas.Schema):
    limit: int = schemas.Field(10, ge=1, le=PEEK_LIMIT)


@router.get(
    "/env/{environment}/dlqs/{name}/messages",
    response={200: schemas.PeekOut},
    summary="Peek at a DLQ's messages",
)
def dlq_messages(
    request: HttpRequest, environment: str, name: str, params: Query[PeekParams]
) -> Any:
    """Up to ``limit`` messages of the shared peek, masked as you may see them (bodies only
    with the view-bodies permission). The read is audited."""
    with environment_scope(request, environment) as env:
        found = _dlq(name)
        shared = dlq_peek.shared_peek(found.url)
        if shared.value is None:
            raise Problem(502, shared.error, kind="aws-error")
        viewer = Viewer(request, env.name)
        messages = shared.value.messages()[: params.limit]
        if viewer.bodies and messages:
            _audit(request, env.name, name, len(messages), viewer)
        return {
            "queue": name,
            "visibility_seconds": 0,
            "note": PEEK_NOTE,
            "messages": [viewer.message(m) for m in messages],
        }


class ScanParams(ListParams):
    group: str = schemas.Field("", pattern=r"^([0-9a-f]{32})?$")
    event_type: str = schemas.Field("", max_length=128)
    correlation_id: str = schemas.Field("", max_length=256)
    q: str = schemas.Field("", max_length=200, description="Text in the masked excerpt or error.")
    sort: str = schemas.Field(table.DEFAULT_SORT, pattern=r"^-?[a-z_]+$")


@router.get(
    "/env/{environment}/dlqs/{name}/scan",
    response={200: schemas.ScanPageOut},
    summary="The latest scan's messages",
)
def dlq_scan_results(
    request: HttpRequest, environment: str, name: str, params: Query[ScanParams]
) -> Any:
    """The rows the latest scan of the DLQ stored (its state under ``scan``), filtered and
    sorted like the page's table. Excerpts and errors are stored masked; reading them needs
    the view-bodies permission and is audited."""
    with environment_scope(request, environment) as env:
        require(request, Action.VIEW_BODIES, env.name)
        found = _dlq(name)
        latest = scan.latest_scan(found.url)
        if latest is None:
            raise Problem(404, f"{name} has not been scanned yet.", kind="not-scanned")
        filters = table.TableFilters(
            group=params.group,
            event_type=params.event_type,
            correlation_id=params.correlation_id,
            text=params.q.strip().lower(),
            sort=params.sort,
        )
        rows = table.scanned(latest.pk, filters)

        def row(r: Any) -> dict[str, Any]:
            return {
                "message_id": r.message_id,
                "sent_at": r.sent_at.isoformat() if r.sent_at else None,
                "receive_count": r.receive_count,
                "event_type": r.event_type,
                "correlation_id": r.correlation_id,
                "size": r.size,
                "group": r.group_key,
                "error": r.error,
                "excerpt": r.excerpt,
            }

        answer = page(request, rows, params.limit, params.offset, row)
        answer["scan"] = {
            "operation": latest.pk,
            "state": latest.state,
            "scanned": latest.moved,
            "finished_at": latest.finished_at.isoformat() if latest.finished_at else None,
        }
        _audit(request, env.name, name, len(answer["results"]), Viewer(request, env.name))
        return answer


def _audit(request: HttpRequest, environment: str, target: str, count: int, viewer: Viewer) -> None:
    read_audit.record(
        request.user,
        read_audit.ReadAudit.Kind.VIEWED_BODIES,
        target,
        count=count,
        unmasked=not viewer.mask,
        via=read_audit.ReadAudit.Via.API,
        environment=environment,
    )


def form_data(body: schemas.RedriveIn) -> dict[str, Any]:
    """The request in the page's form shape, so the API validates exactly as the page."""
    f = body.filters
    return {
        "event_type": f.event_type,
        "correlation_id": f.correlation_id,
        "attribute_name": f.attribute_name,
        "attribute_value": f.attribute_value,
        "contains": f.contains,
        "sent_after": f.sent_after.isoformat() if f.sent_after else "",
        "sent_before": f.sent_before.isoformat() if f.sent_before else "",
        "message_ids": " ".join(f.message_ids),
        "max_messages": body.max_messages or "",
        "rate": body.rate or "",
        "concurrency": body.concurrency or "",
        "workers": body.workers or "",
        "destination_arn": body.destination,
        "reason": body.reason,
    }


def invalid(form: FilterForm) -> Problem:
    errors = {field: [str(e) for e in errs] for field, errs in form.errors.items()}
    detail = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items())
    return Problem(422, detail, kind="validation-error", errors=errors)


@router.post(
    "/env/{environment}/dlqs/{name}/redrive",
    response={
        200: schemas.RedrivePreviewOut,
        202: schemas.OperationOut,
        403: schemas.ProblemOut,
        409: schemas.ProblemOut,
        422: schemas.ProblemOut,
    },
    summary="Redrive a DLQ (or preview it with dry_run)",
)
def redrive(
    request: HttpRequest, environment: str, name: str, body: schemas.RedriveIn
) -> JsonResponse:
    """Move the DLQ's messages (those matching ``filters``) back to their source queues.

    ``dry_run`` answers 200 with the count and a sample. Otherwise it answers 202 with the
    new operation (follow ``GET /operations/{id}``); 409 when another operation is active on
    this DLQ. Send an ``Idempotency-Key``: a retried call then returns the same operation."""
    with environment_scope(request, environment) as env:
        if not body.dry_run:
            require(request, Action.REDRIVE, env.name)

        def handle() -> Answer:
            found = _dlq(name)
            if body.dry_run:
                return _preview(request, env.name, found, body)
            return _start(request, found, body)

        return idempotent(request, body.model_dump(mode="json"), handle)


def _preview(request: HttpRequest, environment: str, found: Dlq, body: schemas.RedriveIn) -> Answer:
    form = FilterForm(form_data(body))
    if not form.is_valid():
        raise invalid(form)
    viewer = Viewer(request, environment)
    # Someone who sees bodies masked filters the masked bodies, as on the pages.
    preview = dlq.preview(found.url, dataclasses.replace(form.filters(), masked=viewer.mask))
    return 200, {
        "dry_run": True,
        "examined": preview.examined,
        "matching": len(preview.matching),
        "estimate": preview.estimate,
        "queue_depth": preview.queue_depth,
        "native": engine.native_redrive_enabled() and form.filters().is_empty,
        "by_event_type": groups(preview.by_event_type),
        "by_error": [{**g, "key": viewer.text(g["key"])} for g in groups(preview.by_error)],
        "sample": [viewer.message(m) for m in preview.sample],
    }


def _start(request: HttpRequest, found: Dlq, body: schemas.RedriveIn) -> Answer:
    fifo = found.url.endswith(".fifo")
    form = StartForm(form_data(body), sources=source_choices(found.url), fifo=fifo)
    if not form.is_valid():
        raise invalid(form)
    start = form.start_request(
        found.url,
        found.attributes.arn,
        request.user,
        str(request.user.get_username()),
        masked=masking.must_mask(request.user, environments.current_name()),
    )
    try:
        op = engine.start(start)
    except IntegrityError:
        running = engine.active_operation(found.url)
        raise Problem(
            409,
            f"Another operation is already running on {found.name}.",
            kind="operation-conflict",
            operation_id=running.pk if running else None,
        ) from None
    except QueueUnavailable:
        raise
    viewer = Viewer(request, op.environment)
    return 202, viewer.operation(request, op)
