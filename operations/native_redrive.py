"""Whole-queue redrive with SQS's own message move task (real AWS only).

Behind ``EVENTOPS_NATIVE_REDRIVE``; the client-side engine (operations/redrive.py)
is the default and the only path on emulators (moto lacks StartMessageMoveTask).
The move task cannot filter or change messages, so it is used only for an
unfiltered, unlimited redrive. Without a destination SQS moves each message
back to its original source queue.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from django.conf import settings

from operations.aws import sqs
from operations.aws.errors import AwsError
from operations.models import Operation

logger = logging.getLogger(__name__)

FINAL_STATUSES = {"COMPLETED": "succeeded", "CANCELLED": "cancelled", "FAILED": "failed"}


def poll_seconds() -> float:
    return float(getattr(settings, "EVENTOPS_NATIVE_POLL_SECONDS", 5))


def run(
    op: Operation,
    token: uuid.UUID,
    *,
    lease_seconds: int,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Start (or, after a restart, keep following) the move task, report its progress,
    cancel it when asked. Returns the final state."""
    source_arn = str(op.parameters.get("dlq_arn") or "")
    try:
        handle = str(op.progress.get("task_handle") or "")
        if not handle:
            rate = op.parameters.get("rate")
            # The API takes whole messages per second (1-500); below 1 the client-side path
            # runs instead (see redrive.use_native), so this never rounds a limit away.
            per_second = max(1, round(float(rate))) if rate else None
            handle = sqs.start_message_move_task(source_arn, rate=per_second)
            op.report(token, lease_seconds=lease_seconds, progress={"task_handle": handle})
        cancel_sent = False
        while True:
            task = next(
                (t for t in sqs.list_message_move_tasks(source_arn) if t.task_handle == handle),
                None,
            )
            if task is None:
                return _finish(op, token, "failed", "The move task is no longer listed.", None)
            if task.status in FINAL_STATUSES:
                return _finish(op, token, FINAL_STATUSES[task.status], task.failure_reason, task)
            fields: dict[str, object] = {
                "moved": task.moved,
                "progress": {"task_handle": handle, "status": task.status},
            }
            if task.to_move is not None:
                fields["total"] = task.to_move
            if not op.report(token, lease_seconds=lease_seconds, **fields):
                return str(op.state)
            if op.cancel_requested and task.status == "RUNNING" and not cancel_sent:
                cancel_task(op, handle)
                cancel_sent = True
            sleep(poll_seconds())
    except AwsError as exc:
        logger.warning("operation %s: native redrive failed: %s", op.pk, exc)
        return _finish(op, token, "failed", str(exc), None)


def cancel_task(op: Operation, handle: str) -> None:
    """CancelMessageMoveTask; a task already cancelling or finished refuses it, harmlessly:
    the next ListMessageMoveTasks tells its final state."""
    try:
        sqs.cancel_message_move_task(handle)
    except AwsError as exc:
        logger.info("operation %s: CancelMessageMoveTask %s: %s", op.pk, handle, exc)


def cancel_operation(op: Operation) -> bool:
    """Ask a native redrive to stop: flag the row, and cancel its move task in SQS at once.

    The task also cancels when it sees the flag; doing it here too stops the move when no
    worker follows the task any more. Such a row (its lease lapsed) is ended at once by
    ``request_cancel``, and nothing else would ever stop the move task in SQS."""
    if op.kind != Operation.Kind.NATIVE_REDRIVE:
        return False
    op.refresh_from_db()
    was_running = op.state == Operation.State.RUNNING
    handle = str(op.progress.get("task_handle") or "")
    if not op.request_cancel():
        return False
    if was_running and handle:
        cancel_task(op, handle)
    return True


def _finish(
    op: Operation, token: uuid.UUID, state: str, error: str, task: sqs.MoveTask | None
) -> str:
    fields: dict[str, object] = {"outcome": {"task": task.__dict__ if task else None}}
    if task is not None:
        fields["moved"] = task.moved
    op.finish(token, state, error=error, **fields)
    return state
