"""Operator actions on single DLQ messages: delete selected, edit and re-send (run by the
worker as operations: operations/dlq_actions.py)."""

from __future__ import annotations

from django.contrib import messages
from django.db import IntegrityError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from dashboard.environment import operation_url
from dashboard.forms import DeleteForm, EditForm
from dashboard.http import HtmxHttpRequest
from dashboard.views.dlq_common import (
    aws_errors,
    queue_errors,
    record_read,
    resolve_dlq,
    source_choices,
    user_name,
)
from dashboard.views.redrive import already_running
from operations import dlq, dlq_actions
from operations.access import Action, require_here
from operations.aws.errors import AwsError
from operations.read_audit import ReadAudit


@require_POST
@aws_errors
@queue_errors
def dlq_delete(request: HtmxHttpRequest, name: str) -> HttpResponse:
    """Step 1 (no ``confirm``): show what will be deleted. Step 2: a worker deletes them,
    audited; the operation's page follows it."""
    require_here(request, Action.DELETE)
    queue = resolve_dlq(name)
    form = DeleteForm(request.POST)
    if not form.is_valid() or not form.cleaned_data["confirm"]:
        status = 400 if form.errors else 200
        return render(request, "dlq/delete.html", {"queue": queue, "form": form}, status=status)
    actor = dlq_actions.Actor(form.cleaned_data["reason"], request.user, user_name(request))
    try:
        op = dlq_actions.start_delete(queue.url, set(form.cleaned_data["message_ids"]), actor)
    except IntegrityError:
        return already_running(request, queue.url, name)
    messages.success(request, f"Deleting {op.total or 0} messages (#{op.pk}).")
    return redirect(operation_url(op))


@require_http_methods(["GET", "POST"])
@aws_errors
@queue_errors
def dlq_edit(request: HtmxHttpRequest, name: str, message_id: str) -> HttpResponse:
    """GET: the body to edit. POST: the server-side diff; with ``confirm``: send, audited."""
    # Editing shows the whole body, unmasked: it needs that as well as the edit itself.
    require_here(request, Action.EDIT_RESEND)
    require_here(request, Action.VIEW_UNMASKED)
    queue = resolve_dlq(name)
    try:
        original = dlq.fetch_message(queue.url, message_id[:128])
        sources = source_choices(queue.url)
    except AwsError as exc:
        return render(request, "dlq/edit.html", {"queue": queue, "error": exc}, status=502)
    context: dict[str, object] = {"queue": queue, "original": original, "message_id": message_id}
    if original is None:
        return render(request, "dlq/edit.html", context, status=404)
    if request.method == "GET":
        target = f"{queue.name} {original.message_id}"
        record_read(request, ReadAudit.Kind.VIEWED_MESSAGE, target, 1, masked=False)
        context["form"] = EditForm(initial={"body": original.pretty_body})
        return render(request, "dlq/edit.html", context)
    form = context["form"] = EditForm(request.POST)
    if not form.is_valid():
        return render(request, "dlq/edit.html", context, status=400)
    context["diff"] = dlq.body_diff(original, dlq.normalise_json(form.cleaned_data["body"])[1])
    if not form.cleaned_data["confirm"]:
        return render(request, "dlq/edit.html", context)
    actor = dlq_actions.Actor(form.cleaned_data["reason"], request.user, user_name(request))
    fallback = sources[0][0] if len(sources) == 1 else ""
    try:
        op = dlq_actions.start_edit_resend(
            queue.url, original.message_id, form.cleaned_data["body"], actor, fallback_arn=fallback
        )
    except IntegrityError:
        return already_running(request, queue.url, name)
    messages.success(request, f"Edit and re-send #{op.pk} queued: a worker sends it.")
    return redirect(operation_url(op))
