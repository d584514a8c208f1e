"""The correlation page and its htmx panels: login, bad input (never a 500), fragments."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

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
    response = client.get(reverse("correlation", args=["default"]), {"q": CID})
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_empty_search_shows_the_form(viewer_client):
    response = viewer_client.get(reverse("correlation", args=["default"]))
    assert response.status_code == 200
    assert b'name="q"' in response.content


def test_page_renders_one_htmx_panel_per_source_with_a_real_link(viewer_client):
    response = viewer_client.get(
        reverse("correlation", args=["default"]), {"q": CID, "since": "24h"}
    )
    body = response.content.decode()
    assert response.status_code == 200
    panel_url = reverse("correlation_panel", args=["default", "dlq"])
    assert (
        f'hx-get="{panel_url}?q={CID}&amp;since=24h"' in body
        and f'href="{panel_url}?q={CID}' in body
    )


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_search_input_gets_a_clear_400(viewer_client, hostile):
    response = viewer_client.get(reverse("correlation", args=["default"]), {"q": hostile})
    assert response.status_code == 400
    assert b'class="error"' in response.content and b"<script>alert" not in response.content


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_panel_input_gets_a_clear_400(viewer_client, hostile):
    response = viewer_client.get(
        reverse("correlation_panel", args=["default", "traces"]),
        {"q": hostile},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert b'class="error"' in response.content


def test_unknown_time_range_is_a_400(viewer_client):
    response = viewer_client.get(
        reverse("correlation", args=["default"]), {"q": CID, "since": "99y"}
    )
    assert response.status_code == 400
    assert b"time range" in response.content


def test_unknown_panel_is_a_404(viewer_client):
    response = viewer_client.get(reverse("correlation_panel", args=["default", "nope"]), {"q": CID})
    assert response.status_code == 404


def test_post_is_not_allowed(viewer_client):
    assert (
        viewer_client.post(reverse("correlation", args=["default"]), {"q": CID}).status_code == 405
    )


def test_htmx_panel_returns_the_fragment_alone(viewer_client, fake_sources):
    url = reverse("correlation_panel", args=["default", "events"])
    response = viewer_client.get(url, {"q": CID}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and b"<html" not in response.content
    assert "HX-Request" in response["Vary"]


def test_plain_panel_link_returns_a_full_page(viewer_client, fake_sources):
    response = viewer_client.get(
        reverse("correlation_panel", args=["default", "events"]), {"q": CID}
    )
    assert response.status_code == 200
    assert b"<html" in response.content and b"Back to the whole lookup" in response.content


def test_aws_failure_in_a_panel_is_shown_not_raised(viewer_client, monkeypatch):
    def denied(lookup, since):
        raise AwsError("no", code="AccessDeniedException", operation="Query")

    monkeypatch.setitem(correlation.PANELS, "outbox", ("Outbox", denied))
    response = viewer_client.get(
        reverse("correlation_panel", args=["default", "outbox"]), {"q": CID}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert b"Permission missing" in response.content


def test_timeline_polls_until_every_panel_is_loaded(viewer_client, fake_sources):
    url = reverse("correlation_panel", args=["default", "timeline"])
    first = viewer_client.get(url, {"q": CID, "poll": "0"}, HTTP_HX_REQUEST="true")
    assert b'hx-trigger="every 2s"' in first.content
    for key in correlation.PANELS:
        viewer_client.get(
            reverse("correlation_panel", args=["default", key]), {"q": CID}, HTTP_HX_REQUEST="true"
        )
    done = viewer_client.get(url, {"q": CID, "poll": "1"}, HTTP_HX_REQUEST="true")
    assert done.status_code == 286 and b"every 2s" not in done.content


def _one_dlq_message(monkeypatch):
    from operations import dlq
    from operations.aws.sqs import SqsMessage

    message = dlq.describe(
        SqsMessage("m-1", "rh", '{"detail": {"correlationId": "corr-42"}}', {}, {})
    )
    found = correlation.FoundMessage("billing-dlq", "http://q/billing-dlq", message)

    def dlq_panel(lookup, since):
        return correlation.Panel(key="dlq", title="DLQ", rows=[found])

    monkeypatch.setitem(correlation.PANELS, "dlq", ("DLQ", dlq_panel))


def test_dlq_panel_offers_a_redrive_filtered_by_correlation_id(operator_client, monkeypatch):
    _one_dlq_message(monkeypatch)
    response = operator_client.get(
        reverse("correlation_panel", args=["default", "dlq"]), {"q": CID}, HTTP_HX_REQUEST="true"
    )
    expected = (
        reverse("operations:redrive", args=["default", "billing-dlq"]) + f"?correlation_id={CID}"
    )
    assert expected in response.content.decode()


def test_dlq_panel_tells_a_viewer_who_can_redrive_instead(viewer_client, monkeypatch):
    _one_dlq_message(monkeypatch)
    response = viewer_client.get(
        reverse("correlation_panel", args=["default", "dlq"]), {"q": CID}, HTTP_HX_REQUEST="true"
    )
    text = response.content.decode()
    assert reverse("operations:redrive", args=["default", "billing-dlq"]) not in text
    assert 'id="who-can-redrive"' in text and "operator" in text


def test_navigation_search_box_submits_to_the_correlation_page(viewer_client):
    body = viewer_client.get(reverse("correlation", args=["default"])).content.decode()
    assert (
        f'<form class="search" method="get" action="{reverse("correlation", args=["default"])}"'
        in body
    )
    assert 'name="q"' in body


# --- "replay these events" from the events panel ------------------------------------------

EVENT_AT = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


@pytest.fixture
def events_panel(monkeypatch):
    """The events panel finds two events of corr-42 on shop-bus, archived in shop-archive."""

    def event(event_id, minutes):
        return correlation.LoggedEvent(
            id=event_id,
            detail_type="OrderPaid",
            source="eventops.orders",
            time=EVENT_AT + timedelta(minutes=minutes),
            resources=(),
            replay_name="",
            detail={"correlationId": CID},
            envelope={},
            log_group="/aws/events/shop-bus",
        )

    def events_panel(lookup, since):
        rows = [{"event": event("e-1", 0), "rules": []}, {"event": event("e-2", 20)}]
        return correlation.Panel(key="events", title="Events", rows=rows)

    monkeypatch.setitem(correlation.PANELS, "events", ("Events", events_panel))
    monkeypatch.setattr(correlation, "archives_of", lambda buses: ["shop-archive"])


def _events_panel(client, q=CID):
    response = client.get(
        reverse("correlation_panel", args=["default", "events"]), {"q": q}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    return response.content.decode()


def test_operator_gets_a_republish_form_with_the_events_window(operator_client, events_panel):
    html = _events_panel(operator_client)
    action = reverse("republish", args=["default", "shop-archive"])
    assert f'<form method="post" action="{action}"' in html and "csrfmiddlewaretoken" in html
    assert f'name="correlation_id" value="{CID}"' in html
    assert 'name="start" value="2026-01-05T09:55:00"' in html
    assert 'name="end" value="2026-01-05T10:25:00"' in html


def test_operator_gets_a_prefilled_replay_link(operator_client, events_panel):
    html = _events_panel(operator_client)
    query = urlencode(
        {"start": "2026-01-05T09:55:00+00:00", "end": "2026-01-05T10:25:00+00:00"}
    ).replace("&", "&amp;")
    assert f"{reverse('replay_new', args=['default', 'shop-archive'])}?{query}" in html


def test_viewer_gets_neither_the_form_nor_the_replay_link(viewer_client, events_panel):
    html = _events_panel(viewer_client)
    assert reverse("republish", args=["default", "shop-archive"]) not in html
    assert reverse("replay_new", args=["default", "shop-archive"]) not in html
    assert reverse("archive_events", args=["default", "shop-archive"]) in html


def test_republish_form_uses_the_events_correlation_id_for_an_event_id_lookup(
    operator_client, events_panel
):
    html = _events_panel(operator_client, q="11111111-2222-3333-4444-555555555555")
    assert f'name="correlation_id" value="{CID}"' in html


def test_republish_form_posts_what_the_republish_view_expects(
    operator_client, events_panel, monkeypatch
):
    """The form's fields are the ones the re-publish view reads."""
    from operations import archive, republish
    from operations.archive import ArchiveView
    from operations.aws import events
    from operations.cache import Cached
    from operations.models import Operation

    html = _events_panel(operator_client)
    form = html[html.index("republish-form") :]
    fields = dict(re.findall(r'name="([a-z_]+)" value="([^"]*)"', form))
    seen: dict[str, object] = {}

    def events_of_correlation(view, correlation_id, start, end):
        seen.update(correlation_id=correlation_id, window=end - start)
        raise republish.RepublishError("No events of this correlation ID in the window.")

    bus = "arn:aws:events:us-east-1:123456789012:event-bus/shop-bus"
    detail = events.ArchiveDetail("shop-archive", "arn", bus, "ENABLED", 90, 0, 0, "", "", None)
    view = ArchiveView(archive=detail, log_group="/aws/events/shop-bus")
    monkeypatch.setattr(archive, "cached_archive", lambda name: Cached(view, fetched_at=0))
    monkeypatch.setattr(republish, "events_of_correlation", events_of_correlation)
    response = operator_client.post(
        reverse("republish", args=["default", "shop-archive"]),
        {**fields, "reason": "consumer fixed"},
    )
    assert response.status_code == 400 and "No events" in response.content.decode()
    assert seen == {"correlation_id": CID, "window": timedelta(minutes=30)}
    assert Operation.objects.count() == 0


