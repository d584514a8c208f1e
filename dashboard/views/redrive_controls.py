"""A running redrive's pipelines and rate: the live figures, and lowering (or raising, or
lifting) its rate limit without cancelling it. Who changed it and when is recorded."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling

from dashboard.environment import environment_of, operation_url
from dashboard.forms import RateForm
from dashboard.http import HtmxHttpRequest
from dashboard.views.dlq_common import user_name
from dashboard.views.operations import detail_context
from operations import redrive_parts
from operations.access import Action, require_here
from operations.models import Operation
from operations.redrive_rate import set_rate


def _redrive(request: HtmxHttpRequest, pk: int) -> Operation:
    return get_object_or_404(
        Operation, pk=pk, kind=Operation.Kind.REDRIVE, environment=environment_of(request).name
    )


@require_GET
@vary_on_headers("HX-Request")
def redrive_live(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Live rate, pipelines and rate limit; polling stops (HTTP 286) once it finished."""
    op = redrive_parts.live_totals(_redrive(request, pk))
    response = render(request, "operations/_redrive_live.html", {"op": op})
    if request.htmx and op.is_finished:
        return HttpResponseStopPolling(response.content)
    return response


@require_POST
def redrive_rate(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Change the rate limit of a running redrive (the redrive permission; read-only
    refuses). The worker applies it within a second."""
    require_here(request, Action.REDRIVE)
    op = _redrive(request, pk)
    form = RateForm(request.POST)
    if form.is_valid():
        rate = form.cleaned_data["rate"]
        if set_rate(op.pk, rate, by=user_name(request)):
            limit = f"{rate:g} messages/s" if rate else "no limit"
            messages.success(request, f"Rate limit of redrive #{op.pk} set to {limit}.")
            return redirect(operation_url(op))
        form.add_error("rate", "This redrive has finished: its rate can no longer change.")
    context = {**detail_context(request, op), "rate_form": form}
    return render(request, "operations/detail.html", context, status=400)
