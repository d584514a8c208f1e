"""Fixtures shared by the operations tests (the stubbed clients are in tests/conftest.py)."""

import sys
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(params=[1, 8], ids=["one-loop", "8-pipelines"])
def pipelines(request: pytest.FixtureRequest, settings: Any) -> int:
    """Run the test with the redrive's default concurrency at 1 (one loop) and at 8."""
    settings.EVENTOPS_REDRIVE_CONCURRENCY = request.param
    return int(request.param)


@pytest.fixture
def threads_switch_often() -> Iterator[None]:
    """Threads switch as often as Python lets them: a loaded CI machine's interleavings
    (where a race in moto's SQS showed), in every run of a test that uses pipelines."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


@pytest.fixture
def handles(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Receipt handles of every receive, to end a dead run's hiding like time would."""
    from operations.aws import sqs

    seen: list[str] = []
    real = sqs.receive_messages

    def record(url: str, **kwargs: Any) -> list[sqs.SqsMessage]:
        batch = real(url, **kwargs)
        seen.extend(m.receipt_handle for m in batch)
        return batch

    monkeypatch.setattr(sqs, "receive_messages", record)
    yield seen
