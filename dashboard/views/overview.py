"""The overview: every consumer's flow and health, worst first, refreshed by htmx."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from django.http import HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import NoReverseMatch
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from dashboard.environment import env_reverse
from dashboard.http import HtmxHttpRequest
from operations import cache as read_cache
from operations import environments, runbooks, topology
from operations.topology import Consumer

ALARM_CSS = {"ALARM": "state-alarm", "OK": "state-ok"}
_PLACEHOLDER = "eventops-placeholder"
ROWS_FRAGMENT = "overview-rows-html"
# Rows that show a failed read are re-rendered at most this often.
FAILED_ROWS_SECONDS = 5


def reversible(name: str, *args: str) -> bool:
    """Whether a page exists yet (other features add theirs independently)."""
    try:
        env_reverse(name, *args)
    except NoReverseMatch:
        return False
    return True


def link_flags() -> dict[str, bool]:
    """Which optional drill-down pages can be linked to."""
    return {
        "alarm_links": reversible("alarm_detail", "x"),
        "dlq_links": reversible("operations:dlq_messages", "x"),
    }


def linker(name: str) -> Callable[[str], str] | None:
    """A URL builder for a one-argument route: ``reverse`` once, then substitute.

    The overview links hundreds of rows; reversing each link costs more than
    the rest of the page. Quoting matches ``reverse``'s. None if no such page.
    """
    try:
        sample = env_reverse(name, _PLACEHOLDER)
    except NoReverseMatch:
        return None
    head, tail = sample.split(_PLACEHOLDER, 1)
    return lambda value: head + quote(value, safe="/~:@!$&'()*+,;=") + tail


def overview_rows(consumers: list[Consumer]) -> list[dict[str, Any]]:
    """Everything a row shows, precomputed (links included) for a fast template."""
    queue_url, bus_url = linker("queue_detail"), linker("bus_detail")
    alarm_url, messages_url = linker("alarm_detail"), linker("operations:dlq_messages")
    rows = []
    for c in consumers:
        depth, state = c.dlq_depth, c.alarm_state
        rows.append(
            {
                "name": c.queue.name,
                "url": queue_url(c.queue.name) if queue_url else "",
                "visible": c.queue.visible,
                "in_flight": c.queue.in_flight,
                "oldest_age_seconds": c.oldest_age_seconds,
                "oldest_age": c.oldest_age_display,
                "rules": [(b, r, bus_url(b) if bus_url else "") for b, r in c.rules],
                "functions": c.functions,
                "dlq": c.dlq.name if c.dlq else "",
                "dlq_url": queue_url(c.dlq.name) if c.dlq and queue_url else "",
                "messages_url": (
                    messages_url(c.dlq.name) if c.dlq and depth and messages_url else ""
                ),
                "dlq_depth": depth,
                "age": c.dlq_age_display if depth else "—",
                "expires": c.expires_display if depth else "—",
                "alarms": [
                    (
                        a,
                        ALARM_CSS.get(a.state, "state-insufficient"),
                        alarm_url(a.name) if alarm_url else "",
                        runbooks.known_runbook(a),
                    )
                    for a in c.alarms
                ],
                "row_class": "row-alarm" if state == "ALARM" else ("row-warn" if depth else ""),
            }
        )
    return rows


# A first-ever view waits this long for the first read of the event system; past it, it
# shows that the read is under way (and fills in on the next poll). Tests raise it.
FIRST_FILL_SECONDS = 1.0


def render_rows() -> str:
    """Read every source (one fetch per stale key, whoever asks) and render the rows.

    The rendered rows are kept: fresh until the first of their sources would be re-read,
    then served for ``EVENTOPS_CACHE_STALE_SECONDS`` more while a background job
    re-renders them."""
    view = topology.overview()
    # The cache key is per environment (operations/cache.py), and so is this context.
    context = {
        "overview": view,
        "rows": overview_rows(view.consumers),
        "env": environments.current(),
        "counts_read_at": view.counts_read_at,
    }
    html = render_to_string("overview/_rows.html", context)
    now = time.time()
    # A source that failed is not re-read while its failure is remembered (the TTL).
    fresh = view.fresh_until or now + min(read_cache.ttl(), FAILED_ROWS_SECONDS)
    keep = fresh + read_cache.stale_seconds()
    read_cache.remember(ROWS_FRAGMENT, keep, (fresh, html))
    return html


def _refresh_rows() -> None:
    read_cache.start_once(ROWS_FRAGMENT, render_rows)


def rows_html() -> str:
    """The rendered rows; AWS is read in the background, never in this request.

    The fragment holds nothing user-specific. While every source is fresh in the
    cache a re-render would give the same HTML, so a warm render is one cache read,
    whatever the number of consumers. Past that the last rows are served while one
    background job (in any process) re-reads and re-renders them. Only the first-ever
    view waits, at most ``FIRST_FILL_SECONDS``, for the first read.
    """
    kept = read_cache.recall(ROWS_FRAGMENT)
    if kept is not None:
        fresh, html = kept
        if time.time() >= fresh:
            _refresh_rows()
        return str(html)
    _refresh_rows()
    deadline = time.monotonic() + FIRST_FILL_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.05)
        kept = read_cache.recall(ROWS_FRAGMENT)
        if kept is not None:
            return str(kept[1])
    return render_to_string("overview/_reading.html", {"env": environments.current()})


@require_GET
def overview(request: HtmxHttpRequest) -> HttpResponse:
    html = rows_html()
    if request.htmx:
        # htmx polling asks for the rows only; the page around them stays put.
        response = HttpResponse(html)
    else:
        response = render(request, "overview/index.html", {"rows_html": html})
    patch_vary_headers(response, ("HX-Request",))
    return response
