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


@pytest.fixture
def filesystem_broker(tmp_path, monkeypatch):
    """The embedded filesystem broker, with its folders under ``tmp_path``."""
    from dashboard.celery import app

    folders = {name: tmp_path / name for name in ("out", "processed", "control")}
    for folder in folders.values():
        folder.mkdir()
    monkeypatch.setattr(app.conf, "broker_url", "filesystem://")
    monkeypatch.setattr(
        app.conf,
        "broker_transport_options",
        {
            "data_folder_in": str(folders["out"]),
            "data_folder_out": str(folders["out"]),
            "processed_folder": str(folders["processed"]),
            "control_folder": str(folders["control"]),
            "store_processed": False,
        },
    )
    return folders


@pytest.mark.django_db
def test_healthz_with_the_filesystem_broker_and_its_folders_is_healthy(client, filesystem_broker):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["checks"]["broker"]["ok"] is True


@pytest.mark.django_db
def test_healthz_is_503_when_a_filesystem_broker_folder_is_missing(client, filesystem_broker):
    filesystem_broker["out"].rmdir()

    response = client.get("/healthz")

    assert response.status_code == 503
    assert "data_folder_in does not exist" in response.json()["checks"]["broker"]["error"]
