"""The DLQ messages page: a dense table over the latest scan or the shared peek, with each
message's error and failure group; masked per viewer, reads audited; loop warnings, export."""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any

from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from dashboard.environment import environment_of
from dashboard.forms import TableForm
from dashboard.http import HtmxHttpRequest
from dashboard.views.dlq_common import (
    Dlq,
    aws_errors,
    masked_here,
    record_read,
    resolve_dlq,
    shown_messages,
)
from dashboard.views.dlq_table import (
    TABLE_PAGE,
    decorate,
    peek_bodies,
    scan_context,
    table_links,
)
from operations import dlq, dlq_peek
from operations.access import Action, require_here
from operations.read_audit import ReadAudit
from operations.triage import errors as triage_errors
from operations.triage import groups, scan, table

# How many messages one peek shows (bounded receives of 10).
PEEK_LIMIT = 50
# The page keeps the export of what it showed this long, under a random token: the shared
# peek that showed them is replaced by a newer one after the cache period.
EXPORT_SECONDS = 15 * 60
# Exports larger than this are not kept (50 bodies of 256 KiB, escaped, can reach ~25 MB).
MAX_KEPT_EXPORT_CHARS = 8 * 1024 * 1024
EXPORT_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@require_GET
@aws_errors
def dlq_messages(request: HtmxHttpRequest, name: str) -> HttpResponse:
    """The DLQ's messages as a dense table: the latest scan's rows, or before any scan (or
    with ``?peek=1``) the shared peek's messages, each with its consumer's error and failure
    group; masked for whoever may not see it unmasked, and the read audited."""
    require_here(request, Action.VIEW_BODIES)
    queue = resolve_dlq(name)
    masked = masked_here(request)
    form = TableForm(request.GET or None)
    context: dict[str, object] = {"queue": queue, "form": form, "masked": masked}
    if form.is_bound and not form.is_valid():
        return _render(request, {**context, "invalid": True}, status=400)
    filters = form.filters()
    context.update(filters=filters, links=table_links(request, filters))
    latest = None if request.GET.get("peek") else scan.latest_scan(queue.url)
    kind = ReadAudit.Kind.VIEWED_BODIES
    if latest is not None:
        context.update(scan_context(queue, latest, filters, request.GET.get("page")))
        rows = context.get("rows")
        record_read(
            request, kind, queue.name, len(rows) if isinstance(rows, list) else 0, masked=masked
        )
        return _render(request, context)
    found = dlq_peek.shared_peek(queue.url)
    if found.value is None:
        return _render(request, {**context, "error": found.error})
    messages = found.value.messages()
    errors = triage_errors.errors_for(queue.url, messages)
    seen = groups.classify(messages, errors)
    loops = dlq.redrive_loops(queue.url, (m.correlation_id for m in messages))
    recorded = groups.record(environment_of(request).name, queue.url, queue.name, seen)
    rows = table.peek_rows(seen, filters, masked=masked)
    page = Paginator(rows, TABLE_PAGE).get_page(request.GET.get("page"))
    by_group, by_type = table.peek_counts(table.peek_rows(seen, table.TableFilters()))
    shown = dlq.Peek(shown_messages(messages, masked), found.value.receives, 0)
    context.update(
        peek=shown,
        shared=found.value,
        read=found,
        stale_error=found.error,
        export_token=keep_export(queue, shown, masked=masked),
        loops=sorted(loops.items()),
        page=page,
        rows=decorate(
            queue.name, page, {k: g.pk for k, g in recorded.items()}, peek_bodies(request, page)
        ),
        by_group=[(k, n, recorded.get(k)) for k, n in by_group],
        by_event_type=by_type,
        error_notes=triage_errors.lookup(queue.url, messages).notes,
    )
    record_read(request, kind, queue.name, len(page.object_list), masked=masked)
    return _render(request, context)


def _render(
    request: HtmxHttpRequest, context: dict[str, object], status: int = 200
) -> HttpResponse:
    template = "dlq/_table.html" if request.htmx else "dlq/messages.html"
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_GET
@aws_errors
def dlq_export(request: HtmxHttpRequest, name: str) -> HttpResponse:
    """The messages the page showed, as a JSON download (``?peek=<token>``, kept 15 min);
    without a valid token, the messages of the shared peek (which says so). Masked for
    whoever may not see bodies unmasked; every export is audited."""
    require_here(request, Action.EXPORT)
    queue = resolve_dlq(name)
    masked = masked_here(request)
    kept = kept_export(queue, request.GET.get("peek", ""), masked=masked)
    if kept is None:
        found = dlq_peek.shared_peek(queue.url)
        if found.value is None:
            return JsonResponse({"error": found.error}, status=502)
        shared = found.value
        note = (
            "The page's export was not found (no token, or older than "
            f"{EXPORT_SECONDS // 60} minutes): these are the messages of the peek shared by "
            f"every viewer, read at {shared.peeked_at.isoformat()}."
        )
        shown = dlq.Peek(shown_messages(shared.messages(), masked), shared.receives, 0)
        kept = (
            export_text(queue, shown, source="shared peek", note=note, masked=masked),
            len(shown.messages),
        )
    text, count = kept
    record_read(request, ReadAudit.Kind.EXPORTED, queue.name, count, masked=masked, every_time=True)
    response = HttpResponse(text, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{queue.name}-messages.json"'
    return response


def export_text(queue: Dlq, peeked: dlq.Peek, *, source: str, masked: bool, note: str = "") -> str:
    """The export file of ``peeked`` (messages already masked when ``masked``)."""
    payload: dict[str, Any] = {
        "queue": queue.name,
        "source": source,
        "peeked_at": datetime.now(UTC).isoformat(),
        "visibility_seconds": peeked.visibility_seconds,
        # Sensitive values are masked: this file cannot be sent back as it is.
        "masked": masked,
        # Binary message attributes carry their bytes as base64 (BinaryEncoding says so).
        "binary_encoding": "base64",
        "messages": [m.export() for m in peeked.messages],
    }
    if note:
        payload["note"] = note
    return json.dumps(payload, indent=2, ensure_ascii=False)


def _export_key(token: str) -> str:
    return f"eventops:dlq-export:{token}"


def keep_export(queue: Dlq, peeked: dlq.Peek, *, masked: bool) -> str:
    """Keep the export of the peeked (shown) messages; the token for the export link ("" if
    too big). Whether it is masked is kept with it: an unmasked copy is never served to
    someone who must see it masked."""
    text = export_text(queue, peeked, source="page peek", masked=masked)
    if len(text) > MAX_KEPT_EXPORT_CHARS:
        return ""
    token = secrets.token_urlsafe(16)
    kept = {"queue": queue.url, "text": text, "masked": masked, "count": len(peeked.messages)}
    cache.set(_export_key(token), kept, EXPORT_SECONDS)
    return token


def kept_export(queue: Dlq, token: str, *, masked: bool) -> tuple[str, int] | None:
    """The export kept under ``token`` for this queue and its message count, or None (also
    when it is unmasked and ``masked`` says the requester must not see it so)."""
    if not EXPORT_TOKEN.match(token):
        return None
    kept = cache.get(_export_key(token))
    if not isinstance(kept, dict) or kept.get("queue") != queue.url:
        return None
    if masked and not kept.get("masked"):
        return None
    return str(kept["text"]), int(kept.get("count") or 0)
