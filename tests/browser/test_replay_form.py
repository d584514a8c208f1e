"""In Chromium: the replay form's Start stays disabled until the window has a preview and
a reason is typed, and changing the window makes the preview stale again."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.operations.archive_world import ARCHIVE, build_world, detail

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def world(aws, settings):
    settings.AWS_MAX_ATTEMPTS = 1
    return build_world()


def test_start_waits_for_a_preview_and_a_reason(live_server, page, login, operator, world):
    world.put("OrderPaid", detail("c-1"))
    login(operator.username, PASSWORD)
    page.goto(f"{live_server.url}/env/default/archives/{ARCHIVE}/replay/")
    start = page.locator("#replay-start")
    expect(start).to_be_disabled()

    page.fill("#replay-form [name=reason]", "billing outage at 12:00")
    expect(start).to_be_disabled()  # a reason, but no preview yet

    page.click("#replay-form button[name=preview]")
    expect(page.locator("#preview section.panel")).to_be_visible()
    expect(start).to_be_enabled()

    page.fill("#replay-form [name=start]", "2026-01-01T00:00")
    expect(start).to_be_disabled()  # another window: the preview no longer applies
