"""The state-of-the-system strip: on every page (loaded lazily), from cached reads only."""

from __future__ import annotations

import pytest
from botocore.client import BaseClient
from django.core.cache import cache

from tests.dashboard.test_overview_page import make_consumer

STRIP = "/env/default/state/"


@pytest.fixture
def account(aws, settings):
    settings.EVENTOPS_RESOURCE_PREFIX = ""
    settings.EVENTOPS_CACHE_TTL = 60
    cache.clear()
    make_consumer("osprey-calm")
    make_consumer("osprey-burning", dlq_messages=3, alarm_state="ALARM")
    yield
    cache.clear()


def test_strip_counts_alarms_and_dlq_messages_and_names_the_worst(viewer_client, account):
    html = viewer_client.get(STRIP, headers={"HX-Request": "true"}).content.decode()
    assert "<strong>1</strong> alarm in ALARM" in html
    assert "<strong>3</strong> messages in DLQs" in html
    assert 'id="strip-worst"' in html and "osprey-burning-work" in html


def test_warm_strip_makes_no_aws_call(viewer_client, account, monkeypatch):
    viewer_client.get(STRIP)  # warms the cache
    calls = []
    original = BaseClient._make_api_call

    def counting(self, operation, params):
        calls.append(operation)
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    assert viewer_client.get(STRIP).status_code == 200
    assert calls == []


def test_every_page_loads_the_strip_lazily(viewer_client, account, monkeypatch):
    page = viewer_client.get("/env/default/operations/").content.decode()
    assert 'id="state-strip"' in page and f'hx-get="{STRIP}"' in page
    assert "alarm in ALARM" not in page  # not rendered with the page


def test_anonymous_gets_no_strip(client, db):
    assert client.get(STRIP).status_code == 302
