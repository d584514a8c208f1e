from __future__ import annotations

import pytest

from dashboard.views import health


@pytest.mark.django_db
def test_healthz_reports_each_dependency(client):
    response = client.get("/healthz")
    body = response.json()
    assert set(body["checks"]) == {"database", "cache", "broker"}
    assert response.status_code == 200 and body["ok"] is True


@pytest.mark.django_db
def test_healthz_answers_503_and_names_the_broken_dependency(client, monkeypatch):
    def broken() -> None:
        raise ConnectionError("broker unreachable")

    monkeypatch.setitem(health.CHECKS, "broker", broken)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "broker unreachable" in response.json()["checks"]["broker"]["error"]


@pytest.mark.django_db
def test_healthz_refuses_post(client):
    assert client.post("/healthz").status_code == 405
