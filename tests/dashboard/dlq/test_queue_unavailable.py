"""Starting an operation with the task queue down: a clear 503, never a 500, and no
pending row left to lock the target for good."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.urls import reverse
from kombu.exceptions import OperationalError

from operations import enqueue
from operations.models import Operation
from tests.operations import archive_world
from tests.operations.archive_world import ARCHIVE

from .conftest import Queues

world = archive_world.world
# The start commits its row before it enqueues (outside any transaction): as in production.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker_down(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("[Errno 111] Connection refused")

    for kind in ("redrive", "delete_messages", "edit_resend", "replay", "republish"):
        monkeypatch.setattr(enqueue.task_for(kind), "apply_async", refuse)


def assert_clear_503_and_nothing_locked(response: Any) -> None:
    html = response.content.decode()
    assert response.status_code == 503 and "The task queue is unreachable" in html
    op = Operation.objects.get()
    assert op.state == "failed" and not Operation.objects.filter(state="pending").exists()


def test_a_redrive_start_with_the_broker_down_is_a_clear_503(
    operator_client, queues: Queues, broker_down
) -> None:
    data = {"reason": "billing fixed", "destination_arn": queues.source_arn}
    response = operator_client.post(
        reverse("operations:redrive_start", args=["default", "orders-dlq"]), data
    )
    assert_clear_503_and_nothing_locked(response)


def test_a_delete_with_the_broker_down_is_a_clear_503(
    admin_client, queues: Queues, broker_down
) -> None:
    message_id = queues.put_event(1)
    data = {"message_ids": [message_id], "reason": "poison", "confirm": "on"}
    response = admin_client.post(
        reverse("operations:dlq_delete", args=["default", "orders-dlq"]), data
    )
    assert_clear_503_and_nothing_locked(response)
    assert queues.depth(queues.dlq_url) == 1


def test_once_the_broker_is_back_the_same_start_goes_through(
    operator_client, queues: Queues, broker_down, monkeypatch
) -> None:
    data = {"reason": "billing fixed", "destination_arn": queues.source_arn}
    url = reverse("operations:redrive_start", args=["default", "orders-dlq"])
    operator_client.post(url, data)
    monkeypatch.setattr(enqueue.task_for("redrive"), "apply_async", lambda *a, **k: None)
    assert operator_client.post(url, data).status_code == 302


def test_a_replay_start_with_the_broker_down_is_a_clear_503(
    world, operator_client, broker_down
) -> None:
    end = datetime.now(tz=UTC) - timedelta(minutes=1)
    data = {
        "start": (end - timedelta(hours=1)).isoformat(),
        "end": end.isoformat(),
        "reason": "billing outage",
    }
    # The page's way: a preview of the window first (Start needs it).
    shown = {"start": data["start"], "end": data["end"], "preview": "1"}
    preview = operator_client.get(
        reverse("replay_new", args=["default", ARCHIVE]), shown, HTTP_HX_REQUEST="true"
    )
    data["previewed"] = preview.context["token"]
    response = operator_client.post(reverse("replay_start", args=["default", ARCHIVE]), data)
    assert_clear_503_and_nothing_locked(response)
