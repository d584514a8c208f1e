"""Operations: the audit list, one operation with live progress, and cancel."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling

from dashboard.environment import env_url, environment_of, operation_url
from dashboard.forms import CancelForm
from dashboard.http import HtmxHttpRequest
from dashboard.views.dlq_common import seen_loops, user_name
from operations import access, cancel, masking, redrive_parts
from operations.access import Action, require_here
from operations.models import Operation

FILTERS = ("environment", "kind", "state", "user", "target")
# Kinds whose target is a DLQ, so that its messages page is the place to look next.
DLQ_KINDS = frozenset(
    {
        Operation.Kind.REDRIVE,
        Operation.Kind.NATIVE_REDRIVE,
        Operation.Kind.DELETE_MESSAGES,
        Operation.Kind.EDIT_RESEND,
    }
)


@require_GET
def operation_list(request: HtmxHttpRequest) -> HttpResponse:
    """Every operation, newest first, filterable by kind, state, user and target. The parts
    of a redrive split across workers are on its page, not here."""
    chosen = {key: request.GET.get(key, "").strip()[:200] for key in FILTERS}
    rows = Operation.objects.filter(
        environment__in=environment_scope(request, chosen), parent__isnull=True
    )
    if chosen["kind"]:
        rows = rows.filter(kind=chosen["kind"])
    if chosen["state"]:
        rows = rows.filter(state=chosen["state"])
    if chosen["user"]:
        rows = rows.filter(requested_by_name__icontains=chosen["user"])
    if chosen["target"]:
        rows = rows.filter(target__icontains=chosen["target"])
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    for op in page:
        redrive_parts.live_totals(op)  # a running split redrive: its parts' sums
    query = urlencode({k: v for k, v in chosen.items() if v})
    context = {
        "page": page,
        "chosen": chosen,
        "query": query,
        "kinds": Operation.Kind.choices,
        "states": Operation.State.choices,
        "environments": access.visible_environments(request.user),
    }
    return render(request, "operations/list.html", context)


def environment_scope(request: HtmxHttpRequest, chosen: dict[str, str]) -> list[str]:
    """The environments a list shows: this one, another the user may see, or every one they
    may see ("all"); ``chosen["environment"]`` is set to what was taken."""
    here = environment_of(request).name
    visible = [env.name for env in access.visible_environments(request.user)]
    scope = chosen["environment"] if chosen["environment"] in [*visible, "all"] else here
    chosen["environment"] = scope
    return visible if scope == "all" else [scope]


@require_GET
def operation_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """One operation: who, why, parameters, outcome, live progress, loops seen since."""
    op = get_object_or_404(Operation, pk=pk, environment=environment_of(request).name)
    return render(request, "operations/detail.html", detail_context(request, op))


def detail_context(
    request: HtmxHttpRequest, op: Operation, cancel_form: CancelForm | None = None
) -> dict[str, object]:
    # Parameters and outcome can hold bodies (an edited body, deleted ones, a diff) and
    # filters typed by someone else: masked, like the bodies, for who must see them so.
    shown = shown_for(request, op)
    return {
        "op": op,
        "masked": shown is masking.mask_record,
        "reason": shown(op.reason),
        "cancel_reason": shown(op.cancel_reason),
        "cancel_form": cancel_form or CancelForm(),
        "loops": seen_loops(op.pk),
        "parameters_json": json.dumps(shown(op.parameters), indent=2, sort_keys=True),
        "outcome_json": outcome_json(op, shown),
        "links": related_links(op),
        **progress_context(op),
    }


def _same(value: object) -> object:
    return value


def outcome_json(op: Operation, shown: Callable[[Any], Any]) -> str:
    """The outcome as this person may see it (masked unless they may see it unmasked)."""
    return json.dumps(shown(op.outcome), indent=2, sort_keys=True) if op.outcome else ""


def shown_for(request: HtmxHttpRequest, op: Operation) -> Callable[[Any], Any]:
    return masking.mask_record if masking.must_mask(request.user, op.environment) else _same


@require_GET
@vary_on_headers("HX-Request")
def operation_progress(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The progress fragment; polling stops (HTTP 286) once the operation is finished."""
    op = get_object_or_404(Operation, pk=pk, environment=environment_of(request).name)
    context = {
        "op": op,
        "oob": True,
        "outcome_json": outcome_json(op, shown_for(request, op)),
        **progress_context(op),
    }
    response = render(request, "operations/_progress.html", context)
    if request.htmx and op.is_finished:
        return HttpResponseStopPolling(response.content)
    return response


