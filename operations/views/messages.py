"""The DLQ messages page: peek (short visibility), groups, loop warnings, JSON export."""

from __future__ import annotations

import json

from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboard.http import HtmxHttpRequest
from operations import dlq
from operations.access import is_operator
from operations.aws.errors import AwsError
from operations.views.common import aws_errors, message_rows, remember_loops, resolve_dlq

# How many messages one peek shows (bounded receives of 10).
PEEK_LIMIT = 50


@require_GET
@aws_errors
def dlq_messages(request: HtmxHttpRequest, name: str) -> HttpResponse:
    """Peek at a DLQ: each message escaped and pretty-printed, grouped, with loop warnings."""
    queue = resolve_dlq(name)
    context: dict[str, object] = {"queue": queue, "is_operator": is_operator(request.user)}
    try:
        peeked = dlq.peek(queue.url, limit=PEEK_LIMIT)
    except AwsError as exc:
        return render(request, "dlq/messages.html", {**context, "error": exc})
    loops = dlq.redrive_loops(queue.url, (m.correlation_id for m in peeked.messages))
    remember_loops(loops)
    context.update(
        peek=peeked,
        rows=message_rows(peeked.messages, loops),
        loops=sorted(loops.items()),
        by_event_type=dlq.group_by(peeked.messages, "event_type"),
        by_error=dlq.group_by(peeked.messages, "error"),
    )
    return render(request, "dlq/messages.html", context)


@require_GET
@aws_errors
def dlq_export(request: HtmxHttpRequest, name: str) -> HttpResponse:
    """The peeked messages as a JSON download (a fresh peek: it hides them too)."""
    queue = resolve_dlq(name)
    try:
        peeked = dlq.peek(queue.url, limit=PEEK_LIMIT)
    except AwsError as exc:
        return JsonResponse({"error": str(exc)}, status=502)
    payload = {
        "queue": queue.name,
        "visibility_seconds": peeked.visibility_seconds,
        "messages": [m.export() for m in peeked.messages],
    }
    response = HttpResponse(
        json.dumps(payload, indent=2, ensure_ascii=False), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="{queue.name}-messages.json"'
    return response
