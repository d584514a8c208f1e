"""The "state of the system" strip at the top of every page, loaded by htmx after the
page: alarms in ALARM, messages in DLQs, the oldest of them, the worst consumer.

It reads only what the overview caches (operations/topology.py): on a warm cache it
costs no AWS call, and as its own request it never slows the page it sits on."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboard.environment import env_url
from dashboard.http import HtmxHttpRequest
from operations import topology
from operations.topology import format_duration


@require_GET
def state_strip(request: HtmxHttpRequest) -> HttpResponse:
    view = topology.overview()
    troubled = [c for c in view.consumers if c.alarm_state == "ALARM" or c.dlq_depth]
    ages = [c.dlq_age_seconds for c in troubled if c.dlq_age_seconds is not None]
    oldest = max(ages) if ages else None
    worst = troubled[0] if troubled else None
    context = {
        "view": view,
        "failed": any(not source.ok for _label, source in view.panels),
        "oldest": format_duration(oldest) if oldest is not None else "",
        "worst": worst,
        "worst_url": env_url("queue_detail", worst.queue.name) if worst else "",
        "worst_messages_url": (
            env_url("operations:dlq_messages", worst.dlq.name) if worst and worst.dlq else ""
        ),
    }
    return render(request, "_strip.html", context)
