from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    """Pages cache AWS reads; each test starts and ends with none."""
    cache.clear()
    yield
    cache.clear()
