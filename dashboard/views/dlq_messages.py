"""The DLQ messages page: a dense table over the latest scan or a peek, with each message's
error and failure group; loop warnings, JSON export."""

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
from dashboard.views.dlq_common import Dlq, aws_errors, remember_loops, resolve_dlq
from dashboard.views.dlq_table import (
    TABLE_PAGE,
    decorate,
    peek_bodies,
    scan_context,
    table_links,
)
from operations import dlq
from operations.aws.errors import AwsError
from operations.triage import groups, scan, table
from operations.triage.errors import errors_for

# How many messages one peek shows (bounded receives of 10).
PEEK_LIMIT = 50
# The page keeps the export of what it showed this long, under a random token: a second
# peek could not return them (the first one hides them).
EXPORT_SECONDS = 15 * 60
# Exports larger than this are not kept (50 bodies of 256 KiB, escaped, can reach ~25 MB).
MAX_KEPT_EXPORT_CHARS = 8 * 1024 * 1024
EXPORT_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@require_GET
@aws_errors
def dlq_messages(request: HtmxHttpRequest, name: str) -> HttpResponse:
    """The DLQ's messages as a dense table: the latest scan's rows, or before any scan (or
    with ``?peek=1``) a peek's messages, each with its error and failure group."""
    queue = resolve_dlq(name)
    form = TableForm(request.GET or None)
    context: dict[str, object] = {"queue": queue, "form": form}
    if form.is_bound and not form.is_valid():
        return _render(request, {**context, "invalid": True}, status=400)
    filters = form.filters()
    context.update(filters=filters, links=table_links(request, filters))
    latest = None if request.GET.get("peek") else scan.latest_scan(queue.url)
    if latest is not None:
        context.update(scan_context(queue, latest, filters, request.GET.get("page")))
        return _render(request, context)
    try:
        peeked = dlq.peek(queue.url, limit=PEEK_LIMIT)
        seen = groups.classify(peeked.messages, errors_for(queue.url, peeked.messages))
    except AwsError as exc:
        return _render(request, {**context, "error": exc})
    loops = dlq.redrive_loops(queue.url, (m.correlation_id for m in peeked.messages))
    remember_loops(queue.url, len(peeked.messages), loops)
    found = groups.record(environment_of(request).name, queue.url, queue.name, seen)
    page = Paginator(table.peek_rows(seen, filters), TABLE_PAGE).get_page(request.GET.get("page"))
    by_group, by_type = table.peek_counts(table.peek_rows(seen, table.TableFilters()))
    group_ids = {k: g.pk for k, g in found.items()}
    context.update(
        peek=peeked,
        export_token=keep_export(queue, peeked),
        loops=sorted(loops.items()),
        page=page,
        rows=decorate(queue.name, page, group_ids, peek_bodies(request, page)),
        by_group=[(k, n, found.get(k)) for k, n in by_group],
        by_event_type=by_type,
    )
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
    without a valid token, a fresh peek, which says so (it cannot return hidden messages)."""
    queue = resolve_dlq(name)
    text = kept_export(queue, request.GET.get("peek", ""))
    if text is None:
        try:
            peeked = dlq.peek(queue.url, limit=PEEK_LIMIT)
        except AwsError as exc:
            return JsonResponse({"error": str(exc)}, status=502)
        note = (
            "A fresh peek: the page's peek was not found (no token, or older than "
            f"{EXPORT_SECONDS // 60} minutes). It does not include messages still hidden by "
            f"that peek, and it hides these for {peeked.visibility_seconds} seconds."
        )
        text = export_text(queue, peeked, source="fresh peek", note=note)
    response = HttpResponse(text, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{queue.name}-messages.json"'
    return response


def export_text(queue: Dlq, peeked: dlq.Peek, *, source: str, note: str = "") -> str:
    payload: dict[str, Any] = {
        "queue": queue.name,
        "source": source,
        "peeked_at": datetime.now(UTC).isoformat(),
        "visibility_seconds": peeked.visibility_seconds,
        # Binary message attributes carry their bytes as base64 (BinaryEncoding says so).
        "binary_encoding": "base64",
        "messages": [m.export() for m in peeked.messages],
    }
    if note:
        payload["note"] = note
    return json.dumps(payload, indent=2, ensure_ascii=False)


def _export_key(token: str) -> str:
    return f"eventops:dlq-export:{token}"


def keep_export(queue: Dlq, peeked: dlq.Peek) -> str:
    """Keep the export of the peeked messages; the token for the export link ("" if too big)."""
    text = export_text(queue, peeked, source="page peek")
    if len(text) > MAX_KEPT_EXPORT_CHARS:
        return ""
    token = secrets.token_urlsafe(16)
    cache.set(_export_key(token), {"queue": queue.url, "text": text}, EXPORT_SECONDS)
    return token


def kept_export(queue: Dlq, token: str) -> str | None:
    """The export kept under ``token`` for this queue, or None."""
    if not EXPORT_TOKEN.match(token):
        return None
    kept = cache.get(_export_key(token))
    if not isinstance(kept, dict) or kept.get("queue") != queue.url:
        return None
    return str(kept["text"])
