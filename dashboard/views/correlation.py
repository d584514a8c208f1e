"""The correlation page: one timeline of everything known about an ID.

The page itself does no AWS call: it validates the input and renders one
placeholder per source, each of which htmx loads on its own (with a plain link
as fallback), so slow sources never hold the page back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseStopPolling

from dashboard.environment import env_url
from dashboard.http import HtmxHttpRequest
from operations import access, environments, masking, read_audit
from operations import correlation as corr
from operations.correlation import InvalidLookup, Lookup
from operations.correlation_shown import masked_panel, masked_timeline
from operations.read_audit import ReadAudit

TIMELINE_MAX_POLLS = 30
WINDOW_MARGIN = timedelta(minutes=5)


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
        "all_environments": request.GET.get("envs") == "all",
        "several_environments": len(access.visible_environments(request.user)) > 1,
    }


def _url(name: str, *args: Any) -> str:
    return env_url(name, *args)


def panel_actions(
    found: corr.Panel, correlation_id: str, *, operator: bool = False, redrive: bool = False
) -> list[dict[str, str]]:
    """The fixes for what a panel found, linking to the DLQ and archive flows that exist:
    for those who may redrive, a filtered redrive preview per DLQ; the archive's events;
    and for those who may replay, the replay form prefilled with the events' window."""
    links = []
    if found.key == "dlq" and redrive and not access.read_only():
        for queue in sorted({m.queue_name for m in found.rows}):
            url = _url("operations:redrive", queue)
            if url:
                query = urlencode({"correlation_id": correlation_id})
                links.append(
                    {"label": f"Redrive these messages from {queue}", "url": f"{url}?{query}"}
                )
    if found.key == "events" and found.rows:
        start, end = events_window(found)
        window = {"correlation_id": correlation_id}
        if start and end:
            window |= {"start": start.isoformat(), "end": end.isoformat()}
        for archive in _archives(found):
            url = _url("archive_events", archive)
            if url:
                label = (
                    f"Replay or re-publish these events from {archive}"
                    if operator
                    else f"These events in {archive}"
                )
                links.append({"label": label, "url": f"{url}?{urlencode(window)}"})
            replay_url = _url("replay_new", archive) if operator else ""
            if replay_url and start and end:
                # A replay cannot end in the future (the +5 minutes can pass now).
                until = min(end, datetime.now(tz=UTC))
                query = urlencode({"start": start.isoformat(), "end": until.isoformat()})
                label = f"Replay this window from {archive}"
                links.append({"label": label, "url": f"{replay_url}?{query}"})
    return links


def republish_forms(found: corr.Panel, correlation_id: str) -> list[dict[str, str]]:
    """For operators: one re-publish form per archive of the events' buses, with the
    correlation ID and the events' window (the re-publish view's ``correlation_id``,
    ``start`` and ``end``; the operator adds the reason)."""
    if found.key != "events" or not found.rows:
        return []
    # The lookup may be an event or trace ID: re-publish by the events' own correlation ID.
    ids = {row["event"].correlation_id for row in found.rows} - {""}
    if correlation_id not in ids:
        correlation_id = ids.pop() if len(ids) == 1 else ""
    start, end = events_window(found)
    if not (correlation_id and start and end):
        return []
    forms = []
    for archive in _archives(found):
        url = _url("republish", archive)
        if url:
            forms.append(
                {
                    "archive": archive,
                    "url": url,
                    "correlation_id": correlation_id,
                    "start": f"{start:%Y-%m-%dT%H:%M:%S}",
                    "end": f"{end:%Y-%m-%dT%H:%M:%S}",
                }
            )
    return forms


def events_window(found: corr.Panel) -> tuple[datetime | None, datetime | None]:
    """The panel's events' times, widened by 5 minutes each way, in UTC."""
    times = [row["event"].time for row in found.rows if row["event"].time]
    if not times:
        return None, None
    try:
        start = (min(times) - WINDOW_MARGIN).astimezone(UTC)
        end = (max(times) + WINDOW_MARGIN).astimezone(UTC)
    except OverflowError:  # an event's own "time" at the edge of datetime's range
        return None, None
    return start, end


def _archives(found: corr.Panel) -> list[str]:
    return corr.archives_of({row["event"].bus_name for row in found.rows})


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
        sections=_sections(request, context["all_environments"]),
    )
    return render(request, "correlation/page.html", context)


def _sections(request: HtmxHttpRequest, everywhere: bool) -> list[dict[str, Any]]:
    """Where to look: this environment, or (asked for) every one the user may see, this
    one first. Each section's panels load from their own environment's URLs, so each is
    read there, as this user, and cached there."""
    here = environments.current()
    others = [e for e in access.visible_environments(request.user) if e != here]
    chosen = [here, *others] if everywhere else [here]
    return [
        {"env": e, "current": e == here, "suffix": "" if e == here else f"-{e.name}"}
        for e in chosen
    ]


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
    found = corr.panel(key, lookup, since)
    correlation_id = corr.resolve_cached(lookup)
    env = environments.current_name()
    masked = masking.must_mask(request.user, env)
    if masked:
        found = masked_panel(found)
    context["panel"] = found
    _record_reads(request, found, correlation_id, masked=masked)
    may = {a: access.allows(request.user, a, env) for a in access.Action}
    context["actions"] = panel_actions(
        found,
        correlation_id,
        operator=may[access.Action.REPLAY],
        redrive=may[access.Action.REDRIVE],
    )
    context["republish_forms"] = (
        republish_forms(found, correlation_id) if may[access.Action.REPUBLISH] else []
    )
    return _fragment(request, f"correlation/_panel_{key}.html", context)


def _record_reads(
    request: HtmxHttpRequest, found: corr.Panel, correlation_id: str, *, masked: bool
) -> None:
    """The DLQ panel shows message bodies (per queue), the events panel event details."""
    if found.key == "dlq":
        per_queue: dict[str, int] = {}
        for row in found.rows:
            per_queue[row.queue_name] = per_queue.get(row.queue_name, 0) + 1
        for queue, count in per_queue.items():
            kind = ReadAudit.Kind.VIEWED_BODIES
            read_audit.record(request.user, kind, queue, count=count, unmasked=not masked)
    elif found.key == "events" and found.rows:
        target = f"events of {correlation_id}"
        kind = ReadAudit.Kind.VIEWED_BODIES
        read_audit.record(request.user, kind, target, count=len(found.rows), unmasked=not masked)


def _timeline(
    request: HtmxHttpRequest, lookup: Lookup, since: timedelta, context: dict[str, Any]
) -> HttpResponse:
    """The merged timeline of the panels loaded so far; htmx polls until all are in."""
    try:
        poll = max(0, min(int(request.GET.get("poll", "0")), TIMELINE_MAX_POLLS))
    except ValueError:
        poll = 0
    built = corr.timeline_so_far(lookup, since)
    if masking.must_mask(request.user, environments.current_name()):
        built = masked_timeline(built)
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
