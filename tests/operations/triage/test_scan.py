"""The scan operation: what it stores, how it counts, and that it leaves every message
visible and in place."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from operations.aws import client as aws_client
from operations.models import Operation
from operations.triage import scan
from operations.triage.models import FailureGroup, ScannedMessage
from tests.operations.triage.conftest import Dlq


def _run(url: str, max_messages: int | None = None) -> Operation:
    op = scan.create_scan(url, max_messages=max_messages, reason="test", user_name="t")
    token = op.claim(scan.LEASE_SECONDS)
    scan.Scan(op, token).run()
    op.refresh_from_db()
    return op


@pytest.fixture
def calls() -> Counter[str]:
    counted: Counter[str] = Counter()
    aws_client.session().events.register(
        "before-call.sqs.*", lambda model, **_: counted.update([model.name])
    )
    return counted


def test_a_scan_stores_every_message_and_releases_them_all(dlq_queue: Dlq) -> None:
    ids = {dlq_queue.put(i, error="amount -1 invalid" if i % 2 else "") for i in range(25)}
    op = _run(dlq_queue.url)
    assert op.state == "succeeded" and op.moved == 25
    assert (
        set(ScannedMessage.objects.filter(operation=op).values_list("message_id", flat=True)) == ids
    )
    assert (dlq_queue.visible(), dlq_queue.hidden()) == (25, 0)


def test_a_scan_costs_two_calls_per_ten_messages(dlq_queue: Dlq, calls: Counter[str]) -> None:
    for i in range(40):
        dlq_queue.put(i)
    calls.clear()
    op = _run(dlq_queue.url)
    assert op.moved == 40
    # 4 full receives + 2 empty ones to stop, 4 releases of 10, GetQueueAttributes at start.
    assert calls["ReceiveMessage"] == 6
    assert calls["ChangeMessageVisibilityBatch"] == 4
    assert "DeleteMessageBatch" not in calls and "SendMessageBatch" not in calls


def test_a_scan_stops_at_its_maximum(dlq_queue: Dlq) -> None:
    for i in range(30):
        dlq_queue.put(i)
    op = _run(dlq_queue.url, max_messages=12)
    assert op.moved == 12 and op.outcome["stopped"] == "max"
    assert (dlq_queue.visible(), dlq_queue.hidden()) == (30, 0)


def test_stored_rows_are_masked_and_grouped(dlq_queue: Dlq) -> None:
    body = {
        "detail-type": "CardAdded",
        "detail": {"correlationId": "c-1", "cardNumber": "4111 1111 1111 1111", "token": "s3cr3t"},
    }
    dlq_queue.put(1, body=body, error="card declined for 'c-1'")
    dlq_queue.put(2, error="card declined for 'c-2'")
    op = _run(dlq_queue.url)
    row = ScannedMessage.objects.get(operation=op, correlation_id="c-1")
    assert "s3cr3t" not in row.excerpt and "4111 1111 1111 1111" not in row.excerpt
    assert row.event_type == "CardAdded" and row.error == "card declined for 'c-1'"
    group = FailureGroup.objects.get()
    assert group.count == 2 and row.group_key == group.key


def test_a_cancelled_scan_releases_what_it_read(
    dlq_queue: Dlq, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(30):
        dlq_queue.put(i)
    monkeypatch.setattr(scan, "BATCH", 10)
    op = scan.create_scan(dlq_queue.url, max_messages=None, reason="t")
    token = op.claim(scan.LEASE_SECONDS)
    Operation.objects.filter(pk=op.pk).update(cancel_requested=True)
    scan.Scan(op, token).run()
    op.refresh_from_db()
    assert op.state == "cancelled" and op.moved == 10
    assert (dlq_queue.visible(), dlq_queue.hidden()) == (30, 0)


def test_one_active_operation_per_dlq(dlq_queue: Dlq) -> None:
    from django.db import IntegrityError

    scan.create_scan(dlq_queue.url, max_messages=None, reason="t")
    with pytest.raises(IntegrityError):
        scan.create_scan(dlq_queue.url, max_messages=None, reason="t")


def test_the_task_runs_a_scan(dlq_queue: Dlq, settings: Any) -> None:
    from operations import tasks

    dlq_queue.put(1)
    op = scan.create_scan(dlq_queue.url, max_messages=None, reason="t")
    tasks.scan.apply(args=(op.pk,))
    op.refresh_from_db()
    assert op.state == "succeeded" and op.moved == 1


def test_the_command_scans_and_says_how_many(dlq_queue: Dlq) -> None:
    from io import StringIO

    from django.core.management import call_command

    for i in range(3):
        dlq_queue.put(i)
    out = StringIO()
    call_command("scan", "billing-dlq", "--wait", stdout=out)
    assert "succeeded, 3 messages of about 3" in out.getvalue()
    assert ScannedMessage.objects.count() == 3


def test_the_command_refuses_a_queue_that_is_not_a_dlq(dlq_queue: Dlq) -> None:
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="not a dead-letter queue") as caught:
        call_command("scan", "billing", "--wait")
    assert caught.value.returncode == 2
    assert not Operation.objects.exists()
