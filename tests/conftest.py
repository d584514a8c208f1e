"""Shared fixtures: personas and a mocked AWS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from operations.aws import client as aws_client

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials for every test, so nothing can reach a real account."""
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws_client.reset()
    yield
    aws_client.reset()


@pytest.fixture
def aws(settings) -> Iterator[None]:
    """moto's mock_aws around the test, with the dashboard's client cache reset."""
    from moto import mock_aws

    settings.AWS_ENDPOINT_URL = ""
    settings.AWS_PROFILE = ""
    settings.AWS_REGION = "us-east-1"
    with mock_aws():
        aws_client.reset()
        yield
    aws_client.reset()
