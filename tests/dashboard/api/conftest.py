"""Fixtures for the REST API: bearer-token clients for the personas, and the DLQ world."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from operations import api_tokens
from tests.dashboard.dlq.conftest import Queues, queues  # noqa: F401  (fixture)

__all__ = ["Queues", "api_client", "bearer"]


def bearer(user: Any, name: str = "ci") -> dict[str, str]:
    """Headers that authenticate as ``user`` with a new token called ``name``."""
    made = api_tokens.create(user, name)
    return {"Authorization": f"Bearer {made.plaintext}"}


class ApiClient:
    """A test client that sends a token and JSON bodies."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.client = Client()
        self.headers = headers

    def get(self, path: str, data: dict[str, Any] | None = None, **headers: str) -> Any:
        return self.client.get(path, data, headers={**self.headers, **headers})

    def post(self, path: str, body: dict[str, Any] | None = None, **headers: str) -> Any:
        return self.client.post(
            path, body or {}, content_type="application/json", headers={**self.headers, **headers}
        )


def api_client(user: Any, name: str = "ci") -> ApiClient:
    return ApiClient(bearer(user, name))


@pytest.fixture
def operator_api(operator) -> ApiClient:
    return api_client(operator, "deploy-bot")


@pytest.fixture
def viewer_api(viewer) -> ApiClient:
    return api_client(viewer)


@pytest.fixture
def admin_api(admin) -> ApiClient:
    return api_client(admin)


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
