"""Hostile times, tokens and bodies on every archive, replay, re-publish and schema URL:
a clear 400 or 404, never a 500, and nothing written."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from django.core.cache import cache
from django.urls import reverse

from operations import archive as reads
from operations import schema_check
from operations.models import Operation
from tests.operations import archive_world
from tests.operations.archive_world import ARCHIVE, LOG_GROUP, detail

world = archive_world.world
operator_client = archive_world.operator_client
pytestmark = pytest.mark.django_db

# Epoch-ms strings that str.isdigit() accepts but int() refuses ("²"), that int() reads
# but are not ASCII ("٣"), too long, beyond datetime's range, before 1970-01-02, or not
# digits at all. (No "t" at all is the existing test_event_detail_without_its_time_is_404.)
BAD_EPOCH_MS = [
    "²",
    "٣٤٥",
    "99999999999999999999",
    "999999999999999",
    "253402300800000",
    "0",
    "-1",
    "1e12",
    " 1714564800000",
]
# ISO times whose windows (an hour before, +-15 minutes) leave datetime's range or epoch 0.
BAD_ISO = [
    "0001-01-01T00:00",
    "0001-01-01T00:00+23:59",
    "9999-12-31T23:59",
    "9999-12-31T23:59-23:59",
    "1969-12-31T23:00",
]


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


def _recent() -> tuple[str, str]:
    end = datetime.now(tz=UTC) - timedelta(minutes=1)
    return (end - timedelta(minutes=30)).isoformat(), end.isoformat()


def _requests(value: str) -> list[tuple[str, str, dict[str, str]]]:
    """(method, URL, data) of every archive URL that takes a time or token, with ``value``."""
    start, end = _recent()
    long_start = (datetime.now(tz=UTC) - timedelta(hours=3)).isoformat()
    events = reverse("archive_events", args=["default", ARCHIVE])
    return [
        ("get", reverse("archive_event", args=["default", ARCHIVE, "e-1"]), {"t": value}),
        # A window over an hour pages with an epoch-ms token (Logs Insights).
        ("get", events, {"start": long_start, "end": end, "token": value}),
        (
            "post",
            reverse("republish", args=["default", ARCHIVE]),
            {"event_id": "e-1", "t": value, "reason": "hostile"},
        ),
    ]


def _iso_requests(value: str) -> list[tuple[str, str, dict[str, str]]]:
    start, end = _recent()
    republish = reverse("republish", args=["default", ARCHIVE])
    replay_form = {"rules": "billing-rule", "reason": "hostile"}
    return [
        ("get", reverse("archive_events", args=["default", ARCHIVE]), {"end": value}),
        ("get", reverse("archive_events", args=["default", ARCHIVE]), {"start": value, "end": end}),
        (
            "get",
            reverse("replay_new", args=["default", ARCHIVE]),
            {"start": value, "end": end, "preview": "1"},
        ),
        (
            "get",
            reverse("replay_new", args=["default", ARCHIVE]),
            {"start": start, "end": value, "preview": "1"},
        ),
        (
            "post",
            reverse("replay_start", args=["default", ARCHIVE]),
            {"start": value, "end": end, **replay_form},
        ),
        (
            "post",
            reverse("replay_start", args=["default", ARCHIVE]),
            {"start": start, "end": value, **replay_form},
        ),
        ("post", republish, {"correlation_id": "c-1", "start": value, "end": end, "reason": "x"}),
        ("post", republish, {"correlation_id": "c-1", "start": start, "end": value, "reason": "x"}),
    ]


def _send(client, method: str, url: str, data: dict[str, str]):
    return getattr(client, method)(url, data)


@pytest.mark.parametrize("value", BAD_EPOCH_MS)
def test_hostile_epoch_ms_is_refused_on_every_url(world, operator_client, value):
    world.put("OrderPaid", detail("c-1"))
    for method, url, data in _requests(value):
        response = _send(operator_client, method, url, data)
        assert response.status_code in (400, 404), (url, data, response.status_code)
    assert Operation.objects.count() == 0


@pytest.mark.parametrize("value", BAD_ISO)
def test_hostile_iso_time_is_refused_on_every_url(world, operator_client, value):
    world.put("OrderPaid", detail("c-1"))
    for method, url, data in _iso_requests(value):
        response = _send(operator_client, method, url, data)
        assert response.status_code == 400, (url, data, response.status_code)
    assert Operation.objects.count() == 0


def test_hostile_time_gets_a_clear_message(world, operator_client):
    response = operator_client.post(
        reverse("republish", args=["default", ARCHIVE]),
        {"event_id": "e-1", "t": "²", "reason": "x"},
    )
    assert response.status_code == 400 and "not a valid time in epoch milliseconds" in response.text


def test_far_away_end_gets_a_clear_message(world, operator_client):
    response = operator_client.get(
        reverse("archive_events", args=["default", ARCHIVE]), {"end": "0001-01-01T00:00"}
    )
    assert response.status_code == 400 and "End must be between 1970-01-02" in response.text


def test_overlong_page_token_is_a_400(world, operator_client):
    start, end = _recent()
    response = operator_client.get(
        reverse("archive_events", args=["default", ARCHIVE]),
        {"start": start, "end": end, "token": "x" * 5000},
    )
    assert response.status_code == 400 and "page token" in response.text


def test_valid_epoch_ms_still_opens_the_event(world, operator_client):
    event_id = world.put("OrderPaid", detail("c-1"))
    found = reads.find_event(LOG_GROUP, event_id, datetime.now(tz=UTC))
    assert found is not None
    url = reverse("archive_event", args=["default", ARCHIVE, event_id])
    assert operator_client.get(url, {"t": str(found.timestamp_ms)}).status_code == 200


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1714564800123", 1714564800123), ("86400000", 86400000)],
)
def test_parse_epoch_ms_keeps_every_millisecond(value, expected):
    assert reads.parse_epoch_ms(value) == expected


# --- deeply nested JSON ------------------------------------------------------------------

DEEP = "[" * 2000


def test_deep_body_in_why_did_this_fail_is_a_clear_400(operator_client):
    response = operator_client.post(reverse("schema_check", args=["default"]), {"body": DEEP})
    assert response.status_code == 400 and "nested too deeply" in response.text


def test_schema_check_refuses_a_deep_body_with_its_own_error():
    with pytest.raises(schema_check.SchemaCheckError, match="nested too deeply"):
        schema_check.parse_input(DEEP)


def test_deep_log_line_is_skipped_not_raised():
    assert reads.parse_message(DEEP, 0) is None


def test_deep_but_parseable_event_still_renders(world, operator_client):
    """An event nested just below the parser's limit renders (raw when pretty-printing
    it would recurse too deep), and a too-deep log line is skipped."""
    nested = "[" * 400 + "]" * 400
    envelope = {"id": "deep-1", "detail-type": "Deep", "source": "s", "detail": {"x": 1}}
    message = json.dumps(envelope)[:-1] + f', "deep": {nested}}}'
    now_ms = int(time.time() * 1000)
    boto3.client("logs", region_name="us-east-1").put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName=_stream(),
        logEvents=[
            {"timestamp": now_ms, "message": DEEP},
            {"timestamp": now_ms, "message": message},
        ],
    )
    response = operator_client.get(reverse("archive_events", args=["default", ARCHIVE]))
    assert response.status_code == 200 and "deep-1" in response.text
    event = operator_client.get(
        reverse("archive_event", args=["default", ARCHIVE, "deep-1"]), {"t": now_ms}
    )
    assert event.status_code == 200


def _stream() -> str:
    logs = boto3.client("logs", region_name="us-east-1")
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName="hostile")
    return "hostile"


def test_schema_version_in_another_script_is_404(operator_client):
    url = reverse("schema_detail", args=["default", "registry", "name"])
    assert operator_client.get(url, {"version": "٣"}).status_code == 404


def test_event_too_deep_to_pretty_print_shows_its_raw_line():
    nested: list = []
    for _ in range(5000):
        nested = [nested]
    event = reads.LoggedEvent(envelope={"deep": nested}, message="raw line", timestamp_ms=0)
    assert event.pretty == "raw line"
