"""The DLQ page's dense table (its context), a row's body (htmx) and the "Scan all" start."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.views.decorators.http import require_GET, require_POST

from dashboard.environment import env_reverse, env_url, environment_of, operation_url
from dashboard.http import HtmxHttpRequest
from dashboard.views.dlq_common import (
    Dlq,
    aws_errors,
    queue_errors,
    resolve_dlq,
    user_name,
)
from dashboard.views.redrive import already_running
from operations import dlq, masking
from operations.access import Action, allows, require_here
from operations.models import Operation
from operations.triage import scan, table
from operations.triage.models import FailureGroup

TABLE_PAGE = 50
# The columns a header sorts by, in the table's order.
SORTED_COLUMNS = ("sent", "receives", "size", "type", "group")


def table_links(request: HtmxHttpRequest, filters: table.TableFilters) -> dict[str, Any]:
    """Query strings for the sort headers (a second click reverses) and for pagination."""
    base = {
        k: v
        for k, v in (
            ("group", filters.group),
            ("event_type", filters.event_type),
            ("correlation_id", filters.correlation_id),
            ("q", filters.text),
            ("peek", request.GET.get("peek", "")[:1]),
        )
        if v
    }
    sort = {}
    for name in SORTED_COLUMNS:
        # A click on the sorted column reverses it; another column sorts descending first.
        next_sort = name if filters.sort == f"-{name}" else f"-{name}"
        sort[name] = "?" + urlencode({**base, "sort": next_sort})
    return {
        "sort": sort,
        "current": filters.sort,
        "page": "?" + urlencode({**base, "sort": filters.sort}) + "&page=",
    }


def decorate(
    queue_name: str,
    rows: Iterable[Any],
    group_ids: dict[str, int],
    shown: dict[str, dlq.DlqMessage] | None = None,
) -> list[dict[str, Any]]:
    """The page's rows with what each cell shows, worked out here rather than in the template
    (50 rows of URL reversals and filters cost more than the query, bench/scan.py)."""
    base = env_reverse("operations:dlq_messages", queue_name)
    lookup = env_url("correlation")
    failures = env_reverse("failures")
    decorated = []
    for row in rows:
        quoted = quote(row.message_id, safe="")
        group_id = group_ids.get(row.group_key)
        sent = row.sent_at
        decorated.append(
            {
                "r": row,
                "short_id": row.message_id[:12] + ("…" if len(row.message_id) > 12 else ""),
                "sent_iso": sent.isoformat() if sent else "",
                "sent": sent.strftime("%m-%d %H:%M:%S") if sent else "",
                "size": filesizeformat(row.size),
                "error": row.error[:80] + ("…" if len(row.error) > 80 else ""),
                "correlation_url": (
                    f"{lookup}?{urlencode({'q': row.correlation_id})}"
                    if lookup and row.correlation_id
                    else ""
                ),
                "group_url": f"{failures}#group-{group_id}" if group_id else "",
                "body_url": f"{base}{quoted}/body/",
                "edit_url": f"{base}{quoted}/edit/",
                # The peeked message as this viewer may see it (None: scanned, or no bodies).
                "shown": (shown or {}).get(row.message_id),
            }
        )
    return decorated


def peek_bodies(
    request: HtmxHttpRequest, rows: Iterable[table.TableRow]
) -> dict[str, dlq.DlqMessage]:
    """The peeked messages as this viewer may see them: masked copies (body, attributes)
    unless they may see them unmasked; none without "view bodies"."""
    env = environment_of(request).name
    if not allows(request.user, Action.VIEW_BODIES, env):
        return {}
    masked = masking.must_mask(request.user, env)
    return {
        r.message_id: (r.message.masked if masked else r.message)
        for r in rows
        if r.message is not None
    }


def scan_context(
    queue: Dlq, op: Operation, filters: table.TableFilters, page: str | None
) -> dict[str, Any]:
    """The table over the scan's stored rows (excerpts stored masked)."""
    rows = table.scanned(op.pk, filters)
    shown = Paginator(rows, TABLE_PAGE).get_page(page)
    by_group, by_type = table.scan_counts(op.pk, finished=op.is_finished)
    found = {
        g.key: g
        for g in FailureGroup.objects.filter(
            environment=op.environment, dlq_url=queue.url, key__in=[k for k, _ in by_group]
        )
    }
    return {
        "scan": op,
        "page": shown,
        "rows": decorate(queue.name, shown, {k: g.pk for k, g in found.items()}),
        "by_group": [(k, n, found.get(k)) for k, n in by_group],
        "by_event_type": by_type,
        "approximate_total": (op.parameters or {}).get("approximate_total"),
    }


@require_GET
@aws_errors
def dlq_message_body(request: HtmxHttpRequest, name: str, message_id: str) -> HttpResponse:
    """One message's whole body, received fresh by ID (bounded receives, released at once)
    and masked for this viewer; the row's stored excerpt when it is not found."""
    require_here(request, Action.VIEW_BODIES)
    queue = resolve_dlq(name)
    message = dlq.fetch_message(queue.url, message_id[:128])
    context: dict[str, Any] = {"queue": queue, "message_id": message_id[:128]}
    if message is None:
        return render(request, "dlq/_body.html", context, status=404)
    env = environment_of(request).name
    context["body"] = masking.for_viewer(message.shown_body, request.user, env)
    context["truncated"] = message.body_truncated
    return render(request, "dlq/_body.html", context)


@require_POST
@aws_errors
@queue_errors
def dlq_scan(request: HtmxHttpRequest, name: str) -> HttpResponse:
    """Start a scan of the whole DLQ (up to EVENTOPS_SCAN_MAX): a worker runs it."""
    require_here(request, Action.VIEW_BODIES)
    queue = resolve_dlq(name)
    try:
        op = scan.start_scan(
            queue.url,
            max_messages=None,
            reason="scan from the DLQ page",
            user=request.user,
            user_name=user_name(request),
        )
    except IntegrityError:
        return already_running(request, queue.url, name)
    messages.success(request, f"Scan #{op.pk} started: the table fills in as it reads.")
    return redirect(operation_url(op))
