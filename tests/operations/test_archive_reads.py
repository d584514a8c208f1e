"""Reading the archive's contents from the event log: windows, filters, pages, timeouts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from operations import archive
from operations.archive import EventFilters, QueryTimedOut
from operations.aws import logs
from tests.operations import archive_world
from tests.operations.archive_world import ARCHIVE, LOG_GROUP, detail

world = archive_world.world


def _window(hours: float = 1) -> tuple[datetime, datetime]:
    now = datetime.now(tz=UTC)
    return now - timedelta(hours=hours) + timedelta(minutes=1), now + timedelta(minutes=1)


def test_short_window_lists_events_with_filters(world):
    world.put("OrderPaid", detail("c-1"))
    world.put("OrderCreated", detail("c-1"))
    world.put("OrderPaid", detail("c-2"))
    start, end = _window()
    page = archive.read_events(
        LOG_GROUP, start, end, EventFilters(detail_type="OrderPaid", correlation_id="c-1")
    )
    assert page.mode == "filter"
    assert [(e.detail_type, e.correlation_id) for e in page.events] == [("OrderPaid", "c-1")]


def test_free_text_filter_searches_the_whole_event(world):
    world.put("OrderCancelled", detail("c-1", reason="customer changed mind"))
    world.put("OrderCancelled", detail("c-2", reason="out of stock"))
    start, end = _window()
    page = archive.read_events(LOG_GROUP, start, end, EventFilters(text="out of stock"))
    assert [e.correlation_id for e in page.events] == ["c-2"]


def test_pages_are_bounded_and_carry_a_token(world):
    for index in range(7):
        world.put("OrderPaid", detail(f"c-{index}"))
    start, end = _window()
    first = archive.read_events(LOG_GROUP, start, end, EventFilters(), page_size=3)
    second = archive.read_events(
        LOG_GROUP, start, end, EventFilters(), page_size=3, token=first.next_token
    )
    assert len(first.events) == 3 and first.next_token
    assert {e.id for e in first.events}.isdisjoint({e.id for e in second.events})


def test_long_window_uses_logs_insights_newest_first(world):
    for index in range(5):
        world.put("OrderPaid", detail(f"c-{index}"))
    start, end = _window(hours=6)
    first = archive.read_events(
        LOG_GROUP, start, end, EventFilters(), page_size=3, sleep=lambda s: None
    )
    assert first.mode == "insights"
    assert len(first.events) == 3 and first.next_token


def test_long_window_filters_are_applied_even_if_the_query_ignores_them(world):
    world.put("OrderPaid", detail("c-1"))
    world.put("OrderShipped", detail("c-2"))
    start, end = _window(hours=6)
    page = archive.read_events(
        LOG_GROUP, start, end, EventFilters(detail_type="OrderShipped"), sleep=lambda s: None
    )
    assert [e.correlation_id for e in page.events] == ["c-2"]


def test_insights_query_quotes_user_input():
    query = archive.insights_query(EventFilters(text='a" | filter 1=1 | "'), 123, 10)
    assert 'like "a\\" | filter 1=1 | \\""' in query


def test_query_that_never_completes_times_out_and_is_stopped(monkeypatch):
    stopped = []
    monkeypatch.setattr(logs, "start_query", lambda *a, **k: "q-1")
    monkeypatch.setattr(logs, "get_query_results", lambda qid: logs.QueryResults("Running", []))
    monkeypatch.setattr(logs, "stop_query", stopped.append)
    sleeps = []
    with pytest.raises(QueryTimedOut, match="timed out"):
        archive.run_query(
            "g",
            start_s=0,
            end_s=10,
            query="q",
            limit=1,
            sleep=sleeps.append,
            timeout_s=5,
            poll_s=1,
        )
    assert stopped == ["q-1"] and len(sleeps) == 4


def test_find_event_by_id_and_the_rules_it_matches(world):
    event_id = world.put("OrderPaid", detail("c-1"))
    world.put("OrderPaid", detail("c-2"))
    view = archive.load_archive(ARCHIVE)
    found = archive.find_event(view.log_group, event_id, datetime.now(tz=UTC))
    assert found is not None and found.id == event_id
    names = {rule.name for rule in archive.matching_rules(found, view.rules)}
    assert {"billing-rule", "notify-rule", "event-log"} <= names


def test_load_archive_discovers_the_log_group_from_the_bus_rules(world):
    view = archive.load_archive(ARCHIVE)
    assert view.log_group == LOG_GROUP
    assert view.archive.retention_days == 90


def test_unknown_archive_is_not_found(world):
    with pytest.raises(archive.ArchiveNotFound):
        archive.load_archive("no-such-archive")


def test_replayed_and_republished_events_are_marked():
    replayed = archive.parse_message('{"detail-type": "X", "replay-name": "r1"}', 0)
    republished = archive.parse_message(
        '{"detail-type": "X", "resources": ["eventops:replay/42"]}', 0
    )
    assert replayed is not None and replayed.is_replayed
    assert republished is not None and republished.republished_by == "42"


def test_lines_that_are_not_events_are_skipped():
    assert archive.parse_message("START RequestId", 0) is None
    assert archive.parse_message('["a"]', 0) is None