def test_timeline_that_gives_up_says_what_did_not_load_with_a_retry(viewer_client, fake_sources):
    from dashboard.views.correlation import TIMELINE_MAX_POLLS

    url = reverse("correlation_panel", args=["default", "timeline"])
    params = {"q": CID, "poll": str(TIMELINE_MAX_POLLS)}
    done = viewer_client.get(url, params, HTTP_HX_REQUEST="true")
    text = done.content.decode()
    assert done.status_code == 286 and "Still loading" not in text
    assert 'id="timeline-missing"' in text and 'id="timeline-retry"' in text


def test_timeline_ends_with_a_failed_panel_named(viewer_client, fake_sources, monkeypatch):
    def failing(lookup, since):
        raise AwsError("slow", code="RequestTimeout", operation="Query", transient=True)

    monkeypatch.setitem(correlation.PANELS, "outbox", ("Outbox", failing))
    for key in correlation.PANELS:
        viewer_client.get(
            reverse("correlation_panel", args=["default", key]), {"q": CID}, HTTP_HX_REQUEST="true"
        )
    url = reverse("correlation_panel", args=["default", "timeline"])
    done = viewer_client.get(url, {"q": CID, "poll": "1"}, HTTP_HX_REQUEST="true")
    assert done.status_code == 286
    assert b'id="timeline-failed"' in done.content and b"Outbox" in done.content
