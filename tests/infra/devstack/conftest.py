"""Fixtures for the devstack tests: moto in-process and devstack clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from infra.devstack.clients import Clients


@pytest.fixture
def moto_clients() -> Iterator[Clients]:
    """Devstack clients inside ``mock_aws`` (the root conftest sets fake credentials)."""
    with mock_aws():
        yield Clients(endpoint_url=None, region="us-east-1")
