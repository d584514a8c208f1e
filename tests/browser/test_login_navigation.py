from __future__ import annotations

import pytest

from dashboard.context_processors import NAV_ITEMS
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_viewer_logs_in_and_sees_the_navigation(live_server, page, login, viewer):
    login("viewer", PASSWORD)
    page.goto(f"{live_server.url}/login/")  # logged in: redirected away from the login page
    assert page.locator("nav[aria-label=Main]").count() == 1
    assert page.locator(".who .user").inner_text().startswith("viewer")


def test_navigation_lists_only_pages_that_exist(live_server, page, login, viewer):
    from django.urls import NoReverseMatch, reverse

    existing = []
    for label, name in NAV_ITEMS:
        try:
            reverse(name)
        except NoReverseMatch:
            continue
        existing.append(label)
    login("viewer", PASSWORD)
    page.goto(f"{live_server.url}/login/")
    labels = page.locator("nav[aria-label=Main] a").all_inner_texts()
    assert labels == existing


def test_wrong_password_keeps_the_user_on_the_login_page(live_server, page, login, viewer):
    login("viewer", "not-the-password")
    assert page.url.startswith(f"{live_server.url}/login/")
    assert page.locator("[role=alert]").is_visible()
