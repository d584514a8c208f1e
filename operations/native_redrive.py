"""Whole-queue redrive with SQS's own message move task (real AWS only).

Behind ``EVENTOPS_NATIVE_REDRIVE``; the client-side engine (operations/redrive.py)
is the default and the only path on emulators (moto lacks StartMessageMoveTask).
The move task cannot filter or change messages, so it is used only for an
unfiltered, unlimited redrive. Without a destination SQS moves each message
back to its original source queue.

The task runs in SQS whatever happens to the worker that follows it, so only its
final state or a person ends the operation (``operations.following``). A worker
restarted between StartMessageMoveTask and its progress report finds its task with
ListMessageMoveTasks before starting one: SQS allows one active task per queue.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings

from operations import outcomes
from operations.aws import sqs
from operations.aws.errors import AwsError
from operations.following import Follower, LeaseLost, keeps_following
from operations.models import Operation

logger = logging.getLogger(__name__)

FINAL_STATUSES = {
    "COMPLETED": Operation.State.SUCCEEDED,
    "CANCELLED": Operation.State.CANCELLED,
    "FAILED": Operation.State.FAILED,
}
ACTIVE_STATUSES = frozenset({"RUNNING", "CANCELLING"})
# A running task started this long before the operation counts as its own: the worker's
# clock and SQS's may disagree by that much, and a running task would refuse a second one.
CLOCK_SKEW = timedelta(seconds=60)


def poll_seconds() -> float:
    return float(getattr(settings, "EVENTOPS_NATIVE_POLL_SECONDS", 5))


def run(
    op: Operation,
    token: uuid.UUID,
    *,
    lease_seconds: int,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Start (or, after a restart, find and keep following) the move task, report its
    progress, cancel it when asked. Returns the operation's state."""
    source_arn = str(op.parameters.get("dlq_arn") or "")
    follower = Follower(op, token, lease_seconds, poll_seconds(), sleep=sleep)
    try:
        handle = str(op.progress.get("task_handle") or "")
        if not handle:
            handle = follower.call(lambda: _find_or_start(op, source_arn))
            if not handle:
                op.finish(
                    token, Operation.State.CANCELLED, error="Cancelled before the move started."
                )
                return str(op.state)
            op.report(token, lease_seconds=lease_seconds, progress={"task_handle": handle})
        cancel_sent = bool(op.progress.get("cancel_sent"))
        while True:
            if op.cancel_requested and not cancel_sent:
                cancel_sent = send_cancel(op, handle)
            tasks = follower.call(lambda: sqs.list_message_move_tasks(source_arn))
            task = next((t for t in tasks if t.task_handle == handle), None)
            if task is None or task.status in FINAL_STATUSES:
                return _finish(op, token, task)
            fields: dict[str, object] = {
                "moved": task.moved,
                "progress": {
                    "task_handle": handle,
                    "status": task.status,
                    "cancel_sent": cancel_sent,
                },
            }
            if task.to_move is not None:
                fields["total"] = task.to_move
            if not op.report(token, lease_seconds=lease_seconds, **fields):
                return str(op.state)
            follower.wait(poll_seconds())
    except LeaseLost:
        logger.warning("operation %s: lost its lease; another worker follows the move", op.pk)
        return str(op.state)
    except AwsError as exc:
        # Refused for good: StartMessageMoveTask (nothing moves), or the DLQ is gone.
        logger.warning("operation %s: native redrive failed: %s", op.pk, exc)
        op.finish(
            token,
            Operation.State.FAILED,
            error=str(exc),
            outcome={"task": None, "reasons": {str(exc)[:300]: 1}},
        )
        return str(op.state)


def own_task(op: Operation, tasks: list[sqs.MoveTask]) -> sqs.MoveTask | None:
    """This operation's move task among ``tasks`` (ListMessageMoveTasks, newest first):
    one of its DLQ started after the operation was. An active one counts within a
    clock-skew margin (SQS would refuse a second); a finished one only when it started
    strictly after, so an earlier operation's task is never taken for this one's."""
    source_arn = str(op.parameters.get("dlq_arn") or "")
    started = op.started_at
    if started is None:
        return None
    for task in tasks:
        if task.source_arn != source_arn or task.started_at is None:
            continue
        if task.status in ACTIVE_STATUSES and task.started_at >= started - CLOCK_SKEW:
            return task
        if task.started_at >= started:
            return task
    return None


def _find_or_start(op: Operation, source_arn: str) -> str:
    """The handle of this operation's task: found (a restarted worker), else started;
    "" when a cancel came before any started."""
    found = own_task(op, sqs.list_message_move_tasks(source_arn))
    if found is not None:
        logger.info("operation %s: following its move task %s", op.pk, found.task_handle)
        return found.task_handle
    if op.cancel_requested:
        return ""
    rate = op.parameters.get("rate")
    # The API takes whole messages per second (1-500); below 1 the client-side path
    # runs instead (see redrive.use_native), so this never rounds a limit away.
    per_second = max(1, round(float(rate))) if rate else None
    return sqs.start_message_move_task(source_arn, rate=per_second)


def send_cancel(op: Operation, handle: str) -> bool:
    """CancelMessageMoveTask; True once SQS took it or refused it for good (a task that
    is no longer running refuses: the next ListMessageMoveTasks tells its final state),
    False when it should be tried again (a transient error, or AccessDenied)."""
    try:
        sqs.cancel_message_move_task(handle)
    except AwsError as exc:
        logger.info("operation %s: CancelMessageMoveTask %s: %s", op.pk, handle, exc)
        return not keeps_following(exc)
    return True


def final_fields(op: Operation, task: sqs.MoveTask | None) -> tuple[str, str, dict[str, object]]:
    """(state, error, fields) for the end of the move: COMPLETED succeeded, CANCELLED was
    cancelled, FAILED moved some (partial) or none (failed). A task no longer listed
    (SQS lists the 10 most recent) has ended, but how is unknown."""
    if task is None:
        moved, error = op.moved, "SQS no longer lists the move task (it keeps the 10 most recent)"
        state = Operation.State.PARTIAL if moved else Operation.State.FAILED
        unknown: dict[str, object] = {"task": None, "reasons": {"unknown: " + error: 1}}
        return state, error + ": how it ended is unknown.", {"outcome": unknown}
    state = FINAL_STATUSES[task.status]
    reasons: dict[str, int] = {}
    error = ""
    if task.status == "FAILED":
        state = Operation.State.PARTIAL if task.moved else Operation.State.FAILED
        error = task.failure_reason or "The move task failed."
        left = (task.to_move or 0) - task.moved
        reasons = outcomes.group_reasons({f"not moved: {error}": max(1, left)})
    elif task.status == "CANCELLED":
        reasons = outcomes.cancelled_by(op)
    outcome = {"task": _task_dict(task), "reasons": reasons}
    return state, error, {"moved": task.moved, "outcome": outcome}


def _task_dict(task: sqs.MoveTask) -> dict[str, object]:
    data = dict(task.__dict__)
    if isinstance(data.get("started_at"), datetime):
        data["started_at"] = data["started_at"].isoformat()
    return data


def _finish(op: Operation, token: uuid.UUID, task: sqs.MoveTask | None) -> str:
    state, error, fields = final_fields(op, task)
    op.finish(token, state, error=error, **fields)
    return state
