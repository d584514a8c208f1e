"""The overview's rows are re-read in the background, once, whoever asks."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from dashboard.views import overview as overview_view
from operations import cache as read_cache

VIEWERS = 20
RENDER_SECONDS = 0.3


@pytest.fixture
def slow_render(monkeypatch, settings):
    """``render_rows`` replaced by one that takes RENDER_SECONDS and counts its runs."""
    settings.EVENTOPS_CACHE_TTL = 15
    settings.EVENTOPS_CACHE_STALE_SECONDS = 60
    settings.EVENTOPS_RESOURCE_PREFIX = ""
    runs: Counter = Counter()
    lock = threading.Lock()

    def render() -> str:
        with lock:
            runs["render"] += 1
        time.sleep(RENDER_SECONDS)
        html = f"<p>rows {runs['render']}</p>"
        now = time.time()
        read_cache.remember(overview_view.ROWS_FRAGMENT, now + 75, (now + 15, html))
        return html

    monkeypatch.setattr(overview_view, "render_rows", render)
    yield runs
    read_cache.wait_for_background()


def viewers(count: int = VIEWERS) -> list[tuple[str, float]]:
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def viewer(index: int) -> None:
        barrier.wait()
        started = time.monotonic()
        results[index] = (overview_view.rows_html(), time.monotonic() - started)

    threads = [threading.Thread(target=viewer, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_stale_rows_are_served_at_once_and_re_rendered_once(slow_render):
    now = time.time()
    read_cache.remember(overview_view.ROWS_FRAGMENT, now + 40, (now - 5, "<p>old rows</p>"))

    results = viewers()
    read_cache.wait_for_background()

    assert {html for html, _took in results} == {"<p>old rows</p>"}
    assert max(took for _html, took in results) < RENDER_SECONDS
    assert slow_render["render"] == 1 and overview_view.rows_html() == "<p>rows 1</p>"


def test_fresh_rows_start_no_refresh(slow_render):
    now = time.time()
    read_cache.remember(overview_view.ROWS_FRAGMENT, now + 70, (now + 10, "<p>fresh</p>"))

    results = viewers(5)
    read_cache.wait_for_background()

    assert {html for html, _took in results} == {"<p>fresh</p>"} and slow_render["render"] == 0


def test_first_viewers_wait_for_one_read(slow_render):
    results = viewers()

    assert slow_render["render"] == 1
    assert {html for html, _took in results} == {"<p>rows 1</p>"}


def test_a_first_read_longer_than_the_wait_shows_that_it_is_under_way(slow_render, monkeypatch):
    monkeypatch.setattr(overview_view, "FIRST_FILL_SECONDS", 0.05)

    first = overview_view.rows_html()
    read_cache.wait_for_background()

    assert "Reading the event system from AWS" in first and "data-reading" in first
    assert overview_view.rows_html() == "<p>rows 1</p>"
