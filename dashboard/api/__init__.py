"""The REST API, v1 (django-ninja), mounted at ``/api/v1/``.

Token auth only (``Authorization: Bearer``, ``operations.api_tokens``); no session, so no
CSRF. Every path that reads AWS takes the environment (``/env/{environment}/...``) and
every answer follows the pages' rules (``operations.access``, ``operations.masking``).
Errors are RFC 9457 problem documents (``problems``); POSTs honour ``Idempotency-Key``
(``idempotency``); lists are paginated (``pagination``). OpenAPI: ``/api/v1/openapi.json``;
docs (Swagger UI from ninja's own static files, no CDN): ``/api/v1/docs``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, path
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, ValidationError

from dashboard.api import archives, dlqs, failures, operations, reads
from dashboard.api.auth import TokenAuth
from dashboard.api.problems import Problem, respond
from operations.aws.errors import AwsError
from operations.enqueue import QueueUnavailable

api = NinjaAPI(
    title="eventops API",
    version="1",
    description=(
        "Operate the event system as the pages do: DLQs and redrives, operations, archives "
        "and replays, alarms, correlation lookups. Authenticate with a personal token "
        "(`Authorization: Bearer eo_...`, made on the API tokens page or with "
        "`manage.py apitoken create`). Errors are RFC 9457 problem documents. Send an "
        "`Idempotency-Key` header with every POST."
    ),
    auth=TokenAuth(),
    urls_namespace="api-v1",
    docs_url="/docs",
    openapi_url="/openapi.json",
)
api.add_router("", reads.router)
api.add_router("", dlqs.router)
api.add_router("", operations.router)
api.add_router("", archives.router)
api.add_router("", failures.router)


@api.exception_handler(Problem)
def _problem(request: HttpRequest, exc: Problem) -> HttpResponse:
    return respond(request, exc)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: Exception) -> HttpResponse:
    detail = "Send a valid API token: Authorization: Bearer <token> (missing, unknown, "
    detail += "expired or revoked)."
    return respond(request, Problem(401, detail, kind="unauthenticated"))


@api.exception_handler(AuthorizationError)
def _unauthorized(request: HttpRequest, exc: Exception) -> HttpResponse:
    return respond(request, Problem(403, str(exc) or "Forbidden.", kind="forbidden"))


@api.exception_handler(PermissionDenied)
def _denied(request: HttpRequest, exc: Exception) -> HttpResponse:
    return respond(request, Problem(403, str(exc) or "Forbidden.", kind="forbidden"))


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [
        {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", ""))}
        for e in exc.errors
    ]
    detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) or "Invalid input."
    return respond(request, Problem(422, detail, kind="validation-error", errors=errors))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
    return respond(request, Problem(404, str(exc) or "Not found.", kind="not-found"))


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return respond(request, Problem(exc.status_code, str(exc)))


@api.exception_handler(AwsError)
def _aws(request: HttpRequest, exc: AwsError) -> HttpResponse:
    return respond(request, Problem(502, str(exc), kind="aws-error"))


@api.exception_handler(QueueUnavailable)
def _queue(request: HttpRequest, exc: QueueUnavailable) -> HttpResponse:
    problem = Problem(503, str(exc), kind="queue-unavailable", operation_id=exc.operation_id)
    return respond(request, problem)


@csrf_exempt
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any other path under /api/: a problem document, not the HTML 404 page."""
    return respond(request, Problem(404, "No such API endpoint.", kind="not-found"))


def _open(patterns: list[Any]) -> list[Any]:
    """The API authenticates by token itself: exempt it from the login redirect."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            _open(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            pattern.callback.login_required = False  # type: ignore[attr-defined]
    return patterns


not_found.login_required = False  # type: ignore[attr-defined]


def urlpatterns() -> list[URLPattern | URLResolver]:
    urls, app_name, namespace = api.urls
    # ninja's root view answers an HTML 404: answer a problem there too (ninja reverses the
    # root's name for the OpenAPI document's server path).
    patterns = [
        path("", not_found, name="api-root") if getattr(p, "name", "") == "api-root" else p
        for p in urls
    ]
    return [
        path("api/v1/", (_open(patterns), app_name, namespace)),
        path("api/<path:rest>", not_found),
        path("api/", not_found),
    ]
