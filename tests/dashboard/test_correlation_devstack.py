"""End to end: the correlation page on devstack data, for an order whose payment failed in
billing. Uses the devstack's public API (infra.devstack.main.Devstack) with its traffic off,
so exactly one poison OrderPaid is sent, then the dashboard is pointed at its moto server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.urls import reverse

from operations.aws import client as aws_client
from tests.dashboard import poisoned_devstack
from tests.dashboard.poisoned_devstack import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def failed_in_billing() -> Iterator[tuple[object, str]]:
    """A running devstack and the correlation ID of one order whose OrderPaid is poison."""
    with poisoned_devstack.poison_in_billing(seed=11) as (devstack, _billing, order):
        yield devstack, order.correlation_id


@pytest.fixture
def viewer(db, client, settings, failed_in_billing):
    devstack, _cid = failed_in_billing
    settings.AWS_ENDPOINT_URL = devstack.endpoint
    settings.EVENTOPS_PEEK_VISIBILITY_SECONDS = 0
    aws_client.reset()
    cache.clear()
    user = User.objects.create(username="vera")
    user.groups.add(Group.objects.get(name="viewer"))
    client.force_login(user)
    yield client
    cache.clear()
    aws_client.reset()


def panel(client, key: str, cid: str) -> str:
    url = reverse("correlation_panel", args=["default", key])
    response = client.get(url, {"q": cid, "since": "1h"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response.content.decode()


def test_page_shows_the_failed_order_traces(viewer, failed_in_billing):
    _devstack, cid = failed_in_billing
    body = wait_for(lambda: (b := panel(viewer, "traces", cid)) and "wf-bar" in b and b, 30) or ""
    assert "wf-bar" in body, body[:2000]
    assert "eventops-demo-billing-consumer" in body and "state-alarm" in body


def test_page_shows_the_event_and_the_billing_rule_it_matched(viewer, failed_in_billing):
    _devstack, cid = failed_in_billing
    body = panel(viewer, "events", cid)
    assert "OrderPaid" in body
    assert "eventops-demo-billing-rule" in body


def test_page_shows_the_message_in_the_billing_dlq(viewer, failed_in_billing):
    _devstack, cid = failed_in_billing
    body = panel(viewer, "dlq", cid)
    assert "eventops-demo-billing-dlq" in body
    assert cid in body