@require_POST
def operation_cancel(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Ask the operation to stop, saying why; who, when and why are recorded.

    A replay or a native redrive is cancelled in AWS at once (CancelReplay,
    CancelMessageMoveTask) and stays running until AWS confirms; other kinds stop
    between batches; a pending operation is cancelled at once."""
    require_here(request, Action.CANCEL)
    op = get_object_or_404(Operation, pk=pk, environment=environment_of(request).name)
    form = CancelForm(request.POST)
    if not form.is_valid():
        context = detail_context(request, op, cancel_form=form)
        return render(request, "operations/detail.html", context, status=400)
    result = cancel.cancel(op, by=user_name(request), reason=form.cleaned_data["reason"])
    report_cancel(request, result)
    return redirect(operation_url(op))


def report_cancel(request: HtmxHttpRequest, result: cancel.CancelResult) -> None:
    """Tell the person what became of their cancel."""
    if result.status == cancel.REFUSED:
        messages.error(request, result.message)
    elif result.status == cancel.FINISHED:
        messages.info(request, result.message)
    else:
        messages.success(request, result.message)


def _url(name: str, *args: object) -> str:
    return env_url(name, *args)


def related_links(op: Operation) -> list[dict[str, str]]:
    """Where to look next: the DLQ's messages, or the archive a replay or re-publish used."""
    links = []
    if op.kind in DLQ_KINDS and op.target_label:
        url = _url("operations:dlq_messages", op.target_label)
        links.append({"label": f"Messages in {op.target_label}", "url": url})
    elif op.kind in (Operation.Kind.REPLAY, Operation.Kind.REPUBLISH):
        archive = str(op.parameters.get("archive_name") or "")
        if archive:
            url = _url("archive_detail", archive)
            links.append({"label": f"Archive {archive}", "url": url})
    return [link for link in links if link["url"]]


def progress_context(op: Operation) -> dict[str, object]:
    """Rate (messages/s) and ETA (seconds) from the counters and the time it ran (from
    start to end, or to now while it runs: the same figure live and after a reload);
    for a replay, its progress across the window instead (``replay``). A redrive split
    across workers shows its parts' sums, and its parts (``parts``)."""
    redrive_parts.live_totals(op)
    parts = redrive_parts.part_rows(op)
    processed = op.processed
    end = op.finished_at or timezone.now()
    elapsed = (end - op.started_at).total_seconds() if op.started_at else 0.0
    if op.kind == Operation.Kind.REPLAY:
        return {"processed": processed, "replay": replay_progress(op, elapsed), "parts": parts}
    rate = processed / elapsed if elapsed > 0 and processed else None
    remaining = max(0, op.total - processed) if op.total is not None else None
    eta = int(remaining / rate) if rate and remaining is not None and op.is_active else None
    return {
        "processed": processed,
        "rate": rate,
        "eta_seconds": eta,
        "remaining": remaining,
        "parts": parts,
    }


def replay_progress(op: Operation, elapsed: float) -> dict[str, object]:
    """What DescribeReplay last said (the task saves it): EventLastReplayedTime across the
    window as a percentage, and the time left at the pace so far."""
    progress = op.progress if isinstance(op.progress, dict) else {}
    try:
        fraction = min(1.0, max(0.0, float(progress.get("fraction") or 0)))
    except (TypeError, ValueError):
        fraction = 0.0
    eta = None
    if op.is_active and elapsed > 0 and 0 < fraction < 1:
        eta = int(elapsed * (1 - fraction) / fraction)
    return {
        "state": str(progress.get("state") or ""),
        "percent": int(fraction * 100),
        "last_replayed": _time(progress.get("last_replayed")),
        "start": _time(op.parameters.get("start")),
        "end": _time(op.parameters.get("end")),
        "eta_seconds": eta,
    }


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
