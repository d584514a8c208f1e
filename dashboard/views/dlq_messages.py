"""The DLQ messages page: peek (short visibility), groups, loop warnings, JSON export."""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any

from django.core.cache import cache
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboard.http import HtmxHttpRequest
from dashboard.views.dlq_common import Dlq, aws_errors, message_rows, remember_loops, resolve_dlq
from operations import dlq
from operations.access import Action, require_here
from operations.aws.errors import AwsError

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
    """Peek at a DLQ: each message escaped and pretty-printed, grouped, with loop warnings."""
    require_here(request, Action.VIEW_BODIES)
    queue = resolve_dlq(name)
    context: dict[str, object] = {"queue": queue}
    try:
        peeked = dlq.peek(queue.url, limit=PEEK_LIMIT)
    except AwsError as exc:
        return render(request, "dlq/messages.html", {**context, "error": exc})
    loops = dlq.redrive_loops(queue.url, (m.correlation_id for m in peeked.messages))
    remember_loops(queue.url, len(peeked.messages), loops)
    context.update(
        peek=peeked,
        export_token=keep_export(queue, peeked),
        rows=message_rows(peeked.messages, loops),
        loops=sorted(loops.items()),
        by_event_type=dlq.group_by(peeked.messages, "event_type"),
        by_error=dlq.group_by(peeked.messages, "error"),
    )
    return render(request, "dlq/messages.html", context)


@require_GET
@aws_errors
def dlq_export(request: HtmxHttpRequest, name: str) -> HttpResponse:
    """The messages the page showed, as a JSON download (``?peek=<token>``, kept 15 min);
    without a valid token, a fresh peek, which says so (it cannot return hidden messages)."""
    require_here(request, Action.EXPORT)
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
