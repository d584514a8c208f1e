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

from dashboard.http import HtmxHttpRequest
from dashboard.views.dlq_common import (
    Dlq,
    aws_errors,
    masked_here,
    message_rows,
    record_read,
    resolve_dlq,
    shown_messages,
)
from operations import dlq, dlq_peek, masking
from operations.access import Action, require_here
from operations.read_audit import ReadAudit
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
    consumer's error, grouped, with loop warnings; masked for whoever may not see it
    unmasked, and the read audited."""
    require_here(request, Action.VIEW_BODIES)
    queue = resolve_dlq(name)
    masked = masked_here(request)
    context: dict[str, object] = {"queue": queue, "masked": masked}
    found = dlq_peek.shared_peek(queue.url)
    if found.value is None:
        return render(request, "dlq/messages.html", {**context, "error": found.error})
    messages = found.value.messages()
    loops = dlq.redrive_loops(queue.url, (m.correlation_id for m in messages))
    errors = triage_errors.errors_for(queue.url, messages)
    shown = dlq.Peek(shown_messages(messages, masked), found.value.receives, 0)
    context.update(
        peek=shown,
        shared=found.value,
        read=found,
        stale_error=found.error,
        shown_count=min(PEEK_LIMIT, len(messages)),
        export_token=keep_export(queue, shown, masked=masked),
        rows=with_errors(message_rows(shown.messages[:PEEK_LIMIT], loops), errors, masked),
        loops=sorted(loops.items()),
        by_event_type=dlq.group_by(shown.messages, "event_type"),
        by_error=error_groups(messages, errors, masked),
        error_notes=triage_errors.lookup(queue.url, messages).notes,
    )
    kind = ReadAudit.Kind.VIEWED_BODIES
    record_read(request, kind, queue.name, len(shown.messages), masked=masked)
    return render(request, "dlq/messages.html", context)


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


def _shown(text: str, masked: bool) -> str:
    return masking.mask_text(text) if masked else text


def with_errors(
    rows: list[dict[str, Any]], errors: dict[str, triage_errors.ConsumerError], masked: bool
) -> list[dict[str, Any]]:
    """Each row with its consumer's error, its text masked when the viewer must see it so."""
    for row in rows:
        error = errors.get(row["m"].message_id)
        if error is None:
            continue
        row["error"] = error
        row["error_summary"] = _shown(error.summary, masked)
        row["error_traceback"] = _shown(error.traceback, masked)
    return rows


def error_groups(
    messages: list[dlq.DlqMessage], errors: dict[str, triage_errors.ConsumerError], masked: bool
) -> list[dict[str, Any]]:
    """Messages grouped by failure signature (consumer, exception, normalised message, top
    frame), largest first; titles masked when the viewer must see them so."""
    groups: dict[str, dict[str, Any]] = {}
    for message in messages:
        error = errors.get(message.message_id)
        if error is None:
            continue
        signature = signature_of(error)
        title = signature.title if error.recorded else triage_errors.NO_ERROR
        group = groups.setdefault(
            signature.key,
            {
                "key": signature.key,
                "title": _shown(title, masked),
                "consumer": signature.consumer,
                "top_frame": signature.top_frame,
                "source": error.source,
                "count": 0,
            },
        )
        group["count"] += 1
    # Largest first; at equal counts, recorded errors before "no error recorded".
    return sorted(groups.values(), key=lambda g: (-g["count"], g["source"] == "none", g["title"]))


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
