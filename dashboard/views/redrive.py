"""Redrive: the filter form and preview (GET), then the confirmed start (POST)."""

from __future__ import annotations

import dataclasses

from django.contrib import messages
from django.db import IntegrityError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST

from dashboard.environment import operation_url
from dashboard.forms import FILTER_FIELDS, FilterForm, StartForm
from dashboard.http import HtmxHttpRequest
from dashboard.views.dlq_common import (
    aws_errors,
    masked_here,
    message_rows,
    queue_errors,
    record_read,
    resolve_dlq,
    source_choices,
    user_name,
)
from operations import dlq
from operations import redrive as engine
from operations.access import Action, require_here
from operations.aws.errors import AwsError
from operations.read_audit import ReadAudit


@require_GET
@aws_errors
def redrive_preview(request: HtmxHttpRequest, name: str) -> HttpResponse:
    """What a redrive with these filters would move: count, sample, groups; then confirm."""
    queue = resolve_dlq(name)
    form = FilterForm(request.GET or None)
    context: dict[str, object] = {
        "queue": queue,
        "form": form,
        "filter_fields": FILTER_FIELDS,
    }
    if not form.is_bound or not form.is_valid():
        return render(request, "dlq/redrive.html", context)
    masked = context["masked"] = masked_here(request)
    try:
        preview = dlq.preview(queue.url, dataclasses.replace(form.filters(), masked=masked))
        sources = source_choices(queue.url)
    except AwsError as exc:
        return render(request, "dlq/redrive.html", {**context, "error": exc})
    if masked:
        # The sample, its groups and errors as this person may see them.
        preview.matching = [m.masked for m in preview.matching]
        preview.by_event_type = dlq.group_by(preview.matching, "event_type")
        preview.by_error = dlq.group_by(preview.matching, "error")
    context["preview"] = preview
    context["sample"] = message_rows(preview.sample, {})
    kind = ReadAudit.Kind.VIEWED_BODIES
    record_read(request, kind, queue.name, len(preview.sample), masked=masked)
    initial = {**request.GET.dict(), "message_ids": form.cleaned_data["message_ids"]}
    fifo = queue.url.endswith(".fifo")
    context["start_form"] = StartForm(initial=initial, sources=sources, fifo=fifo)
    context["sources"] = sources
    context["has_filters"] = not form.filters().is_empty
    context["native"] = engine.native_redrive_enabled() and not context["has_filters"]
    return render(request, "dlq/redrive.html", context)


@require_POST
@aws_errors
@queue_errors
def redrive_start(request: HtmxHttpRequest, name: str) -> HttpResponse:
    """Write the Operation (one active per DLQ, enforced by the database) and enqueue it."""
    require_here(request, Action.REDRIVE)
    queue = resolve_dlq(name)
    fifo = queue.url.endswith(".fifo")
    form = StartForm(request.POST, sources=source_choices(queue.url), fifo=fifo)
    if not form.is_valid():
        context = {
            "queue": queue,
            "form": form,
            "start_form": form,
            "filter_fields": FILTER_FIELDS,
            "has_filters": True,
        }
        return render(request, "dlq/redrive.html", context, status=400)
    start = form.start_request(
        queue.url,
        queue.attributes.arn,
        request.user,
        user_name(request),
        masked=masked_here(request),
    )
    try:
        op = engine.start(start)
    except IntegrityError:
        return already_running(request, queue.url, name)
    messages.success(request, f"Redrive #{op.pk} started.")
    return redirect(operation_url(op))


def already_running(request: HtmxHttpRequest, target: str, name: str) -> HttpResponse:
    """The clear refusal when another operation is active on this DLQ (HTTP 409)."""
    running = engine.active_operation(target)
    if running is not None:
        link = operation_url(running)
        text = format_html(
            'Another operation is already running on {}: <a href="{}">#{}</a>.',
            name,
            link,
            running.pk,
        )
    else:
        text = format_html("Another operation was running on {}; try again.", name)
    return render(request, "operations/conflict.html", {"text": text, "name": name}, status=409)
