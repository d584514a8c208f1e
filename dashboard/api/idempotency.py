"""``Idempotency-Key`` on every POST: the same key from the same user gets the same answer
(status and body) for 24 hours, so a retried call never starts a second operation; the same
key with a different request is a 422 problem; while the first is still being answered, a
409. Answers of 5xx are not kept, so a retry after a failure runs again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from dashboard.api.problems import Problem, body_response, document
from operations.aws.errors import AwsError
from operations.enqueue import QueueUnavailable
from operations.models import IdempotencyKey

HEADER = "Idempotency-Key"
KEEP = timedelta(hours=24)
ABANDONED = timedelta(minutes=5)
MAX_KEY = 255

Answer = tuple[int, dict[str, Any]]


def request_hash(request: HttpRequest, payload: dict[str, Any]) -> str:
    canonical = json.dumps(
        {"method": request.method, "path": request.path, "body": payload},
        sort_keys=True,
        default=str,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def answer(request: HttpRequest, handler: Callable[[], Answer]) -> Answer:
    """Run ``handler``; a ``Problem`` or an AWS or broker failure becomes its document."""
    try:
        return handler()
    except Problem as problem:
        return problem.status, document(request, problem)
    except QueueUnavailable as exc:
        unavailable = Problem(
            503, str(exc), kind="queue-unavailable", operation_id=exc.operation_id
        )
        return 503, document(request, unavailable)
    except AwsError as exc:
        return 502, document(request, Problem(502, str(exc), kind="aws-error"))


def idempotent(
    request: HttpRequest, payload: dict[str, Any], handler: Callable[[], Answer]
) -> JsonResponse:
    """Answer a POST once per ``Idempotency-Key`` (see the module docstring)."""
    key = request.headers.get(HEADER, "").strip()
    if not key:
        return body_response(*answer(request, handler))
    if len(key) > MAX_KEY or not key.isprintable():
        raise Problem(400, f"{HEADER} must be 1 to {MAX_KEY} printable characters.")
    user: Any = request.user
    digest = request_hash(request, payload)
    now = timezone.now()
    IdempotencyKey.objects.filter(user=user, key=key, created__lt=now - KEEP).delete()
    # A first request whose process died mid-answer must not block its key for a day.
    IdempotencyKey.objects.filter(
        user=user, key=key, response_status__isnull=True, created__lt=now - ABANDONED
    ).delete()
    try:
        with transaction.atomic():
            row = IdempotencyKey.objects.create(user=user, key=key, request_hash=digest)
    except IntegrityError:
        return _replay(user, key, digest)
    try:
        status, body = answer(request, handler)
    except BaseException:
        row.delete()
        raise
    if status >= 500:
        row.delete()
    else:
        IdempotencyKey.objects.filter(pk=row.pk).update(response_status=status, response_body=body)
    return body_response(status, body)


def _replay(user: Any, key: str, digest: str) -> JsonResponse:
    row = IdempotencyKey.objects.filter(user=user, key=key).first()
    if row is None:  # answered with a 5xx and dropped meanwhile: ask for a retry
        raise Problem(409, "A request with this Idempotency-Key just failed; retry it.")
    if row.request_hash != digest:
        raise Problem(
            422,
            f"This {HEADER} was used for a different request; use a new key.",
            kind="idempotency-key-reused",
        )
    if row.response_status is None:
        raise Problem(
            409,
            f"A request with this {HEADER} is still being answered; retry shortly.",
            kind="idempotency-key-in-progress",
        )
    response = body_response(row.response_status, row.response_body or {})
    response["Idempotent-Replayed"] = "true"
    return response
