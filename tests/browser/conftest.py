"""A real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright.

Never ``playwright install``: it downloads a browser, which fails here.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import cache

from operations.aws import client as aws_client

CHROMIUM = os.environ.get("EVENTOPS_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(autouse=True)
def _aws_refuses_at_once(settings: Any) -> Iterator[None]:
    """Pages a browser test opens without the ``moto_server`` fixture read "AWS" on a
    local port that refuses at once, once: never the real endpoints (which this machine
    cannot reach, slowly, with retries). ``moto_server`` overrides the endpoint."""
    settings.AWS_ENDPOINT_URL = f"http://127.0.0.1:{_free_port()}"
    settings.AWS_MAX_ATTEMPTS = 1
    aws_client.reset()
    yield
    aws_client.reset()


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """One Chromium per test: Playwright's sync API keeps an event loop running in
    this thread while it lives, which makes Django refuse synchronous ORM calls, so
    it must not outlive the test (and the test allows them meanwhile)."""
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def login(live_server: Any, page: Any) -> Callable[[str, str], Any]:
    """``login(username, password)`` logs ``page`` in through the real login form."""

    def _login(username: str, password: str) -> Any:
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_load_state("networkidle")
        return page

    return _login


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def moto_server(settings) -> Iterator[str]:
    """A moto server the live server's thread can reach (mock_aws is not shared across
    threads reliably), with polling at 2 s and no read cache."""
    from moto.server import ThreadedMotoServer

    # Every poll is a dozen requests to moto; its request log would drown the output.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    settings.AWS_ENDPOINT_URL = endpoint
    settings.EVENTOPS_RESOURCE_PREFIX = "petrel-"
    settings.EVENTOPS_CACHE_TTL = 0
    settings.EVENTOPS_POLL_SECONDS = 2
    aws_client.reset()
    cache.clear()
    yield endpoint
    server.stop()
    aws_client.reset()
    cache.clear()
