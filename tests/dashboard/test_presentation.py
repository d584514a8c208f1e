"""Trouble first, a shared name prefix shown once, and how fresh the counts are."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import boto3
import pytest

from dashboard import presentation
from tests.dashboard.test_overview_page import make_consumer


@pytest.mark.parametrize(
    ("names", "prefix"),
    [
        (
            ["eventops-demo-orders", "eventops-demo-orders-dlq", "eventops-demo-billing"],
            "eventops-demo-",
        ),
        (["eventops-demo-orders", "eventops-demo-orders-dlq"], "eventops-demo-"),
        (["orders", "billing"], ""),
        (["app-a", "app-b"], ""),  # "app-" is too short to be worth a heading
        (["eventops-demo-orders"], ""),  # one name: nothing is repeated
        (["svc-prod-", "svc-prod-x"], ""),  # would leave a name empty
    ],
)
def test_common_prefix_ends_at_a_separator(names, prefix):
    assert presentation.common_prefix(names) == prefix


def _row(name, visible=0, dlq_depth=0, alarm="OK", age=None):
    row = {"name": name, "visible": visible, "dlq_depth": dlq_depth}
    row["alarms"] = [(SimpleNamespace(state=alarm), "", "")]
    if age is not None:
        row["oldest_age_seconds"] = age
    return row


def test_backlog_and_old_messages_over_the_thresholds_come_first(settings):
    settings.EVENTOPS_BACKLOG_WARN_MESSAGES = 1000
    settings.EVENTOPS_BACKLOG_WARN_AGE_SECONDS = 300
    rows = [_row("calm", visible=999), _row("backlog", visible=2210), _row("stuck", age=301)]
    ordered = presentation.trouble_first(rows)
    assert [r["name"] for r in ordered] == ["backlog", "stuck", "calm"]
    assert ordered[0]["flags"] == ["backlog"] and ordered[1]["flags"] == ["old messages"]


def test_alarm_and_dlq_messages_are_flagged_too(settings):
    flags = presentation.row_flags(_row("x", dlq_depth=3, alarm="ALARM"))
    assert flags == ["alarm", "DLQ messages"]


def test_an_alarm_with_its_runbook_link_is_flagged():
    row = {"name": "x", "alarms": [(SimpleNamespace(state="ALARM"), "", "", "https://runbook")]}
    assert presentation.row_flags(row) == ["alarm"]


@pytest.fixture
def busy_account(aws, settings):
    from django.core.cache import cache

    settings.EVENTOPS_RESOURCE_PREFIX = ""
    settings.EVENTOPS_CACHE_TTL = 60
    settings.EVENTOPS_BACKLOG_WARN_MESSAGES = 3
    cache.clear()
    make_consumer("osprey-calm")
    make_consumer("osprey-busy")
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.get_queue_url(QueueName="osprey-busy-work")["QueueUrl"]
    for _ in range(3):
        sqs.send_message(QueueUrl=url, MessageBody="{}")
    yield
    cache.clear()


def test_overview_flags_the_backlog_and_shows_the_prefix_once(viewer_client, busy_account):
    html = viewer_client.get("/env/default/").content.decode()
    assert 'id="name-prefix"' in html and "<code>osprey-</code>" in html
    first = html.index('data-queue="osprey-busy-work"')
    assert first < html.index('data-queue="osprey-calm-work"')
    row = html[first : html.index("</tr>", first)]
    assert 'data-trouble="backlog"' in row and "over-threshold" in row
    assert ">busy-work</a>" in row  # the name without its prefix


@pytest.fixture
def stuck_account(aws, settings, monkeypatch):
    """Two consumers; CloudWatch says only ``osprey-stuck-work`` has a 15-minute-old message
    (no datapoint for any other queue)."""
    from django.core.cache import cache

    from operations.aws import cloudwatch

    settings.EVENTOPS_RESOURCE_PREFIX = ""
    settings.EVENTOPS_CACHE_TTL = 60
    settings.EVENTOPS_BACKLOG_WARN_AGE_SECONDS = 300
    cache.clear()
    make_consumer("osprey-calm")
    make_consumer("osprey-stuck")
    asked = []

    def metric_data(queries, start, end):
        asked.extend(queries)
        return {
            q.id: cloudwatch.MetricSeries(q.id, q.label, [end], [900.0])
            for q in queries
            if q.metric_name == "ApproximateAgeOfOldestMessage" and q.label == "osprey-stuck-work"
        }

    monkeypatch.setattr(cloudwatch, "get_metric_data", metric_data)
    yield asked
    cache.clear()


def test_a_source_queue_with_an_old_message_is_flagged_and_first(viewer_client, stuck_account):
    html = viewer_client.get("/env/default/").content.decode()

    ages = {q.label for q in stuck_account if q.metric_name == "ApproximateAgeOfOldestMessage"}
    assert {"osprey-calm-work", "osprey-stuck-work"} <= ages
    first = html.index('data-queue="osprey-stuck-work"')
    assert first < html.index('data-queue="osprey-calm-work"')
    stuck = html[first : html.index("</tr>", first)]
    assert 'data-trouble="old messages"' in stuck
    assert '<td class="num over-threshold" data-cell="oldest-age">15 min 0 s</td>' in stuck
    calm_at = html.index('data-queue="osprey-calm-work"')
    calm = html[calm_at : html.index("</tr>", calm_at)]
    assert "data-trouble" not in calm and "over-threshold" not in calm
    assert '<td class="num" data-cell="oldest-age">—</td>' in calm


def test_freshness_line_reads_counts_read_at_when_given():
    from django.template.loader import render_to_string

    read = datetime(2026, 12, 5, 3, 0, 12, tzinfo=UTC)
    overview = SimpleNamespace(
        panels=[],
        queues=SimpleNamespace(value=None),
        consumers=[],
        buses=SimpleNamespace(value=[]),
        alarms_firing=0,
        dlq_messages=0,
        data_time=None,
        counts_read_at=read,
    )
    html = render_to_string("overview/_rows.html", {"overview": overview, "rows": []})
    assert 'datetime="2026-12-05T03:00:12+00:00" data-ago' in html
