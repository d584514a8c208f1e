"""Failure groups of an environment: worst first, counts over time, a sample, and actions
(redrive or delete exactly the group's messages through the usual paths; acknowledge,
resolve, ignore or reopen, audited)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from dashboard.environment import env_reverse, environment_of
from dashboard.forms import MAX_MESSAGE_IDS, DeleteForm, GroupStateForm
from dashboard.http import HtmxHttpRequest
from dashboard.views.dlq_common import aws_errors, correlation_url, resolve_dlq, user_name
from operations import dlq_actions
from operations.access import Action, require_here
from operations.triage import groups
from operations.triage.models import FailureGroup

# The page shows this many groups, worst first.
MAX_SHOWN = 100
# Counts over time: new messages per hour over this many hours.
HOURS = 48
# The chart draws this many of the worst groups.
CHARTED = 5
SPARK_WIDTH, SPARK_HEIGHT = 240, 40


def sparkline(values: list[int]) -> str:
    """SVG polyline points for ``values`` in a SPARK_WIDTH x SPARK_HEIGHT box."""
    top = max(values) or 1
    step = SPARK_WIDTH / max(1, len(values) - 1)
    return " ".join(
        f"{i * step:.1f},{SPARK_HEIGHT - v * (SPARK_HEIGHT - 2) / top - 1:.1f}"
        for i, v in enumerate(values)
    )


def _chart(rows: list[FailureGroup], hourly: dict[int, list[int]]) -> list[dict[str, Any]]:
    """One uPlot chart (static/js/charts.js) of the worst groups' new messages per hour."""
    shown = rows[:CHARTED]
    if not shown:
        return []
    start = timezone.now() - timedelta(hours=HOURS)
    xs = [int((start + timedelta(hours=i + 1)).timestamp()) for i in range(HOURS)]
    return [
        {
            "title": "New messages per hour, worst groups",
            "unit": "",
            "labels": [g.title[:60] for g in shown],
            "data": [xs, *[hourly[g.pk] for g in shown]],
        }
    ]


@require_GET
def failure_groups(request: HtmxHttpRequest) -> HttpResponse:
    """The environment's failure groups, worst first."""
    env = environment_of(request).name
    rows = list(groups.worst_first(env)[:MAX_SHOWN])
    hourly = groups.new_per_hour([g.pk for g in rows], HOURS)
    items = [
        {
            "g": g,
            "spark": sparkline(hourly[g.pk]),
            "last_hours": sum(hourly[g.pk]),
            "correlation_url": correlation_url(g.sample_correlation_id),
            "state_form": GroupStateForm(auto_id=f"g{g.pk}-%s"),
        }
        for g in rows
    ]
    context = {"items": items, "charts": _chart(rows, hourly), "hours": HOURS}
    return render(request, "failures/list.html", context)


def _group(request: HtmxHttpRequest, pk: int) -> FailureGroup:
    group = FailureGroup.objects.filter(pk=pk, environment=environment_of(request).name).first()
    if group is None:
        raise Http404("No such failure group here.")
    return group


@require_POST
def failure_group_state(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Acknowledge, resolve, ignore or reopen a group, with a note (operators; audited)."""
    require_here(request, Action.REDRIVE)
    group = _group(request, pk)
    form = GroupStateForm(request.POST)
    if not form.is_valid():
        context = {"group": group, "form": form}
        return render(request, "failures/bad_state.html", context, status=400)
    action, note = form.cleaned_data["action"], form.cleaned_data["note"]
    if groups.change_state(group, action, by=user_name(request), note=note):
        messages.success(request, f"{group.title[:80]}: {group.get_state_display().lower()}.")
    else:
        messages.info(request, f"{group.title[:80]} was already {group.get_state_display()}.")
    return redirect(env_reverse("failures") + f"#group-{group.pk}")


@require_GET
def failure_group_redrive(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The redrive preview of exactly this group's messages (by message ID), where the
    operator sees the count and a sample and gives a reason before anything moves."""
    group = _group(request, pk)
    ids = groups.member_ids(group, MAX_MESSAGE_IDS)
    query = urlencode({"message_ids": " ".join(ids)})
    return redirect(env_reverse("operations:redrive", group.dlq_name) + "?" + query)


@require_POST
@aws_errors
def failure_group_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """Step 1 of the usual delete, with exactly this group's messages selected: the
    operator confirms with a reason on that page (those with the delete permission)."""
    require_here(request, Action.DELETE)
    group = _group(request, pk)
    queue = resolve_dlq(group.dlq_name)
    data = QueryDict(mutable=True)
    data.setlist("message_ids", groups.member_ids(group, dlq_actions.MAX_DELETE))
    form = DeleteForm(data)
    form.is_valid()
    return render(request, "dlq/delete.html", {"queue": queue, "form": form, "group": group})
