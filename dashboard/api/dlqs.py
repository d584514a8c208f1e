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
from operations import dlq, environments, masking, topology
from operations import redrive as engine
from operations.access import Action
from operations.aws.errors import AwsError
from operations.enqueue import QueueUnavailable

router = Router(tags=["DLQs"])
PEEK_LIMIT = 50
PEEK_NOTE = (
    "Peeking receives the messages: they stay hidden for visibility_seconds and their "
    "receive count rises (SQS has no read-only peek)."
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
    """Up to ``limit`` messages, masked as you may see them (bodies only with the
    view-bodies permission)."""
    with environment_scope(request, environment) as env:
        found = _dlq(name)
        try:
            peeked = dlq.peek(found.url, limit=params.limit)
        except AwsError as exc:
            raise Problem(502, str(exc), kind="aws-error") from None
        viewer = Viewer(request, env.name)
        return {
            "queue": name,
            "visibility_seconds": peeked.visibility_seconds,
            "note": PEEK_NOTE,
            "messages": [viewer.message(m) for m in peeked.messages],
        }


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
    form = StartForm(form_data(body), sources=source_choices(found.url))
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
