"""The DLQ messages page: the shared peek, errors, groups, loop warnings, JSON export."""

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

from dashboard.environment import environment_of
from dashboard.http import HtmxHttpRequest
from dashboard.views.dlq_common import Dlq, aws_errors, message_rows, resolve_dlq
from operations import dlq, dlq_peek
from operations.masking import for_viewer
from operations.triage import errors as triage_errors
from operations.triage.signature import signature_of

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
    """A DLQ's messages from the shared peek: each escaped and pretty-printed, with its
    consumer's error (masked for the viewer), grouped, with loop warnings."""
    queue = resolve_dlq(name)
    context: dict[str, object] = {"queue": queue}
    found = dlq_peek.shared_peek(queue.url)
    if found.value is None:
        return render(request, "dlq/messages.html", {**context, "error": found.error})
    shared = found.value
    messages = shared.messages()
    loops = dlq.redrive_loops(queue.url, (m.correlation_id for m in messages))
    peeked = dlq.Peek(messages=messages, receives=shared.receives, visibility_seconds=0)
    errors = triage_errors.errors_for(queue.url, messages)
    shown = messages[:PEEK_LIMIT]
    context.update(
        peek=peeked,
        shared=shared,
        read=found,
        stale_error=found.error,
        shown_count=len(shown),
        export_token=keep_export(queue, peeked),
        rows=with_errors(request, message_rows(shown, loops), errors),
        loops=sorted(loops.items()),
        by_event_type=dlq.group_by(messages, "event_type"),
        by_error=error_groups(request, messages, errors),
        error_notes=triage_errors.lookup(queue.url, messages).notes,
    )
    return render(request, "dlq/messages.html", context)


@require_GET
@aws_errors
def dlq_export(request: HtmxHttpRequest, name: str) -> HttpResponse:
    """The messages the page showed, as a JSON download (``?peek=<token>``, kept 15 min);
    without a valid token, the messages of the shared peek (which says so)."""
    queue = resolve_dlq(name)
    text = kept_export(queue, request.GET.get("peek", ""))
    if text is None:
        found = dlq_peek.shared_peek(queue.url)
        if found.value is None:
            return JsonResponse({"error": found.error}, status=502)
        shared = found.value
        peeked = dlq.Peek(shared.messages(), receives=shared.receives, visibility_seconds=0)
        note = (
            "The page's export was not found (no token, or older than "
            f"{EXPORT_SECONDS // 60} minutes): these are the messages of the peek shared by "
            f"every viewer, read at {shared.peeked_at.isoformat()}."
        )
        text = export_text(queue, peeked, source="shared peek", note=note)
    response = HttpResponse(text, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{queue.name}-messages.json"'
    return response


def with_errors(
    request: HtmxHttpRequest,
    rows: list[dict[str, Any]],
    errors: dict[str, triage_errors.ConsumerError],
) -> list[dict[str, Any]]:
    """Each row with its consumer's error, its text masked for the viewer."""
    environment = environment_of(request).name
    for row in rows:
        error = errors.get(row["m"].message_id)
        if error is None:
            continue
        row["error"] = error
        row["error_summary"] = for_viewer(error.summary, request.user, environment)
        row["error_traceback"] = for_viewer(error.traceback, request.user, environment)
    return rows


def error_groups(
    request: HtmxHttpRequest,
    messages: list[dlq.DlqMessage],
    errors: dict[str, triage_errors.ConsumerError],
) -> list[dict[str, Any]]:
    """Messages grouped by failure signature (consumer, exception, normalised message, top
    frame), largest first; titles masked for the viewer."""
    environment = environment_of(request).name
    groups: dict[str, dict[str, Any]] = {}
    for message in messages:
        error = errors.get(message.message_id)
        if error is None:
            continue
        signature = signature_of(error)
        group = groups.setdefault(
            signature.key,
            {
                "key": signature.key,
                "title": for_viewer(
                    signature.title if error.recorded else triage_errors.NO_ERROR,
                    request.user,
                    environment,
                ),
                "consumer": signature.consumer,
                "top_frame": signature.top_frame,
                "source": error.source,
                "count": 0,
            },
        )
        group["count"] += 1
    # Largest first; at equal counts, recorded errors before "no error recorded".
    return sorted(groups.values(), key=lambda g: (-g["count"], g["source"] == "none", g["title"]))


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
