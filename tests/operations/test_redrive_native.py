"""Native redrive (StartMessageMoveTask): moto lacks it, so botocore's Stubber asserts
the exact requests, in order."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from botocore.stub import Stubber
from django.utils import timezone

from operations import cancel, dlq, native_redrive
from operations import redrive as engine
from operations.models import Operation

pytestmark = pytest.mark.django_db

DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:orders-dlq"
DLQ_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/orders-dlq"
HANDLE = "eyJ0YXNrIjoiMSJ9"


@pytest.fixture
def stub(sqs_stub: Stubber) -> Stubber:
    return sqs_stub


def make_op(**parameters: Any) -> Operation:
    return Operation.objects.create(
        kind=Operation.Kind.NATIVE_REDRIVE,
        target=DLQ_URL,
        parameters={"dlq_arn": DLQ_ARN, **parameters},
        reason="whole queue",
        requested_by_name="t",
    )


def task(status: str, moved: int, handle: str = HANDLE, **extra: Any) -> dict[str, Any]:
    return {
        "TaskHandle": handle,
        "Status": status,
        "SourceArn": DLQ_ARN,
        "ApproximateNumberOfMessagesMoved": moved,
        **extra,
    }


def started(op: Operation, seconds: float) -> int:
    """StartedTimestamp (epoch ms) this many seconds after the operation started."""
    assert op.started_at is not None
    return int((op.started_at + timedelta(seconds=seconds)).timestamp() * 1000)


def expect_list(stub: Stubber, *tasks: dict[str, Any]) -> None:
    stub.add_response(
        "list_message_move_tasks",
        {"Results": list(tasks)},
        {"SourceArn": DLQ_ARN, "MaxResults": 10},
    )


def list_error(stub: Stubber, code: str) -> None:
    stub.add_client_error(
        "list_message_move_tasks",
        service_error_code=code,
        http_status_code=400,
        expected_params={"SourceArn": DLQ_ARN, "MaxResults": 10},
    )


def expect_start(stub: Stubber, **params: Any) -> None:
    stub.add_response(
        "start_message_move_task", {"TaskHandle": HANDLE}, {"SourceArn": DLQ_ARN, **params}
    )


def claimed(op: Operation) -> Any:
    token = op.claim()
    assert token is not None
    return token


def following(op: Operation) -> Any:
    """Claimed, with the handle of a task it started: a run that follows it."""
    token = claimed(op)
    Operation.objects.filter(pk=op.pk).update(progress={"task_handle": HANDLE})
    op.refresh_from_db()
    return token


def run(op: Operation, token: Any = None, sleep: Any = None) -> str:
    token = token or claimed(op)
    return native_redrive.run(op, token, lease_seconds=60, sleep=sleep or (lambda s: None))


def test_native_redrive_starts_polls_and_succeeds(stub: Stubber) -> None:
    expect_list(stub)  # no task of this operation yet
    expect_start(stub, MaxNumberOfMessagesPerSecond=50)
    expect_list(stub, task("RUNNING", 10, ApproximateNumberOfMessagesToMove=30))
    expect_list(stub, task("COMPLETED", 30, ApproximateNumberOfMessagesToMove=30))
    op = make_op(rate=50)
    assert run(op) == "succeeded"
    op.refresh_from_db()
    assert (op.moved, op.total, op.progress["task_handle"]) == (30, 30, HANDLE)


def test_a_restarted_worker_follows_its_running_task_instead_of_starting_one(
    stub: Stubber,
) -> None:
    """Killed between StartMessageMoveTask and its progress report: the handle was never
    saved. SQS allows one active task per queue and would refuse a second start."""
    op = make_op()
    token = claimed(op)
    expect_list(stub, task("RUNNING", 4, StartedTimestamp=started(op, 2)))
    expect_list(stub, task("COMPLETED", 9, StartedTimestamp=started(op, 2)))
    assert run(op, token) == "succeeded"
    op.refresh_from_db()
    assert (op.progress["task_handle"], op.moved) == (HANDLE, 9)


def test_an_earlier_operations_finished_task_is_not_taken_for_this_one(stub: Stubber) -> None:
    op = make_op()
    token = claimed(op)
    earlier = task("COMPLETED", 50, handle="old", StartedTimestamp=started(op, -3600))
    expect_list(stub, earlier)
    expect_start(stub)
    expect_list(stub, task("COMPLETED", 2), earlier)
    assert run(op, token) == "succeeded"
    op.refresh_from_db()
    assert (op.progress["task_handle"], op.moved) == (HANDLE, 2)


def test_a_throttled_poll_is_retried_and_keeps_the_operation_running(stub: Stubber) -> None:
    """One throttled ListMessageMoveTasks must not end a move that SQS is still running."""
    op = make_op()
    token = following(op)
    list_error(stub, "ThrottlingException")
    expect_list(stub, task("COMPLETED", 7))
    seen: list[tuple[str, str]] = []

    def sleep(seconds: float) -> None:
        row = Operation.objects.get(pk=op.pk)
        seen.append((row.state, row.progress.get("aws_error", "")))

    assert run(op, token, sleep) == "succeeded"
    assert seen[0][0] == "running" and "ThrottlingException" in seen[0][1]


def test_a_failed_poll_for_good_is_not_a_transient_one(stub: Stubber) -> None:
    op = make_op()
    token = following(op)
    list_error(stub, "AWS.SimpleQueueService.NonExistentQueue")
    assert run(op, token) == "failed"


def test_cancel_sends_cancel_and_stays_running_until_sqs_confirms(stub: Stubber) -> None:
    op = make_op()
    token = following(op)
    expect_list(stub, task("RUNNING", 5))
    stub.add_response(
        "cancel_message_move_task", {"ApproximateNumberOfMessagesMoved": 5}, {"TaskHandle": HANDLE}
    )
    expect_list(stub, task("CANCELLING", 5))
    expect_list(stub, task("CANCELLED", 6))
    states: list[str] = []

    def sleep(seconds: float) -> None:
        if not states:
            Operation.objects.get(pk=op.pk).request_cancel(by="oncall", reason="wrong queue")
        states.append(Operation.objects.get(pk=op.pk).state)

    assert run(op, token, sleep) == "cancelled"
    op.refresh_from_db()
    assert states[:2] == ["running", "running"] and op.moved == 6
    assert op.outcome["reasons"] == {"cancelled by oncall: wrong queue": 1}


def test_a_cancel_before_any_task_started_starts_none(stub: Stubber) -> None:
    op = make_op()
    token = claimed(op)
    op.request_cancel(by="oncall", reason="not now")
    expect_list(stub)
    assert run(op, token) == "cancelled"


def test_failed_move_task_fails_the_operation_with_its_reason(stub: Stubber) -> None:
    expect_list(stub)
    expect_start(stub)
    expect_list(stub, task("FAILED", 0, FailureReason="AccessDenied on destination"))
    op = make_op()
    run(op)
    op.refresh_from_db()
    assert (op.state, op.error) == ("failed", "AccessDenied on destination")


def test_a_move_task_that_failed_half_way_is_partial_with_the_count_left(stub: Stubber) -> None:
    expect_list(stub)
    expect_start(stub)
    expect_list(
        stub, task("FAILED", 4, FailureReason="KMS denied", ApproximateNumberOfMessagesToMove=10)
    )
    op = make_op()
    assert run(op) == "partial"
    op.refresh_from_db()
    assert op.outcome["reasons"] == {"not moved: KMS denied": 6} and op.moved == 4


def test_a_fractional_rate_is_rounded_never_dropped(stub: Stubber) -> None:
    expect_list(stub)
    expect_start(stub, MaxNumberOfMessagesPerSecond=2)
    expect_list(stub, task("COMPLETED", 3, ApproximateNumberOfMessagesToMove=3))
    assert run(make_op(rate=1.6)) == "succeeded"


def test_an_endpoint_url_does_not_turn_native_redrive_off(settings: Any) -> None:
    """A VPC endpoint of SQS is real AWS: the setting alone decides."""
    settings.EVENTOPS_NATIVE_REDRIVE = True
    settings.AWS_ENDPOINT_URL = "https://vpce-0a1b2c3d.sqs.us-east-1.vpce.amazonaws.com"
    assert engine.native_redrive_enabled()


def test_native_redrive_is_off_unless_asked_for(settings: Any) -> None:
    settings.EVENTOPS_NATIVE_REDRIVE = False
    settings.AWS_ENDPOINT_URL = ""
    assert not engine.native_redrive_enabled()


def test_native_redrive_is_used_on_aws_when_the_setting_is_on(settings: Any) -> None:
    settings.EVENTOPS_NATIVE_REDRIVE = True
    settings.AWS_ENDPOINT_URL = ""
    assert engine.native_redrive_enabled()


@pytest.mark.parametrize(
    ("params", "native"),
    [
        (engine.RedriveParams(), True),
        (engine.RedriveParams(rate=1.0), True),
        # Below one message a second only the client-side path can pace it.
        (engine.RedriveParams(rate=0.5), False),
        (engine.RedriveParams(max_messages=5), False),
        (engine.RedriveParams(filters=dlq.Filters(event_type="OrderPaid")), False),
    ],
)
def test_only_a_whole_queue_move_the_api_can_pace_goes_native(
    settings: Any, params: engine.RedriveParams, native: bool
) -> None:
    settings.EVENTOPS_NATIVE_REDRIVE = True
    settings.AWS_ENDPOINT_URL = ""
    assert engine.use_native(params) is native


# --- cancelling from the page or the command line ----------------------------------------


def abandoned(op: Operation, **progress: Any) -> None:
    claimed(op)
    Operation.objects.filter(pk=op.pk).update(
        progress=progress, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_cancelling_an_abandoned_native_redrive_cancels_its_move_task(stub: Stubber) -> None:
    """Its worker died: the row ends once SQS took the cancel, with who and why."""
    op = make_op()
    abandoned(op, task_handle=HANDLE)
    stub.add_response(
        "cancel_message_move_task", {"ApproximateNumberOfMessagesMoved": 3}, {"TaskHandle": HANDLE}
    )
    result = cancel.cancel(op, by="oncall", reason="wrong destination")
    op.refresh_from_db()
    assert result.status == cancel.ENDED and (op.state, op.moved) == ("cancelled", 3)
    assert (op.cancel_requested_by, op.cancel_reason) == ("oncall", "wrong destination")


def test_an_abandoned_move_task_sqs_will_not_cancel_stays_running_and_says_why(
    stub: Stubber,
) -> None:
    op = make_op()
    abandoned(op, task_handle=HANDLE)
    stub.add_client_error(
        "cancel_message_move_task",
        service_error_code="AccessDenied",
        http_status_code=403,
        expected_params={"TaskHandle": HANDLE},
    )
    expect_list(stub, task("RUNNING", 3))
    result = cancel.cancel(op, by="oncall", reason="stop")
    op.refresh_from_db()
    assert result.status == cancel.REFUSED and op.state == "running"
    assert "CancelMessageMoveTask failed" in op.error and op.cancel_requested


def test_an_abandoned_row_whose_task_had_completed_ends_as_sqs_says(stub: Stubber) -> None:
    op = make_op()
    abandoned(op, task_handle=HANDLE)
    stub.add_client_error(
        "cancel_message_move_task",
        service_error_code="ResourceNotFoundException",
        http_status_code=400,
        expected_params={"TaskHandle": HANDLE},
    )
    expect_list(stub, task("COMPLETED", 12))
    cancel.cancel(op, by="oncall", reason="stop")
    op.refresh_from_db()
    assert (op.state, op.moved) == ("succeeded", 12)


def test_an_abandoned_row_that_never_started_a_task_is_cancelled(stub: Stubber) -> None:
    op = make_op()
    abandoned(op)
    expect_list(stub)
    assert cancel.cancel(op, by="oncall", reason="stop").status == cancel.ENDED
    op.refresh_from_db()
    assert op.state == "cancelled"


def test_cancelling_a_live_native_redrive_cancels_at_once_and_the_worker_copes(
    stub: Stubber,
) -> None:
    """The view cancels the move task at once; the worker, seeing the flag while SQS still
    lists the task as RUNNING, cancels again, is refused, and follows it to CANCELLED."""
    op = make_op()
    token = claimed(op)
    Operation.objects.filter(pk=op.pk).update(progress={"task_handle": HANDLE})
    stub.add_response(
        "cancel_message_move_task", {"ApproximateNumberOfMessagesMoved": 3}, {"TaskHandle": HANDLE}
    )
    assert cancel.cancel(op, by="oncall", reason="stop").status == cancel.REQUESTED
    assert (op.state, op.cancel_requested) == ("running", True)
    stub.add_client_error(
        "cancel_message_move_task",
        service_error_code="ResourceNotFoundException",
        http_status_code=400,
        expected_params={"TaskHandle": HANDLE},
    )
    expect_list(stub, task("RUNNING", 3))
    expect_list(stub, task("CANCELLED", 3))
    assert run(op, token) == "cancelled"


def test_cancelling_a_finished_native_redrive_calls_nothing(stub: Stubber) -> None:
    op = make_op()
    op.claim()
    op.finish(None, Operation.State.SUCCEEDED)
    assert cancel.cancel(op, by="oncall", reason="late").status == cancel.FINISHED


def test_the_soft_time_limit_hands_a_native_move_to_a_fresh_task(monkeypatch) -> None:
    """A move may run 36 hours in SQS, past the task's time limit: the row stays running."""
    from celery.exceptions import Retry, SoftTimeLimitExceeded

    from operations import tasks

    def limit(op: Operation, token: Any, **kwargs: Any) -> str:
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(native_redrive, "run", limit)
    monkeypatch.setattr(tasks.redrive, "retry", lambda countdown: Retry("again", when=countdown))
    op = make_op()
    with pytest.raises(Retry):
        tasks.redrive.run(op.pk)
    op.refresh_from_db()
    assert op.state == "running" and op.error == ""
