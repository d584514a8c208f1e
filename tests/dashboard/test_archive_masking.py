"""Masking in the archive's event browser and event page, and its search: a viewer never
gets a secret, nor finds an event by one; an admin does both."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from operations import archive as reads
from operations.read_audit import ReadAudit
from tests.operations import archive_world
from tests.operations.archive_world import ARCHIVE
from tests.secret_bodies import CARD, CORRELATION_ID, DETAIL, PASSWORD, leaked

world = archive_world.world
viewer_client = archive_world.viewer_client
pytestmark = pytest.mark.django_db
EVENTS = reverse("archive_events", args=["default", ARCHIVE])


@pytest.fixture
def admin_client(db: None) -> Client:
    user = User.objects.create_user(username="ada")
    user.groups.add(Group.objects.get(name="admin"))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def secret_event(world) -> tuple[str, int]:
    """The event's ID and log timestamp (the event page's link carries it)."""
    world.put("OrderPaid", {"correlationId": "corr-plain", "orderId": "o-9"})
    event_id = world.put("OrderPaid", DETAIL)
    found = reads.find_event(reads.load_archive(ARCHIVE).log_group, event_id, datetime.now(UTC))
    assert found is not None
    return event_id, found.timestamp_ms


def event_page(client: Client, secret_event: tuple[str, int]) -> str:
    event_id, stamp = secret_event
    url = reverse("archive_event", args=["default", ARCHIVE, event_id])
    response = client.get(url, {"t": stamp})
    assert response.status_code == 200
    return response.content.decode()


def test_viewer_event_page_is_masked_even_in_the_validate_form(viewer_client, secret_event):
    html = event_page(viewer_client, secret_event)
    assert CORRELATION_ID in html and "••••1111" in html and 'id="masked-note"' in html
    assert leaked(html) == []


def test_admin_event_page_shows_the_original(admin_client, secret_event):
    html = event_page(admin_client, secret_event)
    assert CARD in html and PASSWORD in html and 'id="unmasked-badge"' in html


@pytest.mark.parametrize("search", [CARD, PASSWORD])
def test_viewer_searching_the_archive_for_a_secret_finds_nothing(
    viewer_client, secret_event, search
):
    html = viewer_client.get(EVENTS, {"q": search}).content.decode()
    assert secret_event[0] not in html and "No events match" in html


@pytest.mark.parametrize("search", [CARD, PASSWORD])
def test_admin_searching_the_archive_for_a_secret_finds_the_event(
    admin_client, secret_event, search
):
    assert secret_event[0] in admin_client.get(EVENTS, {"q": search}).content.decode()


def test_viewer_still_finds_events_by_what_they_see(viewer_client, secret_event):
    assert secret_event[0] in viewer_client.get(EVENTS, {"q": "paid with"}).content.decode()


def test_opening_an_event_is_recorded_in_the_access_log(viewer_client, secret_event):
    event_page(viewer_client, secret_event)
    read = ReadAudit.objects.get()
    assert (read.username, read.kind, read.unmasked) == ("victor", "viewed_message", False)
    assert read.target == f"{ARCHIVE} {secret_event[0]}"


def test_viewer_finds_events_by_the_mask_they_see(viewer_client, secret_event):
    assert secret_event[0] in viewer_client.get(EVENTS, {"q": "••••1111"}).content.decode()


def test_a_masked_search_is_never_sent_to_logs_insights() -> None:
    query = reads.insights_query(reads.EventFilters(text="••••1111", masked=True), 1, 10)
    assert "••••" not in query
