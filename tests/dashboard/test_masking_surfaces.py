"""Masking beyond the DLQ page: the correlation panels and timeline, "Why did this fail?",
the operation audit. A viewer's response never carries a secret; an admin's does."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from operations import alarms, correlation, dlq, schema_check
from operations.aws import sqs
from operations.models import Operation
from tests.secret_bodies import BODY, CARD, CORRELATION_ID, PASSWORD, leaked

pytestmark = pytest.mark.django_db

AT = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)


def secret_message(message_id: str = "m-1", body: str = BODY) -> dlq.DlqMessage:
    error = {"DataType": "String", "StringValue": f"charge declined for card {CARD}"}
    raw = sqs.SqsMessage(
        message_id=message_id,
        receipt_handle="r",
        body=body,
        attributes={"SentTimestamp": str(int(AT.timestamp() * 1000))},
        message_attributes={"ErrorMessage": error},
    )
    return dlq.describe(raw)


def secret_event(correlation_id: str = CORRELATION_ID) -> correlation.LoggedEvent:
    envelope = json.loads(BODY)
    envelope["detail"]["correlationId"] = correlation_id
    envelope["time"] = AT.isoformat()
    event = correlation._logged_event(json.dumps(envelope), "/aws/events/shop-bus")
    assert event is not None
    return event


@pytest.fixture
def secret_panels(monkeypatch):
    """The DLQ panel finds the secret message, the events panel the secret event; plus a
    message and an event whose correlation ID is itself a card number."""

    def dlq_panel(lookup, since):
        rows = [correlation.FoundMessage("billing-dlq", "url", secret_message())]
        if lookup.value == CARD:
            body = BODY.replace(CORRELATION_ID, CARD)
            rows = [correlation.FoundMessage("billing-dlq", "url", secret_message(body=body))]
        return correlation.Panel(
            key="dlq", title="DLQ", rows=rows, entries=[correlation.dlq_entry(r) for r in rows]
        )

    def events_panel(lookup, since):
        event = secret_event(lookup.value)
        return correlation.Panel(
            key="events",
            title="Events",
            rows=[{"event": event, "rules": ["notify"]}],
            entries=[correlation.event_entry(event, ["notify"])],
        )

    def empty(key):
        return lambda lookup, since: correlation.Panel(key=key, title=key)

    panels = {key: (key, empty(key)) for key in correlation.PANELS}
    panels["dlq"] = ("DLQ", dlq_panel)
    panels["events"] = ("Events", events_panel)
    monkeypatch.setattr(correlation, "PANELS", panels)
    monkeypatch.setattr(correlation, "archives_of", lambda buses: [])


def panel(client, key: str, q: str = CORRELATION_ID) -> str:
    url = reverse("correlation_panel", args=["default", key])
    response = client.get(url, {"q": q}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("key", ["dlq", "events"])
def test_viewer_correlation_panel_is_masked(viewer_client, secret_panels, key) -> None:
    html = panel(viewer_client, key)
    assert CORRELATION_ID in html and "••••1111" in html
    assert leaked(html) == []


@pytest.mark.parametrize("key", ["dlq", "events"])
def test_admin_correlation_panel_shows_the_original(admin_client, secret_panels, key) -> None:
    html = panel(admin_client, key)
    assert CARD in html and PASSWORD in html


def test_viewer_timeline_masks_the_dlq_error(viewer_client, secret_panels) -> None:
    for key in ("dlq", "events"):
        panel(viewer_client, key)
    html = panel(viewer_client, "timeline")
    assert "charge declined for card ••••1111" in html and leaked(html) == []


def test_viewer_lookup_by_a_card_number_finds_nothing(viewer_client, secret_panels) -> None:
    """The ID looked up is itself a card number: masked, the rows no longer carry it."""
    html = panel(viewer_client, "dlq", q=CARD)
    assert "billing-dlq" not in html and leaked(html) == []


def test_admin_lookup_by_a_card_number_finds_the_message(admin_client, secret_panels) -> None:
    assert "billing-dlq" in panel(admin_client, "dlq", q=CARD)


# --- "Why did this fail?" -------------------------------------------------------------------


@pytest.fixture
def failing_check(monkeypatch):
    """The registry's answer: the card number breaks the schema's pattern."""
    issue = schema_check.Issue("$.detail.card", f"'{CARD}' does not match '^tok_'", "pattern")
    result = schema_check.CheckResult("r", "shop@OrderPaid", "1", "detail", issues=[issue])
    monkeypatch.setattr(schema_check, "check", lambda *args, **kwargs: result)


def test_viewer_schema_check_masks_the_values_it_quotes(viewer_client, failing_check) -> None:
    response = viewer_client.post(reverse("schema_check", args=["default"]), {"body": "{}"})
    html = response.content.decode()
    assert "does not match" in html and "••••1111" in html and CARD not in html


def test_viewer_checking_a_masked_body_is_told_so(viewer_client, failing_check) -> None:
    body = json.dumps({"card": "••••1111"}, ensure_ascii=False)
    html = viewer_client.post(reverse("schema_check", args=["default"]), {"body": body}).text
    assert 'id="masked-input"' in html


def test_admin_schema_check_quotes_the_original(admin_client, failing_check) -> None:
    response = admin_client.post(reverse("schema_check", args=["default"]), {"body": "{}"})
    assert CARD in response.content.decode()


# --- the operation audit ---------------------------------------------------------------------


@pytest.fixture
def edit_operation(db) -> Operation:
    """An edit-and-resend: the audit keeps the whole edited body and the diff."""
    diff = f'-  "password": "old"\n+  "password": "{PASSWORD}"'
    return Operation.objects.create(
        kind=Operation.Kind.EDIT_RESEND,
        target="https://sqs/orders-dlq",
        target_label="orders-dlq",
        requested_by_name="ada",
        reason=f"customer's card {CARD} was refused",
        parameters={"message_id": "m-1", "body": BODY},
        outcome={"diff": diff},
        state=Operation.State.SUCCEEDED,
    )


def test_viewer_operation_page_masks_parameters_outcome_and_reason(
    viewer_client, edit_operation
) -> None:
    url = reverse("operations:detail", args=["default", edit_operation.pk])
    html = viewer_client.get(url).content.decode()
    assert "m-1" in html and "••••" in html
    assert leaked(html) == []


def test_admin_operation_page_shows_the_original_parameters(admin_client, edit_operation) -> None:
    url = reverse("operations:detail", args=["default", edit_operation.pk])
    html = admin_client.get(url).content.decode()
    assert PASSWORD in html and CARD in html


# --- the alarm drill-down ---------------------------------------------------------------------


@pytest.fixture
def dlq_alarm_with_a_secret_error(monkeypatch):
    from operations.aws.cloudwatch import Alarm, AlarmDetail

    alarm = Alarm("billing-dlq-not-empty", "arn:a", "metric", "ALARM", "x", AT, True)
    group = alarms.MessageGroup(f"card {CARD} refused", "OrderPaid", ["c-1"], 1, ["m-1"])
    found = alarms.DlqDrilldown(
        queue_name="billing-dlq",
        queue_url="http://sqs/billing-dlq",
        window_start=AT,
        window_end=AT,
        groups=[group],
        examined=1,
    )
    drill = alarms.Drilldown(detail=AlarmDetail(alarm=alarm, threshold=0.0), dlq=found)
    monkeypatch.setattr(alarms, "drilldown", lambda name: drill)
    return reverse("alarm_detail", args=["default", alarm.name])


def test_viewer_alarm_drilldown_masks_the_errors(viewer_client, dlq_alarm_with_a_secret_error):
    html = viewer_client.get(dlq_alarm_with_a_secret_error).content.decode()
    assert "card ••••1111 refused" in html and CARD not in html


def test_admin_alarm_drilldown_shows_the_errors(admin_client, dlq_alarm_with_a_secret_error):
    assert f"card {CARD} refused" in admin_client.get(dlq_alarm_with_a_secret_error).text


def test_viewer_sees_operation_reasons_masked_in_the_correlation_panel(
    viewer_client, edit_operation
) -> None:
    edit_operation.touched.create(correlation_id=CORRELATION_ID)
    html = panel(viewer_client, "operations")
    assert "was refused" in html and "••••1111" in html and CARD not in html
