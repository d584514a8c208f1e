"""Replay pages: the replay form with its preview, start, progress, cancel, re-publish.

Start, cancel and re-publish are POST, operator only, with a reason; they
redirect to the operation's page.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any

from django import forms
from django.contrib import messages
from django.core import signing
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from dashboard.forms import CancelForm
from dashboard.http import HtmxHttpRequest
from dashboard.views.archive import (
    BadInput,
    fragment_status,
    operation_url,
    parse_time,
    with_archive,
)
from dashboard.views.dlq_common import queue_errors
from dashboard.views.operations import report_cancel
from operations import archive as reads
from operations import cancel, environments, masking, replay, republish
from operations.access import Action, require_here
from operations.archive import ArchiveView, QueryTimedOut
from operations.aws import events, logs
from operations.aws.errors import AwsError
from operations.cache import cached, describe_error
from operations.models import Operation


def replayable_rules(view: ArchiveView) -> list[tuple[str, str]]:
    """Rules a replay can be limited to (Destination.FilterArns)."""
    return [(rule.name, rule.name) for rule in view.consumer_rules]


class ReplayForm(forms.Form):
    start = forms.CharField(max_length=40, help_text="UTC, ISO 8601 (2024-05-01T12:00)")
    end = forms.CharField(max_length=40, help_text="UTC, ISO 8601")
    rules = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Only these rules get the replayed events (all rules when none is ticked).",
    )
    reason = forms.CharField(max_length=2000, required=False, widget=forms.Textarea)

    def __init__(self, view: ArchiveView, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.view = view
        rules = self.fields["rules"]
        assert isinstance(rules, forms.MultipleChoiceField)
        rules.choices = replayable_rules(view)

    def plan(self) -> replay.ReplayPlan:
        """The validated plan; raises BadInput / ReplayRequestError with a clear message."""
        data = self.cleaned_data
        start = parse_time(data["start"], "Start")
        end = parse_time(data["end"], "End")
        return replay.plan_replay(self.view, start, end, data.get("rules") or [])


def allowed_to(
    action: Action,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Check the permission before anything else (no AWS call for a refused POST)."""

    def decorate(view_func: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view_func)
        def wrapper(request: HtmxHttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            require_here(request, action)
            return view_func(request, *args, **kwargs)

        return wrapper

    return decorate


def default_window() -> dict[str, str]:
    """The last hour, ending 15 minutes ago (events can reach the archive late)."""
    end = datetime.now(tz=UTC).replace(second=0, microsecond=0) - timedelta(minutes=15)
    return _hour_ending(end)


def _hour_ending(end: datetime) -> dict[str, str]:
    return {"start": f"{end - timedelta(hours=1):%Y-%m-%dT%H:%M}", "end": f"{end:%Y-%m-%dT%H:%M}"}


def window_with_events(view: ArchiveView) -> dict[str, str]:
    """The hour up to the archive's newest logged event (so the form opens on events),
    or ``default_window()`` when the event log says nothing."""
    found = cached(
        f"archive:latest-event:{view.log_group}", lambda: logs.latest_event_ms(view.log_group)
    )
    if not found.value:
        return default_window()
    now = datetime.now(tz=UTC).replace(second=0, microsecond=0)
    latest = datetime.fromtimestamp(found.value / 1000, tz=UTC).replace(second=0, microsecond=0)
    return _hour_ending(min(now, latest + timedelta(minutes=1)))


PREVIEW_SALT = "eventops.replay-preview"
PREVIEW_MAX_AGE = 3600


def preview_token(plan: replay.ReplayPlan) -> str:
    """Proof that this window and these rules were previewed (Start requires it)."""
    return signing.dumps(_plan_key(plan), salt=PREVIEW_SALT)


def _plan_key(plan: replay.ReplayPlan) -> list[str]:
    return [plan.start.isoformat(), plan.end.isoformat(), *sorted(r.name for r in plan.rules)]


def was_previewed(token: str, plan: replay.ReplayPlan) -> bool:
    try:
        key = signing.loads(token, salt=PREVIEW_SALT, max_age=PREVIEW_MAX_AGE)
    except signing.BadSignature:
        return False
    return bool(key == _plan_key(plan))


@require_GET
@with_archive
def replay_new(request: HtmxHttpRequest, view: ArchiveView) -> HttpResponse:
    """The replay form; with ``preview=1``, the preview of the window too."""
    form = ReplayForm(view, request.GET or None, initial=window_with_events(view))
    context: dict[str, object] = {
        "view": view,
        "form": form,
        "active_replays": cached("archive:active-replays", events.count_active_replays),
        "replay_limit": replay.ACTIVE_REPLAY_LIMIT,
    }
    status = 200
    if request.GET.get("preview") and form.is_valid():
        try:
            plan = form.plan()
            context.update(plan=plan, preview=replay.preview(plan), token=preview_token(plan))
        except (BadInput, replay.ReplayRequestError, QueryTimedOut) as exc:
            context["error"], status = str(exc), 400
        except AwsError as exc:
            context["error"], status = describe_error(exc), 502
    template = "archive/_preview.html" if request.htmx else "archive/replay_new.html"
    response = render(request, template, context, status=fragment_status(request, status))
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_POST
@allowed_to(Action.REPLAY)
@queue_errors
@with_archive
def replay_start(request: HtmxHttpRequest, view: ArchiveView) -> HttpResponse:
    """Start a replay (operator, reason required); redirect to its operation page."""
    form = ReplayForm(view, request.POST)
    error = ""
    if form.is_valid():  # else each field shows its own error, once
        try:
            plan = form.plan()
            if not was_previewed(request.POST.get("previewed", ""), plan):
                raise BadInput(
                    "Preview this window first: a replay starts only on the window and rules "
                    "you previewed."
                )
            op = replay.start_replay_operation(
                plan, reason=form.cleaned_data["reason"], user=request.user
            )
        except (BadInput, replay.ReplayRequestError) as exc:
            error = str(exc)
        except AwsError as exc:
            error = describe_error(exc)
        else:
            for warning in plan.warnings:
                messages.warning(request, warning)
            messages.success(request, f"Replay {op.parameters['replay_name']} requested.")
            return redirect(operation_url(op))
    context = {"view": view, "form": form, "error": error}
    return render(request, "archive/replay_new.html", context, status=400)


def _archive_op(pk: int) -> Operation:
    kinds = (Operation.Kind.REPLAY, Operation.Kind.REPUBLISH)
    return get_object_or_404(
        Operation, pk=pk, kind__in=kinds, environment=environments.current_name()
    )


@require_GET
def replay_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """A replay's or re-publish's progress; htmx polls the fragment until it ends.

    Used when the operations app's own detail page does not exist."""
    op = _archive_op(pk)
    if masking.must_mask(request.user, op.environment):
        op.reason = masking.mask_text(op.reason)  # shown, never saved
    context = {"op": op, "cancel_form": CancelForm()}
    if request.htmx:
        context["oob"] = True
        if op.is_finished:
            response: HttpResponse = HttpResponseStopPolling()
            response.write(render(request, "archive/_progress.html", context).content)
        else:
            response = render(request, "archive/_progress.html", context)
    else:
        response = render(request, "archive/replay_detail.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_POST
def replay_cancel(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Cancel a replay or re-publish, saying why (CancelReplay once started); harmless
    when already finished."""
    require_here(request, Action.CANCEL)
    op = _archive_op(pk)
    form = CancelForm(request.POST)
    if not form.is_valid():
        context = {"op": op, "cancel_form": form}
        return render(request, "archive/replay_detail.html", context, status=400)
    result = cancel.cancel(op, by=request.user.get_username(), reason=form.cleaned_data["reason"])
    report_cancel(request, result)
    return redirect(operation_url(op))


def _chosen_events(request: HtmxHttpRequest, view: ArchiveView) -> tuple[list, dict[str, str]]:
    """The events a re-publish form names: one event ID (+ time) or one correlation ID."""
    post = request.POST
    event_id, correlation_id = post.get("event_id", "").strip(), post.get("correlation_id", "")
    if event_id:
        try:
            around = reads.time_from_epoch_ms(post.get("t", ""), "event's time")
        except reads.InvalidTime as exc:
            raise BadInput(str(exc)) from None
        event = reads.find_event(view.log_group, event_id, around)
        if event is None:
            raise BadInput("This event is not in the event log.")
        if event.is_replayed:
            raise BadInput("This event is itself a replay: re-publish the original.")
        return [event], {"event_id": event_id}
    start = parse_time(post.get("start", ""), "Start")
    end = parse_time(post.get("end", ""), "End")
    chosen = republish.events_of_correlation(view, correlation_id, start, end)
    selector = {
        "correlation_id": correlation_id.strip(),
        "start": start.isoformat(),
        "end": end.isoformat(),
    }
    return chosen, selector


@require_POST
@allowed_to(Action.REPUBLISH)
@queue_errors
@with_archive
def republish_events(request: HtmxHttpRequest, view: ArchiveView) -> HttpResponse:
    """Re-publish one event or one correlation ID's events; redirect to the operation."""
    try:
        chosen, selector = _chosen_events(request, view)
        op = republish.start_republish_operation(
            view,
            chosen,
            reason=request.POST.get("reason", ""),
            selector=selector,
            user=request.user,
        )
    except (BadInput, republish.RepublishError, QueryTimedOut) as exc:
        return render(
            request, "archive/republish_error.html", {"view": view, "error": str(exc)}, status=400
        )
    except AwsError as exc:
        return render(
            request,
            "archive/republish_error.html",
            {"view": view, "error": describe_error(exc)},
            status=502,
        )
    messages.success(request, f"Re-publishing {len(chosen)} event(s) as operation #{op.pk}.")
    return HttpResponseRedirect(operation_url(op))
