"""Following a replay: only EventBridge's final state or a person ends the operation.

botocore's Stubber asserts the exact requests and answers with the errors moto never
gives (throttling, 5xx, AccessDenied)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import Stubber
from django.utils import timezone

from operations import cancel
from operations.models import Operation
from operations.replay_tasks import run_replay

pytestmark = pytest.mark.django_db

NAME = "eventops-op1-20260101T000000"
ARCHIVE_ARN = "arn:aws:events:us-east-1:123456789012:archive/orders-archive"
START = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
END = datetime(2026, 1, 1, 11, 0, tzinfo=UTC)


def make_replay(*, started: bool = True) -> Operation:
    return Operation.objects.create(
        kind=Operation.Kind.REPLAY,
        target=ARCHIVE_ARN,
        target_label="orders-archive",
        reason="billing outage",
        requested_by_name="oncall",
        parameters={
            "replay_name": NAME,
            "archive_arn": ARCHIVE_ARN,
            "bus_arn": "arn:aws:events:us-east-1:123456789012:event-bus/orders",
            "start": START.isoformat(),
            "end": END.isoformat(),
        },
        progress={"replay_name": NAME, "started": True} if started else {},
    )


def describe(stub: Stubber, state: str, **extra: Any) -> None:
    stub.add_response(
        "describe_replay", {"ReplayName": NAME, "State": state, **extra}, {"ReplayName": NAME}
    )


def error(stub: Stubber, operation: str, code: str, status: int) -> None:
    stub.add_client_error(
        operation,
        service_error_code=code,
        http_status_code=status,
        expected_params={"ReplayName": NAME},
    )


def follow(op: Operation, sleep: Any = None) -> bool:
    token = op.lease_token if op.state == "running" else op.claim()
    assert token is not None
    return run_replay(op, token, sleep=sleep or (lambda s: None), interval=10)


def cancel_while_running(op: Operation) -> None:
    op.claim()
    op.request_cancel(by="oncall", reason="stop")


class Watch:
    """A sleep that records the row as the worker left it before each pause."""

    def __init__(self, op: Operation, on_first: Any = None) -> None:
        self.op, self.on_first, self.rows = op, on_first, []

    def __call__(self, seconds: float) -> None:
        if not self.rows and self.on_first:
            self.on_first()
        self.rows.append(Operation.objects.get(pk=self.op.pk))


@pytest.mark.parametrize(
    ("code", "status"),
    [("ThrottlingException", 400), ("InternalException", 500), ("AccessDeniedException", 400)],
)
def test_an_aws_error_while_following_keeps_the_replay_running_and_retries(
    events_stub: Stubber, code: str, status: int
) -> None:
    """One throttled DescribeReplay used to end the row FAILED and unlock the archive while
    EventBridge still ran the replay."""
    op = make_replay()
    error(events_stub, "describe_replay", code, status)
    describe(events_stub, "COMPLETED")
    watch = Watch(op)
    assert follow(op, watch) is True
    assert watch.rows[0].state == "running" and code in watch.rows[0].progress["aws_error"]
    assert Operation.objects.get(pk=op.pk).state == "succeeded"


def test_retries_back_off_and_the_row_is_reconciled_on_the_next_answer(
    events_stub: Stubber,
) -> None:
    op = make_replay()
    for _ in range(3):
        error(events_stub, "describe_replay", "ThrottlingException", 400)
    describe(events_stub, "RUNNING", EventLastReplayedTime=START + timedelta(minutes=30))
    describe(events_stub, "COMPLETED")
    pauses: list[float] = []
    follow(op, pauses.append)
    op.refresh_from_db()
    assert pauses == [10, 20, 40, 10]
    assert op.progress["state"] == "COMPLETED" and "aws_error" not in op.progress


def test_a_replay_eventbridge_no_longer_knows_fails(events_stub: Stubber) -> None:
    op = make_replay()
    error(events_stub, "describe_replay", "ResourceNotFoundException", 400)
    follow(op)
    op.refresh_from_db()
    assert op.state == "failed" and "ResourceNotFoundException" in op.error


def test_eventbridge_final_states_map_to_the_operations(events_stub: Stubber) -> None:
    op = make_replay()
    describe(events_stub, "FAILED", StateReason="Archive is gone")
    follow(op)
    op.refresh_from_db()
    assert (op.state, op.error) == ("failed", "Archive is gone")
    assert op.outcome["reasons"] == {"replay failed: Archive is gone": 1}


def test_a_cancel_stays_running_while_eventbridge_is_cancelling(events_stub: Stubber) -> None:
    op = make_replay()
    describe(events_stub, "RUNNING")
    events_stub.add_response("cancel_replay", {"State": "CANCELLING"}, {"ReplayName": NAME})
    describe(events_stub, "CANCELLING")
    describe(events_stub, "CANCELLED")

    def ask() -> None:
        Operation.objects.get(pk=op.pk).request_cancel(by="oncall", reason="wrong window")

    watch = Watch(op, on_first=ask)
    follow(op, watch)
    op.refresh_from_db()
    assert [row.state for row in watch.rows] == ["running", "running"]
    assert op.state == "cancelled"
    assert op.outcome["reasons"] == {"cancelled by oncall: wrong window": 1}


def test_a_cancel_call_that_failed_is_sent_again(events_stub: Stubber) -> None:
    op = make_replay()
    cancel_while_running(op)
    error(events_stub, "cancel_replay", "ThrottlingException", 400)
    describe(events_stub, "RUNNING")
    events_stub.add_response("cancel_replay", {"State": "CANCELLING"}, {"ReplayName": NAME})
    describe(events_stub, "CANCELLED")
    follow(op)
    assert Operation.objects.get(pk=op.pk).state == "cancelled"


def test_a_replay_that_completed_before_the_cancel_succeeded(events_stub: Stubber) -> None:
    op = make_replay()
    cancel_while_running(op)
    error(events_stub, "cancel_replay", "IllegalStatusException", 400)
    describe(events_stub, "COMPLETED")
    follow(op)
    op.refresh_from_db()
    assert op.state == "succeeded" and "completed first" in op.outcome["note"]


def test_a_cancel_after_a_start_the_worker_never_recorded_still_cancels_it(
    events_stub: Stubber,
) -> None:
    """Killed right after StartReplay: "started" was never saved, yet the replay runs."""
    op = make_replay(started=False)
    cancel_while_running(op)
    describe(events_stub, "RUNNING")  # does it exist?
    events_stub.add_response("cancel_replay", {"State": "CANCELLING"}, {"ReplayName": NAME})
    describe(events_stub, "CANCELLED")
    follow(op)
    assert Operation.objects.get(pk=op.pk).state == "cancelled"


# --- cancelling a row whose worker stopped ---------------------------------------------------


def abandoned() -> Operation:
    op = make_replay()
    op.claim()
    Operation.objects.filter(pk=op.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    op.refresh_from_db()
    return op


def test_an_abandoned_replay_is_cancelled_once_eventbridge_took_the_cancel(
    events_stub: Stubber,
) -> None:
    op = abandoned()
    events_stub.add_response("cancel_replay", {"State": "CANCELLING"}, {"ReplayName": NAME})
    assert cancel.cancel(op, by="oncall", reason="flooding billing").status == cancel.ENDED
    op.refresh_from_db()
    assert (op.state, op.cancel_requested_by) == ("cancelled", "oncall")


def test_an_abandoned_replay_eventbridge_would_not_cancel_stays_and_says_why(
    events_stub: Stubber,
) -> None:
    op = abandoned()
    error(events_stub, "cancel_replay", "AccessDeniedException", 400)
    result = cancel.cancel(op, by="oncall", reason="stop")
    op.refresh_from_db()
    assert result.status == cancel.REFUSED and op.state == "running"
    assert "CancelReplay failed" in op.error and op.cancel_note.startswith(
        "Cancel requested by oncall at "
    )


def test_an_abandoned_replay_that_had_completed_ends_succeeded(events_stub: Stubber) -> None:
    op = abandoned()
    error(events_stub, "cancel_replay", "IllegalStatusException", 400)
    describe(events_stub, "COMPLETED")
    cancel.cancel(op, by="oncall", reason="stop")
    assert Operation.objects.get(pk=op.pk).state == "succeeded"


def test_a_pending_replay_is_cancelled_at_once_without_aws(events_stub: Stubber) -> None:
    op = make_replay(started=False)
    assert cancel.cancel(op, by="oncall", reason="typo").status == cancel.ENDED
    op.refresh_from_db()
    assert (op.state, op.cancel_reason) == ("cancelled", "typo")
