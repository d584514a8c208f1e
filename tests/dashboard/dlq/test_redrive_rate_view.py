"""Lowering the rate of a running redrive from its page: the checklist of a mutating view."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from operations.models import Operation

pytestmark = pytest.mark.django_db


def make(**fields) -> Operation:
    defaults = {
        "kind": "redrive",
        "state": "running",
        "reason": "fix",
        "requested_by_name": "oncall",
        "target": "https://sqs/q/orders-dlq",
        "target_label": "orders-dlq",
        "parameters": {"rate": 100.0, "concurrency": 8},
    }
    return Operation.objects.create(**{**defaults, **fields})


def set_rate(client, op: Operation, rate: str = "5"):
    return client.post(reverse("operations:rate", args=["default", op.pk]), {"rate": rate})


def test_operator_lowers_the_rate_and_who_and_when_are_recorded(operator_client) -> None:
    op = make()
    assert set_rate(operator_client, op).status_code == 302
    op.refresh_from_db()
    change = op.parameters["rate_changes"][-1]
    assert (op.parameters["rate"], change["by"], change["from"], change["to"]) == (
        5.0,
        "oncall",
        100.0,
        5.0,
    )
    assert change["at"]


def test_the_page_shows_the_form_the_live_rate_and_the_change(operator_client) -> None:
    op = make(progress={"live_rate": 412.5, "concurrency": 8})
    set_rate(operator_client, op, "50")
    html = operator_client.get(reverse("operations:detail", args=["default", op.pk])).content
    text = html.decode()
    assert 'id="rate-form"' in text and "412.5 msg/s" in text
    assert "oncall changed the rate limit from 100.0 to 50.0" in text


def test_empty_lifts_the_limit(operator_client) -> None:
    op = make()
    set_rate(operator_client, op, "")
    op.refresh_from_db()
    assert op.parameters["rate"] is None


@pytest.mark.parametrize("rate", ["fast", "-3", "100000"])
def test_a_bad_rate_is_a_clear_400_and_changes_nothing(operator_client, rate: str) -> None:
    op = make()
    response = set_rate(operator_client, op, rate)
    assert response.status_code == 400 and "messages per second" in response.content.decode()
    op.refresh_from_db()
    assert op.parameters == {"rate": 100.0, "concurrency": 8}


def test_a_finished_redrive_refuses_with_400(operator_client) -> None:
    op = make(state="succeeded")
    response = set_rate(operator_client, op)
    assert response.status_code == 400 and "has finished" in response.content.decode()
    op.refresh_from_db()
    assert op.parameters["rate"] == 100.0


def test_repeating_the_change_is_harmless(operator_client) -> None:
    op = make()
    set_rate(operator_client, op)
    assert set_rate(operator_client, op).status_code == 302
    op.refresh_from_db()
    assert op.parameters["rate"] == 5.0 and len(op.parameters["rate_changes"]) == 2


def test_get_is_405(operator_client) -> None:
    op = make()
    assert (
        operator_client.get(reverse("operations:rate", args=["default", op.pk])).status_code == 405
    )


def test_viewer_cannot_change_the_rate(viewer_client) -> None:
    op = make()
    assert set_rate(viewer_client, op).status_code == 403
    op.refresh_from_db()
    assert op.parameters["rate"] == 100.0


def test_read_only_mode_refuses(operator_client, settings) -> None:
    settings.EVENTOPS_READ_ONLY = True
    op = make()
    assert set_rate(operator_client, op).status_code == 403
    op.refresh_from_db()
    assert op.parameters["rate"] == 100.0


def test_anonymous_is_sent_to_login(client) -> None:
    op = make()
    assert "/login/" in set_rate(client, op)["Location"]


def test_without_csrf_token_it_is_refused(operator) -> None:
    op = make()
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(operator)
    assert set_rate(csrf_client, op).status_code == 403


def test_another_kind_of_operation_is_404(operator_client) -> None:
    op = make(kind="delete_messages")
    assert set_rate(operator_client, op).status_code == 404


def test_live_fragment_stops_polling_when_finished(viewer_client) -> None:
    op = make(state="succeeded", progress={"live_rate": 0.0, "concurrency": 8})
    response = viewer_client.get(
        reverse("operations:live", args=["default", op.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 286 and 'id="pipelines"' in response.content.decode()
