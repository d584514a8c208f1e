"""Every view needs a login, except the login page, /healthz, the SNS hook (signed) and
/metrics (a token or an allowed network).

The test walks the whole URL configuration, so a view added later cannot forget.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

# The single sign-on endpoints are public (404 until it is configured); the admin's login
# page only sends people to ours.
PUBLIC = {
    "login",
    "healthz",
    "oidc_authentication_init",
    "oidc_authentication_callback",
    "admin_login",
    "sns_hook",
    "metrics",
}
# Django admin has its own login page; the JS catalog and static views are not ours.
ADMIN_PREFIX = "admin/"
# The REST API authenticates by token instead (test_anonymous_api_requests_are_401); its
# description and docs page are public, and unknown API paths answer a 404 problem.
API_PREFIX = "api/"
API_PUBLIC = {"api-v1:openapi-json", "api-v1:openapi-view", "api-v1:api-root", ""}


def _walk(patterns: list, prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            ns = entry.namespace or namespace
            full_ns = f"{namespace}:{entry.namespace}" if namespace and entry.namespace else ns
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), full_ns or "")
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else (entry.name or "")
            yield prefix + str(entry.pattern), name


def _sample_path(pattern: str) -> str:
    """Turn a route or regex into a concrete path with dummy values."""
    path = re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: "1" if m.group(1) == "int" else "x", pattern)
    path = path.lstrip("^").rstrip("$").replace("\\Z", "")
    path = re.sub(r"\(\?P<\w+>[^)]*\)", "x", path)
    path = path.replace("\\", "")
    return "/" + path


def _app_views() -> list[tuple[str, str]]:
    views = []
    for pattern, name in _walk(get_resolver().url_patterns):
        if pattern.startswith((ADMIN_PREFIX, API_PREFIX)) or name.split(":")[-1] in PUBLIC:
            continue
        views.append((_sample_path(pattern), name))
    return views


def test_walk_finds_the_url_configuration():
    names = {name for _, name in _walk(get_resolver().url_patterns)}
    assert {"login", "logout", "healthz"} <= names


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_requests_to_every_view_redirect_to_login(client, method):
    offenders = []
    for path, name in _app_views():
        response = getattr(client, method)(path)
        location = response.get("Location", "")
        if response.status_code not in (301, 302) or not location.startswith("/login/"):
            offenders.append(f"{method.upper()} {path} ({name}): {response.status_code}")
    assert offenders == []


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_api_requests_are_401(client, method):
    offenders = []
    for pattern, name in _walk(get_resolver().url_patterns):
        if not pattern.startswith(API_PREFIX) or name in API_PUBLIC:
            continue
        path = _sample_path(pattern)
        response = getattr(client, method)(path)
        # 405: the path exists for the other method only (ninja answers it before auth).
        if response.status_code not in (401, 405):
            offenders.append(f"{method.upper()} {path} ({name}): {response.status_code}")
    assert offenders == []


@pytest.mark.django_db
def test_admin_requires_a_staff_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_login_page_is_public(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b'name="password"' in response.content


def test_healthz_is_public(client, db):
    response = client.get("/healthz")
    assert "Location" not in response and response["Content-Type"] == "application/json"
    assert set(response.json()["checks"]) == {"database", "cache", "broker", "single_sign_on"}
