"""The correlation page: one timeline of everything known about an ID.

The page itself does no AWS call: it validates the input and renders one
placeholder per source, each of which htmx loads on its own (with a plain link
as fallback), so slow sources never hold the page back.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseStopPolling

from dashboard.http import HtmxHttpRequest
from operations import correlation as corr
from operations.correlation import InvalidLookup, Lookup

TIMELINE_MAX_POLLS = 30


def _parse(request: HtmxHttpRequest) -> tuple[Lookup, str, timedelta]:
    since_key = request.GET.get("since") or corr.DEFAULT_SINCE
    if since_key not in corr.SINCE_CHOICES:
        raise InvalidLookup("Choose a time range from the list: " + ", ".join(corr.SINCE_CHOICES))
    lookup = corr.parse_lookup(request.GET.get("q"))
    return lookup, since_key, corr.SINCE_CHOICES[since_key]


def _context(request: HtmxHttpRequest) -> dict[str, Any]:
    query = (request.GET.get("q") or "")[: corr.MAX_LENGTH + 1]
    return {
        "q": query,
        "search_query": query,
        "since": request.GET.get("since") or corr.DEFAULT_SINCE,
        "since_choices": list(corr.SINCE_CHOICES),
        "operation_url": bool(_url("operations:detail", 1)),
    }


def _url(name: str, *args: Any) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def panel_actions(found: corr.Panel, correlation_id: str) -> list[dict[str, str]]:
    """The fixes for what a panel found, linking to the DLQ and archive flows that exist:
    a filtered redrive preview per DLQ, and the archive's events to replay or re-publish."""
    links = []
    if found.key == "dlq":
        for queue in sorted({m.queue_name for m in found.rows}):
            url = _url("operations:redrive", queue)
            if url:
                query = urlencode({"correlation_id": correlation_id})
                links.append(
                    {"label": f"Redrive these messages from {queue}", "url": f"{url}?{query}"}
                )
    if found.key == "events" and found.rows:
        times = [row["event"].time for row in found.rows if row["event"].time]
        window = {"correlation_id": correlation_id}
        if times:
            window["start"] = (min(times) - timedelta(minutes=5)).isoformat()
            window["end"] = (max(times) + timedelta(minutes=5)).isoformat()
        buses = {row["event"].bus_name for row in found.rows}
        for archive in corr.archives_of(buses):
            url = _url("archive_events", archive)
            if url:
                label = f"Replay or re-publish these events from {archive}"
                links.append({"label": label, "url": f"{url}?{urlencode(window)}"})
    return links


@require_GET
def correlation(request: HtmxHttpRequest) -> HttpResponse:
    context = _context(request)
    if not context["q"].strip():
        return render(request, "correlation/page.html", context)
    try:
        lookup, since_key, _since = _parse(request)
    except InvalidLookup as exc:
        context["error"] = str(exc)
        return render(request, "correlation/page.html", context, status=400)
    params = urlencode({"q": lookup.raw, "since": since_key})
    context.update(
        lookup=lookup,
        params=params,
        panels=[(key, title) for key, (title, _f) in corr.PANELS.items()],
    )
    return render(request, "correlation/page.html", context)


@require_GET
def correlation_panel(request: HtmxHttpRequest, key: str) -> HttpResponse:
    if key != "timeline" and key not in corr.PANELS:
        raise Http404("No such panel.")
    context = _context(request)
    try:
        lookup, since_key, since = _parse(request)
    except InvalidLookup as exc:
        context["error"] = str(exc)
        return _fragment(request, "correlation/_invalid.html", context, status=400)
    context.update(lookup=lookup, params=urlencode({"q": lookup.raw, "since": since_key}))
    if key == "timeline":
        return _timeline(request, lookup, since, context)
    context["panel"] = found = corr.panel(key, lookup, since)
    context["actions"] = panel_actions(found, corr.resolve_cached(lookup))
    return _fragment(request, f"correlation/_panel_{key}.html", context)


def _timeline(
    request: HtmxHttpRequest, lookup: Lookup, since: timedelta, context: dict[str, Any]
) -> HttpResponse:
    """The merged timeline of the panels loaded so far; htmx polls until all are in."""
    try:
        poll = max(0, min(int(request.GET.get("poll", "0")), TIMELINE_MAX_POLLS))
    except ValueError:
        poll = 0
    built = corr.timeline_so_far(lookup, since)
    context.update(timeline=built, poll=poll + 1)
    done = not built.missing or poll >= TIMELINE_MAX_POLLS
    context["polling"] = request.htmx and not done
    response = _fragment(request, "correlation/_panel_timeline.html", context)
    if request.htmx and done and poll > 0:
        stop = HttpResponseStopPolling(response.content)
        patch_vary_headers(stop, ("HX-Request",))
        return stop
    return response


def _fragment(
    request: HtmxHttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    """The fragment alone for htmx, or inside a full page for a plain link."""
    if request.htmx:
        response = render(request, template, context, status=status)
    else:
        context["fragment"] = template
        response = render(request, "correlation/panel_page.html", context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response
