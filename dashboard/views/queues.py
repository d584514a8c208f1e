"""The queue list and the queue page (depths, relations and metric charts)."""

from __future__ import annotations

from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboard import converters
from dashboard.http import HtmxHttpRequest
from dashboard.views.overview import link_flags
from operations import cache as read_cache
from operations import dlq, topology

DEFAULT_RANGE = "1h"


@require_GET
def queue_list(request: HtmxHttpRequest) -> HttpResponse:
    with read_cache.refreshing_in_background():
        inventory = topology.queues()
    value = inventory.value or topology.QueueInventory()
    dlq_names = value.dlq_names
    rows = [
        {"queue": q, "is_dlq": q.name in dlq_names, "dlq": value.dlq_of(q)}
        for q in sorted(value.queues.values(), key=lambda q: q.name)
    ]
    return render(request, "queues/list.html", {"inventory": inventory, "rows": rows})


@require_GET
def queue_detail(request: HtmxHttpRequest, name: str) -> HttpResponse:
    if not converters.valid("queue", name):
        raise Http404("No queue has that name.")
    range_key = request.GET.get("range") or DEFAULT_RANGE
    if range_key not in topology.RANGES:
        return HttpResponseBadRequest("Unknown chart range. Choose one of: 1h, 6h, 24h, 7d.")
    with read_cache.refreshing_in_background():
        inventory = topology.queue_page_inventory(name)
    if inventory.value is None:
        # Discovery failed and nothing was cached: say why instead of guessing 404.
        context = {"name": name, "inventory": inventory}
        return render(request, "queues/unavailable.html", context, status=503)
    if name not in inventory.value.queues:
        raise Http404("No queue has that name.")
    with read_cache.refreshing_in_background():
        detail = topology.queue_detail(inventory, name, range_key)
    # A DLQ's own last peek, or for a source queue its DLQ's: did redriven IDs come back?
    loop_queue = detail.queue if detail.is_dlq else detail.dlq
    context = {
        "detail": detail,
        "ranges": list(topology.RANGES),
        "loop_queue": loop_queue,
        "last_peek": dlq.last_peek(loop_queue.url) if loop_queue else None,
        **link_flags(),
    }
    return render(request, "queues/detail.html", context)
