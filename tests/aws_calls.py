"""Counting every AWS call a test makes, whatever client or session makes it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.client import BaseClient


@pytest.fixture
def aws_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """A Counter of ``service.Operation`` for every API call made while the test runs."""
    calls: Counter[str] = Counter()
    real = BaseClient._make_api_call

    def counting(self: Any, operation_name: str, api_params: Any) -> Any:
        calls[f"{self.meta.service_model.service_name}.{operation_name}"] += 1
        return real(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    yield calls
