"""Alarms: the list (filter by state) and the drill-down that notifications link to."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboard.environment import env_url, environment_of
from operations import access, alarms, masking, runbooks
from operations.aws.errors import AwsError
from operations.cache import describe_error

MAX_NAME_LENGTH = 255


@require_GET
def alarm_list(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    context: dict[str, object] = {
        "state": state,
        "state_options": [(s, None) for s in alarms.STATES],
    }
    if state and state not in alarms.STATES:
        context["error"] = f"Unknown state. Choose one of {', '.join(alarms.STATES)}."
        return render(request, "alarms/list.html", context, status=400)
    result = alarms.list_alarms(state)
    context["result"] = result
    context["state_options"] = [(s, result.counts.get(s, 0)) for s in alarms.STATES]
    return render(request, "alarms/list.html", context)


def _link(name: str, *args: object) -> str:
    return env_url(name, *args)


@require_GET
def alarm_detail(request: HttpRequest, name: str) -> HttpResponse:
    if len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise Http404("No alarm has this name.")
    try:
        drill = alarms.drilldown(name)
    except alarms.UnknownAlarm:
        raise Http404("No alarm has this name.") from None
    except AwsError as exc:
        failed = {"name": name, "error": describe_error(exc)}
        return render(request, "alarms/detail.html", failed, status=502)
    context: dict[str, object] = {"name": name, "drill": drill, "alarm": drill.alarm}
    context["runbook"] = runbooks.runbook(drill.alarm)
    context["charts"] = [g.chart() for g in drill.graphs]
    if drill.dlq and drill.dlq.queue_url:
        may_redrive = access.allows(
            request.user, access.Action.REDRIVE, environment_of(request).name
        )
        context["redrive"] = redrive_target(drill.dlq, may_redrive=may_redrive)
        if masking.must_mask(request.user, environment_of(request).name):
            # Errors quote what failed (a card number that was refused): masked like bodies.
            groups = drill.dlq.groups
            drill.dlq.groups = [replace(g, error=masking.mask_text(g.error)) for g in groups]
    return render(request, "alarms/detail.html", context)


def redrive_target(found: alarms.DlqDrilldown, *, may_redrive: bool) -> dict[str, object]:
    """Links into the DLQ flow for exactly the messages shown: the redrive preview filtered
    to their message IDs (all of them, then per event type), and the messages page."""
    # Only for who may redrive here (read-only mode: nobody): no link to a refusal.
    preview = (
        _link("operations:redrive", found.queue_name) if found.message_ids and may_redrive else ""
    )
    groups = []
    if preview:
        by_type: dict[str, list[str]] = {}
        for group in found.groups:
            if group.event_type != alarms.NO_TYPE:
                by_type.setdefault(group.event_type, []).extend(group.message_ids)
        for event_type, ids in by_type.items():
            query = urlencode({"message_ids": " ".join(ids)})
            groups.append(
                {"event_type": event_type, "count": len(ids), "url": f"{preview}?{query}"}
            )
    return {
        "preview_url": f"{preview}?{urlencode({'message_ids': ' '.join(found.message_ids)})}"
        if preview
        else "",
        "messages_url": _link("operations:dlq_messages", found.queue_name),
        "groups": groups,
    }
