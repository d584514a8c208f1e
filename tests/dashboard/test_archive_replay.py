"""Replay and re-publish views: the STYLE.md mutating-view checklist, preview and progress."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from operations.aws import events
from operations.models import Operation
from tests.operations import archive_world
from tests.operations.archive_world import ARCHIVE, detail

world = archive_world.world
operator_client = archive_world.operator_client
viewer_client = archive_world.viewer_client
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()


def _form(**changes: object) -> dict[str, object]:
    end = datetime.now(tz=UTC) - timedelta(minutes=1)
    data: dict[str, object] = {
        "start": (end - timedelta(hours=1)).isoformat(),
        "end": end.isoformat(),
        "rules": ["billing-rule"],
        "reason": "billing outage at 12:00",
    }
    data.update(changes)
    return data


START = reverse("replay_start", args=["default", ARCHIVE])
NEW = reverse("replay_new", args=["default", ARCHIVE])


def _start(client, **changes: object):
    """POST a start the way the page does: after a preview of the same window and rules."""
    data = _form(**changes)
    shown = {k: data[k] for k in ("start", "end", "rules")}
    preview = client.get(NEW, {**shown, "preview": "1"}, HTTP_HX_REQUEST="true")
    if preview.context is not None and preview.context.get("token"):
        data["previewed"] = preview.context["token"]
    return client.post(START, data)


def test_operator_starts_a_replay_and_lands_on_its_page(world, operator_client):
    response = _start(operator_client)
    op = Operation.objects.get()
    op.refresh_from_db()
    assert response.status_code == 302 and response["Location"].endswith(f"/{op.pk}/")
    assert (op.kind, op.state, op.parameters["rule_names"]) == (
        "replay",
        "pending",
        ["billing-rule"],
    )


def test_get_on_start_is_405(world, operator_client):
    assert operator_client.get(START).status_code == 405


def test_viewer_cannot_replay(world, viewer_client):
    response = _start(viewer_client)
    assert response.status_code == 403
    assert Operation.objects.count() == 0


def test_anonymous_is_sent_to_login(world):
    response = _start(Client())
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert Operation.objects.count() == 0


def test_repeating_the_start_is_refused_while_active(world, operator_client):
    _start(operator_client)
    again = _start(operator_client)
    assert again.status_code == 400 and "already active" in again.text
    assert Operation.objects.count() == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"start": "2024-05-02T00:00", "end": "2024-05-01T00:00"}, "must be after its start"),
        ({"start": "2020-01-01T00:00", "end": "2020-01-02T00:00"}, "retention of 90 days"),
        ({"rules": ["no-such-rule"]}, "not one of the available choices"),
        ({"reason": ""}, "reason is required"),
        ({"start": "yesterday"}, "not a valid time"),
    ],
)
def test_bad_input_is_a_clear_400_and_changes_nothing(world, operator_client, changes, message):
    response = _start(operator_client, **changes)
    assert response.status_code == 400 and message in response.text
    assert Operation.objects.count() == 0


def test_the_eleventh_replay_is_refused(world, operator_client, monkeypatch):
    monkeypatch.setattr(events, "count_active_replays", lambda: 10)
    response = _start(operator_client)
    assert response.status_code == 400 and "AWS allows 10" in response.text
    assert Operation.objects.count() == 0


def test_unknown_archive_start_is_404(world, operator_client):
    url = reverse("replay_start", args=["default", "nope"])
    assert operator_client.post(url, _form()).status_code == 404


def test_preview_fragment_shows_counts(world, viewer_client):
    world.put("OrderPaid", detail("c-1"))
    world.put("OrderCreated", detail("c-2"))
    end = datetime.now(tz=UTC)
    response = viewer_client.get(
        reverse("replay_new", args=["default", ARCHIVE]),
        {"start": (end - timedelta(hours=1)).isoformat(), "end": end.isoformat(), "preview": "1"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200 and "<html" not in response.text
    assert "2</strong> archived events" in response.text


def _running_replay(world) -> Operation:
    return Operation.objects.create(
        kind="replay",
        target=world.archive_arn,
        target_label=ARCHIVE,
        reason="r",
        requested_by_name="olga",
        parameters={"replay_name": "eventops-op9-x"},
    )


CANCEL_WHY = {"reason": "wrong window"}


def test_operator_cancels_a_pending_replay(world, operator_client):
    op = _running_replay(world)
    response = operator_client.post(reverse("replay_cancel", args=["default", op.pk]), CANCEL_WHY)
    op.refresh_from_db()
    assert response.status_code == 302
    assert op.state == Operation.State.CANCELLED and op.cancel_reason == "wrong window"
    assert op.cancel_requested_by == "olga"


def test_cancel_twice_is_harmless(world, operator_client):
    op = _running_replay(world)
    operator_client.post(reverse("replay_cancel", args=["default", op.pk]), CANCEL_WHY)
    again = operator_client.post(
        reverse("replay_cancel", args=["default", op.pk]), CANCEL_WHY, follow=True
    )
    op.refresh_from_db()
    assert again.status_code == 200 and "already finished" in again.text
    assert op.state == Operation.State.CANCELLED


def test_cancel_without_a_reason_is_a_clear_400_and_changes_nothing(world, operator_client):
    op = _running_replay(world)
    response = operator_client.post(
        reverse("replay_cancel", args=["default", op.pk]), {"reason": " "}
    )
    op.refresh_from_db()
    assert response.status_code == 400 and "Say why it must stop" in response.text
    assert op.state == Operation.State.PENDING and not op.cancel_requested


def test_viewer_cannot_cancel_and_get_is_405(world, viewer_client, operator_client):
    op = _running_replay(world)
    url = reverse("replay_cancel", args=["default", op.pk])
    assert viewer_client.post(url, CANCEL_WHY).status_code == 403
    assert operator_client.get(url).status_code == 405
    op.refresh_from_db()
    assert op.state == Operation.State.PENDING


def test_progress_polling_stops_when_finished(world, viewer_client):
    op = _running_replay(world)
    op.request_cancel()
    response = viewer_client.get(
        reverse("replay_detail", args=["default", op.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 286
    assert "<progress" in response.text


def test_republish_correlation_id_creates_an_operation(world, operator_client):
    world.put("OrderPaid", detail("c-1"))
    now = datetime.now(tz=UTC)
    response = operator_client.post(
        reverse("republish", args=["default", ARCHIVE]),
        {
            "correlation_id": "c-1",
            "start": (now - timedelta(hours=1)).isoformat(),
            "end": (now + timedelta(minutes=1)).isoformat(),
            "reason": "fixed consumer",
        },
    )
    op = Operation.objects.get()
    assert response.status_code == 302
    assert (op.kind, op.total, op.parameters["selector"]["correlation_id"]) == (
        "republish",
        1,
        "c-1",
    )


def test_viewer_cannot_republish(world, viewer_client):
    response = viewer_client.post(
        reverse("republish", args=["default", ARCHIVE]), {"correlation_id": "c-1", "reason": "x"}
    )
    assert response.status_code == 403
    assert Operation.objects.count() == 0


def test_republish_without_matching_events_is_a_clear_400(world, operator_client):
    now = datetime.now(tz=UTC)
    response = operator_client.post(
        reverse("republish", args=["default", ARCHIVE]),
        {
            "correlation_id": "c-404",
            "start": (now - timedelta(hours=1)).isoformat(),
            "end": now.isoformat(),
            "reason": "x",
        },
    )
    assert response.status_code == 400 and "No events" in response.text
    assert Operation.objects.count() == 0


def test_replay_form_shows_the_active_replay_count_and_a_default_window(world, operator_client):
    response = operator_client.get(reverse("replay_new", args=["default", ARCHIVE]))
    assert response.status_code == 200
    assert "0 of 10 replays active" in response.text
    assert 'name="start" value="20' in response.text


def test_get_on_republish_is_405(world, operator_client):
    response = operator_client.get(reverse("republish", args=["default", ARCHIVE]))
    assert response.status_code == 405
    assert Operation.objects.count() == 0


def test_anonymous_republish_is_sent_to_login(world, client):
    response = client.post(
        reverse("republish", args=["default", ARCHIVE]), {"correlation_id": "c-1", "reason": "x"}
    )
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert Operation.objects.count() == 0


def test_republish_without_a_reason_changes_nothing(world, operator_client):
    world.put("OrderPaid", detail("c-1"))
    now = datetime.now(tz=UTC)
    response = operator_client.post(
        reverse("republish", args=["default", ARCHIVE]),
        {
            "correlation_id": "c-1",
            "start": (now - timedelta(hours=1)).isoformat(),
            "end": (now + timedelta(minutes=1)).isoformat(),
            "reason": "",
        },
    )
    assert response.status_code == 400
    assert Operation.objects.count() == 0


def test_start_without_a_preview_is_refused_and_changes_nothing(world, operator_client):
    response = operator_client.post(START, _form())
    assert response.status_code == 400 and "Preview this window first" in response.text
    assert Operation.objects.count() == 0


def test_start_after_previewing_another_window_is_refused(world, operator_client):
    data = _form()
    preview = operator_client.get(
        NEW, {"start": data["start"], "end": data["end"], "preview": "1"}, HTTP_HX_REQUEST="true"
    )
    data["previewed"] = preview.context["token"]  # previewed without the rule now chosen
    response = operator_client.post(START, data)
    assert response.status_code == 400 and Operation.objects.count() == 0


def test_a_refused_start_shows_its_error_once(world, operator_client):
    response = _start(operator_client, reason="")
    assert response.status_code == 400 and response.text.count("reason is required") == 1


def test_form_opens_on_the_hour_up_to_the_newest_logged_event(world, operator_client, monkeypatch):
    from operations.aws import logs

    newest = datetime(2026, 12, 1, 8, 30, 20, tzinfo=UTC)
    monkeypatch.setattr(logs, "latest_event_ms", lambda group: int(newest.timestamp() * 1000))
    response = operator_client.get(NEW)
    assert (
        'value="2026-12-01T07:31"' in response.text and 'value="2026-12-01T08:31"' in response.text
    )


def test_start_button_waits_for_a_preview_and_a_reason(world, operator_client):
    response = operator_client.get(NEW)
    assert 'id="replay-start" data-start disabled' in response.text
