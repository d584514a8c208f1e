"""The API docs page renders Swagger UI from the project's static files under its CSP."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_api_docs_render_without_csp_violations_or_outside_requests(live_server, page):
    problems: list[str] = []
    requested: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: requested.append(r.url))
    page.goto(f"{live_server.url}/api/v1/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
    assert "eventops API" in page.locator(".swagger-ui .info .title").inner_text()
    assert page.locator(".opblock").count() > 5
    assert [p for p in problems if "Content Security Policy" in p] == []
    assert all(url.startswith(live_server.url) or url.startswith("data:") for url in requested)
