"""The operation page stays true: one rate formula, and the poll that sees the end
replaces the times and removes the actions that no longer apply."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from operations.models import Operation

pytestmark = pytest.mark.django_db


def _finished_redrive() -> Operation:
    started = timezone.now() - timedelta(minutes=10)
    return Operation.objects.create(
        kind=Operation.Kind.REDRIVE,
        target="https://sqs.us-east-1.amazonaws.com/123456789012/orders-dlq",
        target_label="orders-dlq",
        reason="fixed",
        requested_by_name="oncall",
        state=Operation.State.SUCCEEDED,
        started_at=started,
        finished_at=started + timedelta(seconds=40),
        attempts=2,
        moved=100,
        total=100,
    )


def test_rate_of_a_finished_operation_counts_only_the_time_it_ran(operator_client):
    op = _finished_redrive()
    page = operator_client.get(reverse("operations:detail", args=["default", op.pk]))
    assert "2.5 msg/s" in page.text  # 100 in 40 s, not 100 in the 10 minutes since


def test_last_poll_swaps_times_and_removes_cancel(operator_client):
    op = _finished_redrive()
    url = reverse("operations:progress", args=["default", op.pk])
    response = operator_client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 286
    text = response.text
    assert 'id="op-times" hx-swap-oob="true"' in text and 'id="op-attempts">2<' in text
    assert '<div id="cancel-area" hx-swap-oob="true"></div>' in text


def test_poll_while_running_keeps_the_cancel_form(operator_client):
    op = _finished_redrive()
    Operation.objects.filter(pk=op.pk).update(state=Operation.State.RUNNING, finished_at=None)
    url = reverse("operations:progress", args=["default", op.pk])
    response = operator_client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 200 and 'id="cancel-area"' not in response.text


def test_viewer_sees_who_can_cancel_instead_of_the_button(viewer_client):
    op = _finished_redrive()
    Operation.objects.filter(pk=op.pk).update(state=Operation.State.RUNNING, finished_at=None)
    page = viewer_client.get(reverse("operations:detail", args=["default", op.pk]))
    assert 'id="cancel-button"' not in page.text and 'id="cancel-who"' in page.text
