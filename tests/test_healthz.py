from __future__ import annotations

import pytest

from dashboard.views import health


@pytest.mark.django_db
def test_healthz_reports_each_dependency(client):
    response = client.get("/healthz")
    body = response.json()
    assert body["checks"] == {
        "database": "ok",
        "cache": "ok",
        "broker": "ok",
        "single_sign_on": "unconfigured",
    }
    assert response.status_code == 200 and body["ok"] is True


@pytest.mark.django_db
def test_healthz_answers_503_and_names_the_broken_dependency(client, monkeypatch, caplog):
    def broken() -> None:
        raise ConnectionError("broker unreachable at redis://:hunter2@10.1.2.3")

    monkeypatch.setitem(health.CHECKS, "broker", broken)
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["checks"]["broker"] == "error"
    # Why goes to the server's log only: the page needs no login.
    assert b"hunter2" not in response.content and b"10.1.2.3" not in response.content
    assert "hunter2" in caplog.text


@pytest.mark.django_db
def test_healthz_checks_single_sign_on_once_configured(client, settings, monkeypatch):
    from dashboard import oidc

    settings.OIDC_RP_CLIENT_ID = "eventops"
    settings.OIDC_OP_DISCOVERY_URL = ""
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = "https://idp.example/authorize"
    assert client.get("/healthz").json()["checks"]["single_sign_on"] == "ok"
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = ""
    monkeypatch.setattr(oidc, "_discovery_document", lambda url: {})
    settings.OIDC_OP_DISCOVERY_URL = "https://idp.example/.well-known/openid-configuration"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["single_sign_on"] == "error"


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
    assert response.status_code == 200 and response.json()["checks"]["broker"] == "ok"


@pytest.mark.django_db
def test_healthz_is_503_when_a_filesystem_broker_folder_is_missing(
    client, filesystem_broker, caplog
):
    filesystem_broker["out"].rmdir()

    response = client.get("/healthz")

    assert response.status_code == 503 and response.json()["checks"]["broker"] == "error"
    assert "data_folder_in does not exist" in caplog.text
