"""The bus page: rules with patterns, targets and metrics; archives; event logs."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboard.http import HtmxHttpRequest
from dashboard.views.overview import reversible
from operations import topology


@require_GET
def bus_detail(request: HtmxHttpRequest, name: str) -> HttpResponse:
    buses = topology.buses()
    if buses.value is None:
        return render(request, "bus/unavailable.html", {"name": name, "buses": buses}, status=503)
    found = next((b for b in buses.value if b.bus.name == name), None)
    if found is None:
        raise Http404("No event bus has that name.")
    context = {
        "detail": topology.bus_detail(buses, found),
        "archive_links": reversible("archives"),
    }
    return render(request, "bus/detail.html", context)
