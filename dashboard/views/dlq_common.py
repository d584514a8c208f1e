"""Helpers shared by the DLQ operation views."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch

from dashboard import converters
from dashboard.environment import env_reverse, environment_of
from operations import dlq, explain, masking, read_audit
from operations.aws import sqs
from operations.aws.errors import AwsError
from operations.dlq_sources import is_dead_letter_queue
from operations.dlq_sources import source_choices as source_choices  # the views' helper
from operations.enqueue import QueueUnavailable

logger = logging.getLogger(__name__)


def aws_errors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Render an AWS failure the view did not handle as a clear 502 page, never a 500."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except AwsError as exc:
            logger.warning("%s: %s", request.path, exc)
            return render(
                request,
                "dlq/aws_error.html",
                {"error": exc, "explained": explain.describe(exc)},
                status=502,
            )

    return wrapper


def queue_errors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Answer a start whose task the broker could not take with a clear 503, never a
    500: its row was marked failed (``operations.enqueue``), so nothing stays locked."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except QueueUnavailable as exc:
            logger.error("%s: %s", request.path, exc)
            context = {"error": exc, "operation_id": exc.operation_id}
            return render(request, "operations/queue_unavailable.html", context, status=503)

    return wrapper


@dataclass
class Dlq:
    name: str
    url: str
    attributes: sqs.QueueAttributes


def resolve_dlq(name: str) -> Dlq:
    """The dead-letter queue called ``name``; 404 if the name is invalid, no such queue
    exists, or no queue sends it its dead letters (peeking a live queue would raise its
    messages' receive counts and push healthy messages toward its DLQ).
    Other AWS errors propagate as ``AwsError`` for the page to show."""
    if not converters.valid("queue", name):
        raise Http404("No such queue.")
    try:
        url = sqs.queue_url(name)
        queue = Dlq(name=name, url=url, attributes=sqs.queue_attributes(url))
    except AwsError as exc:
        if exc.not_found:
            raise Http404("No such queue.") from exc
        raise
    if not is_dead_letter_queue(queue.attributes):
        raise Http404(f"{name} is not a dead-letter queue.")
    return queue


def correlation_url(correlation_id: str) -> str | None:
    """The correlation lookup for this ID, once that page exists."""
    if not correlation_id:
        return None
    try:
        return env_reverse("correlation") + "?" + urlencode({"q": correlation_id})
    except NoReverseMatch:
        return None


def user_name(request: HttpRequest) -> str:
    return str(request.user.get_username())


def seen_loops(operation_id: int) -> list[str]:
    return dlq.loops_of_operation(operation_id)


def masked_here(request: HttpRequest) -> bool:
    """Whether this person sees bodies masked in the request's environment."""
    return masking.must_mask(request.user, environment_of(request).name)


def shown_messages(messages: list[dlq.DlqMessage], masked: bool) -> list[dlq.DlqMessage]:
    """The messages as this person may see them: the one place a DLQ page masks."""
    return [m.masked for m in messages] if masked else messages


def record_read(
    request: HttpRequest,
    kind: str,
    target: str,
    count: int,
    *,
    masked: bool,
    every_time: bool = False,
) -> None:
    """Audit a read of message bodies from a page (operations/read_audit.py)."""
    if count:
        read_audit.record(
            request.user,
            kind,
            target,
            count=count,
            unmasked=not masked,
            environment=environment_of(request).name,
            every_time=every_time,
        )


def message_rows(
    messages: list[dlq.DlqMessage], loops: dict[str, list[int]]
) -> list[dict[str, Any]]:
    return [
        {
            "m": m,
            "correlation_url": correlation_url(m.correlation_id),
            "loop_operations": loops.get(m.correlation_id, []),
        }
        for m in messages
    ]
