"""Fixtures shared by the operations tests (the stubbed clients are in tests/conftest.py)."""

from typing import Any

import pytest


@pytest.fixture(params=[1, 8], ids=["one-loop", "8-pipelines"])
def pipelines(request: pytest.FixtureRequest, settings: Any) -> int:
    """Run the test with the redrive's default concurrency at 1 (one loop) and at 8."""
    settings.EVENTOPS_REDRIVE_CONCURRENCY = request.param
    return int(request.param)
