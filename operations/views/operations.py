"""Operations: the audit list, one operation with live progress, and cancel."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling

from dashboard.http import HtmxHttpRequest
from operations.access import is_operator, require_operator
from operations.models import Operation
from operations.views.common import seen_loops

FILTERS = ("kind", "state", "user", "target")


@require_GET
def operation_list(request: HtmxHttpRequest) -> HttpResponse:
    """Every operation, newest first, filterable by kind, state, user and target."""
    chosen = {key: request.GET.get(key, "").strip()[:200] for key in FILTERS}
    rows = Operation.objects.all()
    if chosen["kind"]:
        rows = rows.filter(kind=chosen["kind"])
    if chosen["state"]:
        rows = rows.filter(state=chosen["state"])
    if chosen["user"]:
        rows = rows.filter(requested_by_name__icontains=chosen["user"])
    if chosen["target"]:
        rows = rows.filter(target__icontains=chosen["target"])
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    query = urlencode({k: v for k, v in chosen.items() if v})
    context = {
        "page": page,
        "chosen": chosen,
        "query": query,
        "kinds": Operation.Kind.choices,
        "states": Operation.State.choices,
    }
    return render(request, "operations/list.html", context)


@require_GET
def operation_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """One operation: who, why, parameters, outcome, live progress, loops seen since."""
    op = get_object_or_404(Operation, pk=pk)
    context = {
        "op": op,
        "is_operator": is_operator(request.user),
        "loops": seen_loops(op.pk),
        "parameters_json": json.dumps(op.parameters, indent=2, sort_keys=True),
        "outcome_json": json.dumps(op.outcome, indent=2, sort_keys=True) if op.outcome else "",
        **progress_context(op),
    }
    return render(request, "operations/detail.html", context)


@require_GET
@vary_on_headers("HX-Request")
def operation_progress(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The progress fragment; polling stops (HTTP 286) once the operation is finished."""
    op = get_object_or_404(Operation, pk=pk)
    response = render(request, "operations/_progress.html", {"op": op, **progress_context(op)})
    if request.htmx and op.is_finished:
        return HttpResponseStopPolling(response.content)
    return response


@require_POST
def operation_cancel(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Ask the task to stop between batches (a pending operation is cancelled at once)."""
    require_operator(request)
    op = get_object_or_404(Operation, pk=pk)
    if op.request_cancel():
        messages.success(request, "Cancellation requested: it stops after the current batch.")
    else:
        messages.info(request, "This operation has already finished.")
    return redirect("operations:detail", pk=op.pk)


def progress_context(op: Operation) -> dict[str, object]:
    """Rate (messages/s) and ETA (seconds) from the counters and the start time."""
    processed = op.processed
    elapsed = (timezone.now() - op.started_at).total_seconds() if op.started_at else 0.0
    rate = processed / elapsed if elapsed > 0 and processed else None
    remaining = max(0, op.total - processed) if op.total is not None else None
    eta = int(remaining / rate) if rate and remaining is not None and op.is_active else None
    return {"processed": processed, "rate": rate, "eta_seconds": eta, "remaining": remaining}
