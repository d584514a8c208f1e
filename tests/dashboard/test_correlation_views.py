"""The correlation page and its htmx panels: login, bad input (never a 500), fragments."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from operations import correlation
from operations.aws.errors import AwsError

CID = "corr-42"
HOSTILE = [
    '" OR annotation.x = "1',
    'a"b',
    "back\\slash",
    "x" * 10_240,
    "ünïcødé",
    "<script>alert(1)</script>",
    "a b",
    "%00",
]


@pytest.fixture
def fake_sources(monkeypatch):
    """Every panel answers from memory; the DLQ one finds one message in billing-dlq."""
    at = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)

    def make(key, title):
        def function(lookup, since):
            entry = correlation.Entry(at, title, f"{key} entry for {lookup.value}")
            return correlation.Panel(key=key, title=title, entries=[entry])

        return function

    panels = {key: (title, make(key, title)) for key, (title, _f) in correlation.PANELS.items()}
    monkeypatch.setattr(correlation, "PANELS", panels)


def test_anonymous_is_sent_to_login(client, db):
    response = client.get(reverse("correlation"), {"q": CID})
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_empty_search_shows_the_form(viewer_client):
    response = viewer_client.get(reverse("correlation"))
    assert response.status_code == 200
    assert b'name="q"' in response.content


def test_page_renders_one_htmx_panel_per_source_with_a_real_link(viewer_client):
    response = viewer_client.get(reverse("correlation"), {"q": CID, "since": "24h"})
    body = response.content.decode()
    assert response.status_code == 200
    panel_url = reverse("correlation_panel", args=["dlq"])
    assert (
        f'hx-get="{panel_url}?q={CID}&amp;since=24h"' in body
        and f'href="{panel_url}?q={CID}' in body
    )


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_search_input_gets_a_clear_400(viewer_client, hostile):
    response = viewer_client.get(reverse("correlation"), {"q": hostile})
    assert response.status_code == 400
    assert b'class="error"' in response.content and b"<script>alert" not in response.content


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_panel_input_gets_a_clear_400(viewer_client, hostile):
    response = viewer_client.get(
        reverse("correlation_panel", args=["traces"]), {"q": hostile}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 400
    assert b'class="error"' in response.content


def test_unknown_time_range_is_a_400(viewer_client):
    response = viewer_client.get(reverse("correlation"), {"q": CID, "since": "99y"})
    assert response.status_code == 400
    assert b"time range" in response.content


def test_unknown_panel_is_a_404(viewer_client):
    response = viewer_client.get(reverse("correlation_panel", args=["nope"]), {"q": CID})
    assert response.status_code == 404


def test_post_is_not_allowed(viewer_client):
    assert viewer_client.post(reverse("correlation"), {"q": CID}).status_code == 405


def test_htmx_panel_returns_the_fragment_alone(viewer_client, fake_sources):
    url = reverse("correlation_panel", args=["events"])
    response = viewer_client.get(url, {"q": CID}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and b"<html" not in response.content
    assert "HX-Request" in response["Vary"]


def test_plain_panel_link_returns_a_full_page(viewer_client, fake_sources):
    response = viewer_client.get(reverse("correlation_panel", args=["events"]), {"q": CID})
    assert response.status_code == 200
    assert b"<html" in response.content and b"Back to the whole lookup" in response.content


def test_aws_failure_in_a_panel_is_shown_not_raised(viewer_client, monkeypatch):
    def denied(lookup, since):
        raise AwsError("no", code="AccessDeniedException", operation="Query")

    monkeypatch.setitem(correlation.PANELS, "outbox", ("Outbox", denied))
    response = viewer_client.get(
        reverse("correlation_panel", args=["outbox"]), {"q": CID}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert b"Access denied" in response.content


def test_timeline_polls_until_every_panel_is_loaded(viewer_client, fake_sources):
    url = reverse("correlation_panel", args=["timeline"])
    first = viewer_client.get(url, {"q": CID, "poll": "0"}, HTTP_HX_REQUEST="true")
    assert b'hx-trigger="every 2s"' in first.content
    for key in correlation.PANELS:
        viewer_client.get(
            reverse("correlation_panel", args=[key]), {"q": CID}, HTTP_HX_REQUEST="true"
        )
    done = viewer_client.get(url, {"q": CID, "poll": "1"}, HTTP_HX_REQUEST="true")
    assert done.status_code == 286 and b"every 2s" not in done.content


def test_dlq_panel_offers_a_redrive_filtered_by_correlation_id(viewer_client, monkeypatch):
    from operations import dlq
    from operations.aws.sqs import SqsMessage

    message = dlq.describe(
        SqsMessage("m-1", "rh", '{"detail": {"correlationId": "corr-42"}}', {}, {})
    )
    found = correlation.FoundMessage("billing-dlq", "http://q/billing-dlq", message)

    def dlq_panel(lookup, since):
        return correlation.Panel(key="dlq", title="DLQ", rows=[found])

    monkeypatch.setitem(correlation.PANELS, "dlq", ("DLQ", dlq_panel))
    response = viewer_client.get(
        reverse("correlation_panel", args=["dlq"]), {"q": CID}, HTTP_HX_REQUEST="true"
    )
    expected = reverse("operations:redrive", args=["billing-dlq"]) + f"?correlation_id={CID}"
    assert expected in response.content.decode()


def test_navigation_search_box_submits_to_the_correlation_page(viewer_client):
    body = viewer_client.get(reverse("correlation")).content.decode()
    assert f'<form class="search" method="get" action="{reverse("correlation")}"' in body
    assert 'name="q"' in body
