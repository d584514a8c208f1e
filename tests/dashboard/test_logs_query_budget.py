"""The archive's event browser keeps Logs Insights bounded: a window of at most
EVENTOPS_LOGS_MAX_WINDOW_HOURS, at most EVENTOPS_LOGS_QUERIES_PER_MINUTE queries a minute per
person; refused before StartQuery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse

from dashboard import query_budget
from tests import aws_calls as counting
from tests.operations import archive_world
from tests.operations.archive_world import ARCHIVE, detail

world = archive_world.world
viewer_client = archive_world.viewer_client
operator_client = archive_world.operator_client
aws_calls = counting.aws_calls
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def one_minute(monkeypatch):
    """Every query of a test falls in the same clock minute."""
    monkeypatch.setattr(query_budget, "current_minute", lambda: 29_000_000)


def browse(client: Client, hours: float, *, end_ago_minutes: int = 0):
    end = datetime.now(tz=UTC) - timedelta(minutes=end_ago_minutes)
    start = end - timedelta(hours=hours)
    return client.get(
        reverse("archive_events", args=["default", ARCHIVE]),
        {"start": start.isoformat(), "end": end.isoformat()},
    )


def test_a_window_over_24_hours_is_refused_before_any_query(world, viewer_client, aws_calls):
    response = browse(viewer_client, 25)
    assert response.status_code == 400 and "limited to 24 hours" in response.text
    assert aws_calls["logs.StartQuery"] == 0


def test_a_day_is_allowed(world, viewer_client, aws_calls):
    world.put("OrderPaid", detail("c-1"))
    assert browse(viewer_client, 24).status_code == 200
    assert aws_calls["logs.StartQuery"] == 1


def test_the_window_limit_is_a_setting(world, viewer_client, settings):
    settings.EVENTOPS_LOGS_MAX_WINDOW_HOURS = 2
    assert browse(viewer_client, 3).status_code == 400
    assert browse(viewer_client, 2).status_code == 200


def test_the_fifth_insights_query_in_a_minute_is_refused(world, viewer_client, aws_calls):
    statuses = [browse(viewer_client, 6, end_ago_minutes=i).status_code for i in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    assert aws_calls["logs.StartQuery"] == 4


def test_the_refusal_says_what_to_do(world, viewer_client, settings):
    settings.EVENTOPS_LOGS_QUERIES_PER_MINUTE = 1
    browse(viewer_client, 6)
    response = browse(viewer_client, 6)
    assert response.status_code == 429 and "wait a minute" in response.text


def test_the_budget_is_per_person(world, viewer_client, operator_client, settings):
    settings.EVENTOPS_LOGS_QUERIES_PER_MINUTE = 1
    assert browse(viewer_client, 6).status_code == 200
    assert browse(operator_client, 6).status_code == 200
    assert browse(viewer_client, 6).status_code == 429


def test_windows_of_an_hour_or_less_use_no_insights_query_and_no_budget(
    world, viewer_client, settings, aws_calls
):
    settings.EVENTOPS_LOGS_QUERIES_PER_MINUTE = 1
    statuses = [browse(viewer_client, 1).status_code for _ in range(3)]
    assert statuses == [200, 200, 200] and aws_calls["logs.StartQuery"] == 0


def test_the_next_minute_has_a_fresh_budget(world, viewer_client, settings, monkeypatch):
    settings.EVENTOPS_LOGS_QUERIES_PER_MINUTE = 1
    assert browse(viewer_client, 6).status_code == 200
    monkeypatch.setattr(query_budget, "current_minute", lambda: 29_000_001)
    assert browse(viewer_client, 6).status_code == 200
