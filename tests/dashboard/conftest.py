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


@pytest.fixture
def ada(db):
    """A client signed in as ``ada``, of the ``admin`` group (no password: none is hashed)."""
    from django.contrib.auth.models import Group, User
    from django.test import Client

    from tests.conftest import ensure_groups

    ensure_groups()
    user = User.objects.create_user("ada")
    user.groups.add(Group.objects.get(name="admin"))
    client = Client()
    client.force_login(user)
    return client
