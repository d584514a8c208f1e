"""In Chromium: an operation's page follows its progress by htmx polling, in place, and
stops polling once the operation has finished (the progress view answers 286)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from operations.models import Operation
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The page's links and loop warnings read the account's queues: moto's, never AWS.
DLQ_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/orders-dlq"


def _redrive(**fields) -> Operation:
    """A redrive of orders-dlq with 30 messages to move."""
    return Operation.objects.create(
        kind=Operation.Kind.REDRIVE,
        target=DLQ_URL,
        target_label="orders-dlq",
        reason="consumer fixed",
        requested_by_name="oncall",
        total=30,
        **fields,
    )


def test_progress_updates_in_place_and_polling_stops_when_finished(
    live_server, page, login, viewer, moto_server
):
    op = _redrive(state=Operation.State.RUNNING, started_at=timezone.now() - timedelta(seconds=10))
    progress_url = f"/env/default/operations/{op.pk}/progress/"

    def is_poll(response) -> bool:
        return progress_url in response.url

    login("viewer", PASSWORD)
    page.clock.install()  # htmx's 2 s timer fires only when the test advances the clock
    page.goto(f"{live_server.url}/env/default/operations/{op.pk}/")
    expect(page.locator("#count-moved")).to_have_text("0")
    expect(page.locator("#operation-state")).to_have_text("Running")
    # Survives only if the document is never reloaded.
    page.evaluate("window.eventopsMarker = 'same-document'")

    # The worker reports a batch: the next poll shows it, with a rate and an ETA.
    Operation.objects.filter(pk=op.pk).update(moved=10, skipped=2)
    with page.expect_response(is_poll) as running:
        page.clock.run_for(2_100)
    assert running.value.status == 200
    expect(page.locator("#count-moved")).to_have_text("10")
    expect(page.locator("#count-skipped")).to_have_text("2")
    expect(page.locator("#operation-bar")).to_have_attribute("value", "12")
    expect(page.locator("#rate")).to_contain_text("msg/s")
    expect(page.locator("#eta")).to_contain_text("about")

    # The operation finishes: one more poll shows it, answered 286, and polling stops.
    Operation.objects.filter(pk=op.pk).update(
        moved=28, state=Operation.State.SUCCEEDED, finished_at=timezone.now()
    )
    with page.expect_response(is_poll) as finished:
        page.clock.run_for(2_100)
    assert finished.value.status == 286
    expect(page.locator("#operation-state")).to_have_text("Succeeded")
    expect(page.locator("#count-moved")).to_have_text("28")

    later: list[str] = []
    page.on("request", lambda r: later.append(r.url) if progress_url in r.url else None)
    page.clock.run_for(20_000)  # ten more poll intervals
    page.wait_for_timeout(300)  # let any request the timers made reach the listener
    assert later == []
    assert page.evaluate("window.eventopsMarker") == "same-document"


def test_every_field_follows_and_cancel_disappears_at_the_end(
    live_server, page, login, operator, moto_server
):
    op = _redrive(state=Operation.State.PENDING)
    progress_url = f"/env/default/operations/{op.pk}/progress/"
    login(operator.username, PASSWORD)
    page.clock.install()
    page.goto(f"{live_server.url}/env/default/operations/{op.pk}/")
    expect(page.locator("#op-started")).to_have_text("—")
    expect(page.locator("#cancel-button")).to_be_visible()
    page.fill("#cancel-form [name=reason]", "half typed")

    # A worker claims it: started and attempts appear, the typed reason is kept.
    started = timezone.now() - timedelta(seconds=10)
    Operation.objects.filter(pk=op.pk).update(
        state=Operation.State.RUNNING, started_at=started, attempts=1, moved=5
    )
    with page.expect_response(lambda r: progress_url in r.url):
        page.clock.run_for(2_100)
    expect(page.locator("#op-started")).not_to_have_text("—")
    expect(page.locator("#op-attempts")).to_have_text("1")
    expect(page.locator("#cancel-form [name=reason]")).to_have_value("half typed")

    # It ends: finished appears, Cancel goes, and the rate is what a reload shows.
    Operation.objects.filter(pk=op.pk).update(
        state=Operation.State.SUCCEEDED,
        moved=30,
        finished_at=started + timedelta(seconds=20),
        outcome={"moved": 30},
    )
    with page.expect_response(lambda r: progress_url in r.url) as finished:
        page.clock.run_for(2_100)
    assert finished.value.status == 286
    expect(page.locator("#operation-state")).to_have_text("Succeeded")
    expect(page.locator("#op-finished")).not_to_have_text("—")
    expect(page.locator("#cancel-button")).to_have_count(0)
    expect(page.locator("#outcome")).to_contain_text('"moved": 30')
    live_rate = page.locator("#rate").inner_text()
    assert live_rate == "1.5 msg/s"  # 30 messages in the 20 s it ran
    page.reload()
    expect(page.locator("#rate")).to_have_text(live_rate)
    expect(page.locator("#cancel-button")).to_have_count(0)
