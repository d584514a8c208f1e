"""Helpers shared by the DLQ operation views."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from operations import dlq
from operations.aws import sqs
from operations.aws.errors import AwsError

logger = logging.getLogger(__name__)

# SQS queue names: 1-80 of [A-Za-z0-9_-], ".fifo" for FIFO queues.
QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}(\.fifo)?$")
# Where the DLQ page leaves the redrive loops it saw, for the operation page (1 day).
LOOP_CACHE_SECONDS = 24 * 3600


def aws_errors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Render an AWS failure the view did not handle as a clear 502 page, never a 500."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except AwsError as exc:
            logger.warning("%s: %s", request.path, exc)
            return render(request, "dlq/aws_error.html", {"error": exc}, status=502)

    return wrapper


@dataclass
class Dlq:
    name: str
    url: str
    attributes: sqs.QueueAttributes


def resolve_dlq(name: str) -> Dlq:
    """The queue called ``name``; 404 if the name is invalid or no such queue exists.
    Other AWS errors propagate as ``AwsError`` for the page to show."""
    if not QUEUE_NAME.match(name):
        raise Http404("No such queue.")
    try:
        url = sqs.queue_url(name)
        return Dlq(name=name, url=url, attributes=sqs.queue_attributes(url))
    except AwsError as exc:
        if exc.not_found:
            raise Http404("No such queue.") from exc
        raise


def source_choices(dlq_url: str) -> list[tuple[str, str]]:
    """(ARN, name) of the DLQ's source queues: the only destinations a redrive may use."""
    choices = []
    for url in sqs.dead_letter_source_queue_urls(dlq_url):
        choices.append((sqs.queue_attributes(url).arn, sqs.queue_name_from_url(url)))
    return sorted(choices, key=lambda c: c[1])


def correlation_url(correlation_id: str) -> str | None:
    """The correlation lookup for this ID, once that page exists."""
    if not correlation_id:
        return None
    try:
        return reverse("correlation") + "?" + urlencode({"q": correlation_id})
    except NoReverseMatch:
        return None


def user_name(request: HttpRequest) -> str:
    return str(request.user.get_username())


def remember_loops(loops: dict[str, list[int]]) -> None:
    """Let each redrive's page know which of its correlation IDs came back to the DLQ."""
    by_operation: dict[int, set[str]] = {}
    for correlation_id, operation_ids in loops.items():
        for operation_id in operation_ids:
            by_operation.setdefault(operation_id, set()).add(correlation_id)
    for operation_id, ids in by_operation.items():
        key = f"eventops:redrive-loop:{operation_id}"
        cache.set(key, sorted(set(cache.get(key, [])) | ids)[:200], LOOP_CACHE_SECONDS)


def seen_loops(operation_id: int) -> list[str]:
    return list(cache.get(f"eventops:redrive-loop:{operation_id}", []))


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
