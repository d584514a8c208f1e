from __future__ import annotations

import pytest

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_viewer_logs_in_and_sees_the_navigation(live_server, page, login, viewer):
    login("viewer", PASSWORD)
    page.goto(f"{live_server.url}/login/")  # logged in: redirected away from the login page
    assert page.locator("nav[aria-label=Main]").count() == 1
    assert page.locator(".who .user").inner_text().startswith("viewer")


def test_navigation_lists_every_page_in_order(live_server, page, login, viewer):
    login("viewer", PASSWORD)
    page.goto(f"{live_server.url}/login/")
    labels = page.locator("nav[aria-label=Main] a").all_inner_texts()
    assert labels == [
        "Overview",
        "Queues",
        "Alarms",
        "Failures",
        "Traces",
        "Archive",
        "Schemas",
        "Operations",
    ]


def test_wrong_password_keeps_the_user_on_the_login_page(live_server, page, login, viewer):
    login("viewer", "not-the-password")
    assert page.url.startswith(f"{live_server.url}/login/")
    assert page.locator("[role=alert]").is_visible()
