"""RFC 9457 problem documents: every error the API answers is one.

``Problem`` is raised by handlers (and by the helpers in ``auth``); the exception
handlers registered in ``dashboard.api`` turn it, ninja's validation and authentication
errors, 404s, permission refusals and AWS failures into ``application/problem+json``.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.http import HttpRequest, JsonResponse

CONTENT_TYPE = "application/problem+json"
# Problem types are relative URIs documented in the README's API section.
TYPE_BASE = "/api/v1/problems/"


class Problem(Exception):
    """An error answered as a problem document."""

    def __init__(
        self, status: int, detail: str, *, kind: str = "", title: str = "", **extra: Any
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind or _slug(status)
        self.title = title or HTTPStatus(status).phrase
        self.extra = extra


def _slug(status: int) -> str:
    return HTTPStatus(status).phrase.lower().replace(" ", "-").replace("'", "")


def document(request: HttpRequest, problem: Problem) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_BASE + problem.kind,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.get_full_path()[:2000],
    }
    body.update(problem.extra)
    return body


def respond(request: HttpRequest, problem: Problem) -> JsonResponse:
    response = JsonResponse(document(request, problem), status=problem.status)
    response["Content-Type"] = CONTENT_TYPE
    if problem.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="eventops"'
    return response


def body_response(status: int, body: dict[str, Any]) -> JsonResponse:
    """A stored answer replayed (``Idempotency-Key``), problems keeping their type."""
    response = JsonResponse(body, status=status)
    if status >= 400:
        response["Content-Type"] = CONTENT_TYPE
    return response
