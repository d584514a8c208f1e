"""Native redrive (StartMessageMoveTask): moto lacks it, so botocore's Stubber asserts
the exact requests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from botocore.stub import Stubber
from django.utils import timezone

from operations import dlq, native_redrive
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


def task(status: str, moved: int, **extra: Any) -> dict[str, Any]:
    return {
        "TaskHandle": HANDLE,
        "Status": status,
        "SourceArn": DLQ_ARN,
        "ApproximateNumberOfMessagesMoved": moved,
        **extra,
    }


def expect_list(stub: Stubber, *tasks: dict[str, Any]) -> None:
    stub.add_response(
        "list_message_move_tasks",
        {"Results": list(tasks)},
        {"SourceArn": DLQ_ARN, "MaxResults": 10},
    )


def run(op: Operation) -> str:
    token = op.claim()
    assert token is not None
    return native_redrive.run(op, token, lease_seconds=60, sleep=lambda s: None)


def test_native_redrive_starts_polls_and_succeeds(stub: Stubber) -> None:
    stub.add_response(
        "start_message_move_task",
        {"TaskHandle": HANDLE},
        {"SourceArn": DLQ_ARN, "MaxNumberOfMessagesPerSecond": 50},
    )
    expect_list(stub, task("RUNNING", 10, ApproximateNumberOfMessagesToMove=30))
    expect_list(stub, task("COMPLETED", 30, ApproximateNumberOfMessagesToMove=30))
    op = make_op(rate=50)
    assert run(op) == "succeeded"
    op.refresh_from_db()
    assert (op.moved, op.total, op.progress["task_handle"]) == (30, 30, HANDLE)


def test_native_redrive_cancels_the_move_task_when_asked(stub: Stubber) -> None:
    stub.add_response("start_message_move_task", {"TaskHandle": HANDLE}, {"SourceArn": DLQ_ARN})
    expect_list(stub, task("RUNNING", 5))
    stub.add_response(
        "cancel_message_move_task", {"ApproximateNumberOfMessagesMoved": 5}, {"TaskHandle": HANDLE}
    )
    expect_list(stub, task("CANCELLED", 5))
    op = make_op()
    Operation.objects.filter(pk=op.pk).update(cancel_requested=True)
    assert run(op) == "cancelled"
    op.refresh_from_db()
    assert (op.state, op.moved) == ("cancelled", 5)


def test_resumed_native_redrive_follows_the_existing_task(stub: Stubber) -> None:
    expect_list(stub, task("COMPLETED", 7))
    op = make_op()
    Operation.objects.filter(pk=op.pk).update(progress={"task_handle": HANDLE})
    op.refresh_from_db()
    assert run(op) == "succeeded"


def test_failed_move_task_fails_the_operation_with_its_reason(stub: Stubber) -> None:
    stub.add_response("start_message_move_task", {"TaskHandle": HANDLE}, {"SourceArn": DLQ_ARN})
    expect_list(stub, task("FAILED", 0, FailureReason="AccessDenied on destination"))
    op = make_op()
    run(op)
    op.refresh_from_db()
    assert (op.state, op.error) == ("failed", "AccessDenied on destination")


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


def test_a_fractional_rate_is_rounded_never_dropped(stub: Stubber) -> None:
    stub.add_response(
        "start_message_move_task",
        {"TaskHandle": HANDLE},
        {"SourceArn": DLQ_ARN, "MaxNumberOfMessagesPerSecond": 2},
    )
    expect_list(stub, task("COMPLETED", 3, ApproximateNumberOfMessagesToMove=3))
    assert run(make_op(rate=1.6)) == "succeeded"


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


def test_cancelling_an_abandoned_native_redrive_cancels_its_move_task(stub: Stubber) -> None:
    """Its worker died: the row ends at once, and the move task must not run on in SQS."""
    op = make_op()
    op.claim()
    Operation.objects.filter(pk=op.pk).update(
        progress={"task_handle": HANDLE}, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    stub.add_response(
        "cancel_message_move_task", {"ApproximateNumberOfMessagesMoved": 3}, {"TaskHandle": HANDLE}
    )
    assert native_redrive.cancel_operation(op)
    op.refresh_from_db()
    assert (op.state, op.cancel_requested) == ("cancelled", True)


def test_cancelling_a_live_native_redrive_cancels_at_once_and_the_worker_copes(
    stub: Stubber,
) -> None:
    """The view cancels the move task at once; the worker, seeing the flag while SQS still
    lists the task as RUNNING, cancels again, is refused, and follows it to CANCELLED."""
    op = make_op()
    token = op.claim()
    assert token is not None
    Operation.objects.filter(pk=op.pk).update(progress={"task_handle": HANDLE})
    stub.add_response(
        "cancel_message_move_task", {"ApproximateNumberOfMessagesMoved": 3}, {"TaskHandle": HANDLE}
    )
    assert native_redrive.cancel_operation(op)
    assert (op.state, op.cancel_requested) == ("running", True)
    expect_list(stub, task("RUNNING", 3))
    stub.add_client_error(
        "cancel_message_move_task",
        service_error_code="ResourceNotFoundException",
        http_status_code=400,
        expected_params={"TaskHandle": HANDLE},
    )
    expect_list(stub, task("CANCELLED", 3))
    assert native_redrive.run(op, token, lease_seconds=60, sleep=lambda s: None) == "cancelled"


def test_cancelling_a_finished_native_redrive_calls_nothing(stub: Stubber) -> None:
    op = make_op()
    op.claim()
    op.finish(None, Operation.State.SUCCEEDED)
    assert not native_redrive.cancel_operation(op)
