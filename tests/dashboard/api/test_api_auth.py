"""API v1: token auth (401 problems), environments, unknown paths, OpenAPI and its docs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from operations import api_tokens
from operations.models import ApiToken
from tests.dashboard.api.conftest import api_client, bearer

pytestmark = pytest.mark.django_db
ENVIRONMENTS = "/api/v1/environments/"
PROBLEM = "application/problem+json"


def test_no_token_is_a_401_problem(client: Client) -> None:
    response = client.get(ENVIRONMENTS)
    body = response.json()
    assert (response.status_code, response["Content-Type"]) == (401, PROBLEM)
    assert body["status"] == 401 and body["instance"] == ENVIRONMENTS
    assert body["type"].endswith("/unauthenticated") and response["WWW-Authenticate"]


def test_a_wrong_token_is_401(client: Client, viewer) -> None:
    made = api_tokens.create(viewer, "x")
    forged = made.plaintext[:-4] + "AAAA"
    response = client.get(ENVIRONMENTS, headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


@pytest.mark.parametrize("field", ["revoked_at", "expires_at"])
def test_revoked_or_expired_token_is_401(client: Client, viewer, field: str) -> None:
    headers = bearer(viewer)
    assert client.get(ENVIRONMENTS, headers=headers).status_code == 200
    ApiToken.objects.update(**{field: timezone.now() - timedelta(seconds=1)})
    assert client.get(ENVIRONMENTS, headers=headers).status_code == 401


def test_a_session_alone_does_not_open_the_api(viewer_client: Client) -> None:
    assert viewer_client.get(ENVIRONMENTS).status_code == 401


def test_environments_lists_the_ones_the_user_sees(viewer) -> None:
    body = api_client(viewer).get(ENVIRONMENTS).json()
    assert [e["name"] for e in body] == ["default"]
    assert body[0]["url"] == "http://testserver/api/v1/env/default/overview"


def test_token_use_is_recorded(viewer) -> None:
    api_client(viewer).get(ENVIRONMENTS)
    assert ApiToken.objects.get().last_used_at is not None


def test_unknown_api_path_is_a_404_problem(viewer) -> None:
    response = api_client(viewer).get("/api/v1/nothing/here")
    assert (response.status_code, response["Content-Type"]) == (404, PROBLEM)


def test_unknown_environment_is_a_404_problem(viewer) -> None:
    response = api_client(viewer).get("/api/v1/env/nowhere/operations/")
    assert response.status_code == 404 and "nowhere" in response.json()["detail"]


def test_bad_query_is_a_422_problem(viewer) -> None:
    response = api_client(viewer).get("/api/v1/env/default/operations/", {"limit": "many"})
    body = response.json()
    assert (response.status_code, response["Content-Type"]) == (422, PROBLEM)
    assert body["errors"][0]["loc"][-1] == "limit"


def test_openapi_document_is_public_and_describes_the_redrive(client: Client) -> None:
    document = client.get("/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/env/{environment}/dlqs/{name}/redrive" in document["paths"]


def test_docs_page_uses_the_projects_own_static_files(client: Client) -> None:
    response = client.get("/api/v1/docs")
    html = response.content.decode()
    assert response.status_code == 200 and "/static/ninja/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "script-src 'self'" in response["Content-Security-Policy"]


def test_token_posts_need_no_csrf_token(operator) -> None:
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(
        "/api/v1/env/default/operations/999/cancel",
        {"reason": "x"},
        content_type="application/json",
        headers=bearer(operator),
    )
    assert response.status_code == 404  # reached the handler: no CSRF refusal
