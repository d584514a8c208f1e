"""Archive pages: the list, the detail, the contents browser and one event."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from django.core.cache import cache
from django.urls import reverse

from operations import archive as reads
from operations.archive import QueryTimedOut
from operations.models import Operation
from tests.operations import archive_world
from tests.operations.archive_world import ARCHIVE, LOG_GROUP, detail

world = archive_world.world
operator_client = archive_world.operator_client
viewer_client = archive_world.viewer_client
pytestmark = pytest.mark.django_db

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


def test_archives_page_shows_counts_with_the_lag_note(world, viewer_client):
    world.put("OrderPaid", detail("c-1"))
    response = viewer_client.get(reverse("archives", args=["default"]))
    assert response.status_code == 200
    assert ARCHIVE in response.text and "lag by up to 24 hours" in response.text


def test_archives_page_merges_replay_operations_into_the_history(world, viewer_client):
    Operation.objects.create(
        kind="replay",
        target=world.archive_arn,
        target_label=ARCHIVE,
        reason="r",
        requested_by_name="olga",
        parameters={"replay_name": "eventops-op1-x"},
    )
    response = viewer_client.get(reverse("archives", args=["default"]))
    assert "eventops-op1-x" in response.text and "olga" in response.text


def test_unknown_archive_is_404(world, viewer_client):
    assert viewer_client.get(reverse("archive_detail", args=["default", "nope"])).status_code == 404
    assert viewer_client.get(reverse("archive_events", args=["default", "nope"])).status_code == 404


def test_archive_detail_offers_replay_only_to_operators(world, viewer_client, operator_client):
    url = reverse("archive_detail", args=["default", ARCHIVE])
    replay_url = reverse("replay_new", args=["default", ARCHIVE])
    assert replay_url not in viewer_client.get(url).text
    assert replay_url in operator_client.get(url).text


def test_browser_filters_by_correlation_id(world, viewer_client):
    # Not hex-only: a short ID like "c-1" also turns up inside random event UUIDs.
    world.put("OrderPaid", detail("corr-kept"))
    world.put("OrderPaid", detail("corr-hidden"))
    response = viewer_client.get(
        reverse("archive_events", args=["default", ARCHIVE]), {"correlation_id": "corr-kept"}
    )
    assert response.status_code == 200
    assert "corr-kept" in response.text and "corr-hidden" not in response.text


def test_browser_htmx_request_gets_the_fragment(world, viewer_client):
    response = viewer_client.get(
        reverse("archive_events", args=["default", ARCHIVE]), HTTP_HX_REQUEST="true"
    )
    assert "<html" not in response.text
    assert "HX-Request" in response["Vary"]


def test_browser_end_before_start_is_a_clear_400(world, viewer_client):
    response = viewer_client.get(
        reverse("archive_events", args=["default", ARCHIVE]),
        {"start": "2024-05-02T00:00", "end": "2024-05-01T00:00"},
    )
    assert response.status_code == 400
    assert "must be after its start" in response.text


def test_browser_query_timeout_is_explained(world, viewer_client, monkeypatch):
    def timed_out(*args, **kwargs):
        raise QueryTimedOut("The Logs Insights query timed out after 30 s.")

    monkeypatch.setattr(reads, "read_events", timed_out)
    response = viewer_client.get(reverse("archive_events", args=["default", ARCHIVE]))
    assert response.status_code == 504
    assert "timed out" in response.text


def test_hostile_event_is_escaped_in_the_list_and_the_detail(world, viewer_client):
    event_id = world.put("OrderPaid", detail("c-1", note=HOSTILE))
    listing = viewer_client.get(
        reverse("archive_events", args=["default", ARCHIVE]), {"q": "script"}
    )
    found = reads.find_event(reads.load_archive(ARCHIVE).log_group, event_id, _now())
    page = viewer_client.get(
        reverse("archive_event", args=["default", ARCHIVE, event_id]), {"t": found.timestamp_ms}
    )
    assert event_id in listing.text and page.status_code == 200
    assert HOSTILE not in listing.text + page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_event_ids_in_the_log_that_are_no_uuid_or_look_like_cards_never_break_the_list(
    world, viewer_client
):
    # A masked viewer. The first ID's digits, read across its dashes, once passed as a card
    # number (masked to "313874cd-dfbc-423d-b••••0564": no URL, a 500); the others were
    # written by something that is not EventBridge.
    ids = ["313874cd-dfbc-423d-b246-548991270564", "not.an/id", "", "x" * 200]
    logs = boto3.client("logs", region_name="us-east-1")
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName="odd")
    now_ms = int(_now().timestamp() * 1000)
    envelopes = [
        {"id": event_id, "detail-type": "OrderPaid", "source": "x", "detail": {"n": i}}
        for i, event_id in enumerate(ids)
    ]
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName="odd",
        logEvents=[{"timestamp": now_ms, "message": json.dumps(e)} for e in envelopes],
    )
    response = viewer_client.get(reverse("archive_events", args=["default", ARCHIVE]))
    assert response.status_code == 200
    link = reverse("archive_event", args=["default", ARCHIVE, ids[0]])
    assert f'href="{link}?t={now_ms}"' in response.text
    assert ids[0] + "</a>" in response.text
    assert "not.an/id</span>" in response.text and "(no ID)" in response.text
    assert len(re.findall(r'/events/[^"]+/\?t=', response.text)) == 1  # only the UUID opens


def test_event_detail_lists_the_rules_it_matches(world, viewer_client):
    event_id = world.put("OrderCreated", detail("c-1"))
    found = reads.find_event(reads.load_archive(ARCHIVE).log_group, event_id, _now())
    page = viewer_client.get(
        reverse("archive_event", args=["default", ARCHIVE, event_id]), {"t": found.timestamp_ms}
    )
    assert "notify-rule" in page.text and "billing-rule" not in page.text


def test_event_detail_without_its_time_is_404(world, viewer_client):
    assert (
        viewer_client.get(reverse("archive_event", args=["default", ARCHIVE, "abc"])).status_code
        == 404
    )


def _now() -> datetime:
    return datetime.now(tz=UTC)


def test_hostile_detail_type_is_escaped_in_the_list_and_the_preview(world, viewer_client):
    world.put(HOSTILE, detail("c-1"))
    start = (_now() - timedelta(hours=1)).isoformat()
    listing = viewer_client.get(reverse("archive_events", args=["default", ARCHIVE]))
    preview = viewer_client.get(
        reverse("replay_new", args=["default", ARCHIVE]),
        {"start": start, "end": _now().isoformat(), "preview": "1"},
    )
    assert listing.text.count("&lt;script&gt;") == 1 and preview.text.count("&lt;script&gt;") == 1
    assert HOSTILE not in listing.text + preview.text


def test_htmx_error_fragment_is_sent_as_200_so_htmx_swaps_it(world, viewer_client):
    response = viewer_client.get(
        reverse("archive_events", args=["default", ARCHIVE]),
        {"start": "2024-05-02T00:00", "end": "2024-05-01T00:00"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert "must be after its start" in response.text


def test_archive_unreadable_with_no_last_value_is_a_502_that_says_why(
    world, viewer_client, monkeypatch
):
    from operations.aws import events
    from operations.aws.errors import AwsError

    def down(name):
        raise AwsError(
            "slow down", code="ThrottlingException", operation="DescribeArchive", transient=True
        )

    monkeypatch.setattr(events, "describe_archive", down)
    response = viewer_client.get(reverse("archive_events", args=["default", ARCHIVE]))
    assert response.status_code == 502
    assert "AWS is not answering right now" in response.text
