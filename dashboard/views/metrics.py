"""``/metrics``: Prometheus text (django-prometheus's plus ``operations.metrics``), open
only to ``Authorization: Bearer $EVENTOPS_METRICS_TOKEN`` or to a client address inside
``EVENTOPS_METRICS_ALLOWED_NETWORKS`` (default: loopback); anyone else gets 403."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from django_prometheus.exports import ExportToDjangoView


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [
        ipaddress.ip_network(value, strict=False)
        for value in getattr(settings, "EVENTOPS_METRICS_ALLOWED_NETWORKS", [])
    ]


def may_scrape(request: HttpRequest) -> bool:
    token = str(getattr(settings, "EVENTOPS_METRICS_TOKEN", "") or "")
    sent = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        return True
    # REMOTE_ADDR, not X-Forwarded-For: a client cannot choose it.
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in allowed_networks())


@login_not_required
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not may_scrape(request):
        return HttpResponse(
            "Forbidden: send the metrics token, or scrape from an allowed network.\n",
            status=403,
            content_type="text/plain",
        )
    return ExportToDjangoView(request)
