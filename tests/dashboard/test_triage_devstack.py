"""End to end: a poison payment in the devstack, and the DLQ page shows the exception the
consumer logged for it (shipped to its log group, read back with Logs Insights)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.urls import reverse

from operations.aws import client as aws_client
from tests.dashboard import poisoned_devstack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def poison_in_billing() -> Iterator[tuple[Any, str]]:
    """A running devstack (no background traffic) with one poison OrderPaid in billing's DLQ."""
    with poisoned_devstack.poison_in_billing(seed=5) as (devstack, billing, _order):
        yield devstack, billing.dlq_url


@pytest.fixture
def operator(db: Any, client: Any, settings: Any, poison_in_billing: tuple[Any, str]) -> Any:
    devstack, _url = poison_in_billing
    settings.AWS_ENDPOINT_URL = devstack.endpoint
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    aws_client.reset()
    cache.clear()
    user = User.objects.create(username="olga")
    user.groups.add(Group.objects.get(name="operator"))
    client.force_login(user)
    yield client
    cache.clear()
    aws_client.reset()


def test_the_dlq_page_shows_the_consumers_real_exception(
    operator: Any, poison_in_billing: tuple[Any, str]
) -> None:
    devstack, dlq_url = poison_in_billing
    name = dlq_url.rsplit("/", 1)[-1]

    def logged_error() -> Any:
        cache.clear()  # the consumer's line may still be on its way to the log group
        response = operator.get(reverse("operations:dlq_messages", args=["default", name]))
        groups = [
            group
            for _, _, group in response.context["by_group"]
            if group is not None and group.exception_name == "InvalidMessage"
        ]
        return (response, groups[0]) if groups else None

    found = poisoned_devstack.wait_for(logged_error, timeout=30)
    assert found, "no DLQ message showed its consumer's logged error"
    response, group = found
    assert group.consumer == devstack.provisioned.consumers["billing"].function_name
    assert "amount" in group.title and group.top_frame
    html = response.content.decode()
    assert "InvalidMessage: OrderPaid: amount" in html
