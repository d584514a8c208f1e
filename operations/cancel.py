"""Cancelling an operation: who asked, when and why, and what AWS said.

A cancel is a request (ARCHITECTURE.md decision 4): the task stops between batches.
A replay or a move task runs in AWS, so its operation stays running (its target
locked), showing "cancel requested by X at T: why", until AWS confirms. A row whose
worker stopped reporting (lease expired) is ended here, but only once AWS's cancel call
succeeded or nothing ran in AWS; otherwise it says why it could not and stays.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.utils import timezone

from operations import native_redrive, redrive_parts
from operations.aws import events, sqs
from operations.aws.errors import AwsError
from operations.models import Operation
from operations.replay_tasks import FINAL_STATES as REPLAY_FINAL_STATES
from operations.replay_tasks import replay_outcome

logger = logging.getLogger(__name__)

# What became of a cancel request.
ENDED = "ended"  # the operation ended (cancelled, or AWS had already finished it)
REQUESTED = "requested"  # the task (or AWS) stops it; the page follows
FINISHED = "finished"  # it had already finished: nothing changed
REFUSED = "refused"  # AWS refused the cancel of an abandoned row, which stays (says why)


@dataclass(frozen=True)
class CancelResult:
    status: str
    message: str


def cancel(op: Operation, *, by: str, reason: str = "") -> CancelResult:
    """Ask ``op`` to stop, on behalf of ``by`` (a user name, or ``cli:<user>``)."""
    op.refresh_from_db()
    if op.parent is not None:
        op = op.parent  # a part of a redrive split across workers: stop all of it
    if op.is_finished:
        return _finished(op)
    if redrive_parts.has_parts(op):
        return _cancel_parts(op, by, reason)
    if op.kind == Operation.Kind.REPLAY:
        return _cancel_replay(op, by, reason)
    if op.kind == Operation.Kind.NATIVE_REDRIVE:
        return _cancel_move_task(op, by, reason)
    if not op.request_cancel(by=by, reason=reason):
        return _finished(op)
    if op.is_finished:
        return CancelResult(ENDED, f"Operation #{op.pk} was cancelled.")
    return CancelResult(REQUESTED, "Cancellation requested: it stops after the current batch.")


def _cancel_parts(op: Operation, by: str, reason: str) -> CancelResult:
    """A redrive split across workers: every part stops after its current batch."""
    op.request_cancel(by=by, reason=reason)
    redrive_parts.request_cancel(op, by=by, reason=reason)
    op.refresh_from_db()
    if op.is_finished:
        return CancelResult(ENDED, f"Operation #{op.pk} was cancelled.")
    return CancelResult(
        REQUESTED, "Cancellation requested: every worker stops after its current batch."
    )


def _finished(op: Operation) -> CancelResult:
    return CancelResult(FINISHED, f"Operation #{op.pk} had already finished ({op.state}).")


def _refused(op: Operation, what: str, exc: AwsError) -> CancelResult:
    """AWS refused to cancel an abandoned row's job: the row stays, and says why."""
    error = (
        f"Cancel requested, but {what} failed ({exc}): it may still run in AWS, so the "
        "operation stays running. Try again, or stop it in AWS."
    )
    Operation.objects.filter(pk=op.pk, state=Operation.State.RUNNING).update(
        error=error, updated_at=timezone.now()
    )
    op.refresh_from_db()
    return CancelResult(REFUSED, error)


def _flag(op: Operation, by: str, reason: str) -> CancelResult | None:
    """Record the request on a job that may run in AWS; a result when that settled it
    (it had finished, or was pending and so never started anything)."""
    if not op.request_cancel(by=by, reason=reason, end_abandoned=False):
        return _finished(op)
    if op.is_finished:
        return CancelResult(ENDED, f"Operation #{op.pk} was cancelled before it started.")
    return None


def _cancel_replay(op: Operation, by: str, reason: str) -> CancelResult:
    abandoned = op.is_abandoned
    settled = _flag(op, by, reason)
    if settled is not None:
        return settled
    name = str(op.parameters.get("replay_name") or "")
    try:
        events.cancel_replay(name)
    except AwsError as exc:
        logger.info("CancelReplay %s: %s", name, exc)
        if exc.not_found:  # never started in EventBridge
            if abandoned and op.end_if_abandoned(
                Operation.State.CANCELLED, error="Cancelled: the replay never started."
            ):
                return CancelResult(ENDED, "Cancelled: the replay had not started in AWS.")
            return CancelResult(REQUESTED, "Cancellation requested: the replay will not start.")
        if abandoned and exc.code == "IllegalStatusException":
            return _replay_already_ending(op, name, exc)
        if abandoned:
            return _refused(op, "CancelReplay", exc)
        return CancelResult(
            REQUESTED,
            f"Cancellation requested; CancelReplay failed for now ({exc}): the worker retries.",
        )
    if abandoned and op.end_if_abandoned(
        Operation.State.CANCELLED,
        error=f"Cancelled after its worker stopped: EventBridge is cancelling replay {name}.",
    ):
        return CancelResult(ENDED, "Cancelled: EventBridge is cancelling the replay.")
    return CancelResult(
        REQUESTED,
        "Cancellation requested: EventBridge is cancelling the replay; the operation ends "
        "when it confirms.",
    )


def _replay_already_ending(op: Operation, name: str, refusal: AwsError) -> CancelResult:
    """An abandoned replay that EventBridge would not cancel: it is already cancelling or
    finished. A finished one ends the row with EventBridge's own final state."""
    try:
        info = events.describe_replay(name)
    except AwsError as exc:
        return _refused(op, "CancelReplay", exc)
    if info.state == "CANCELLING":
        info_state = "CANCELLED"
    elif info.state in REPLAY_FINAL_STATES:
        info_state = info.state
    else:
        return _refused(op, "CancelReplay", refusal)
    state = REPLAY_FINAL_STATES[info_state]
    error = info.state_reason if info_state == "FAILED" else ""
    op.end_if_abandoned(state, error=error, outcome=replay_outcome(op, info))
    return CancelResult(ENDED, f"EventBridge had already ended the replay ({info.state}).")


def _cancel_move_task(op: Operation, by: str, reason: str) -> CancelResult:
    abandoned = op.is_abandoned
    settled = _flag(op, by, reason)
    if settled is not None:
        return settled
    handle = str(op.progress.get("task_handle") or "")
    source_arn = str(op.parameters.get("dlq_arn") or "")
    try:
        if not handle:
            # A worker killed right after StartMessageMoveTask never saved the handle.
            task = native_redrive.own_task(op, sqs.list_message_move_tasks(source_arn))
            if task is None:
                if abandoned and op.end_if_abandoned(
                    Operation.State.CANCELLED, error="Cancelled: no move task had started."
                ):
                    return CancelResult(ENDED, "Cancelled: no move task had started in SQS.")
                return CancelResult(REQUESTED, "Cancellation requested: no move task will start.")
            handle = task.task_handle
        moved = sqs.cancel_message_move_task(handle)
    except AwsError as exc:
        logger.info("operation %s: cancel of move task %s: %s", op.pk, handle, exc)
        if abandoned:
            return _move_task_not_cancelled(op, source_arn, handle, exc)
        return CancelResult(
            REQUESTED,
            f"Cancellation requested; SQS refused the cancel for now ({exc}): the worker retries.",
        )
    if abandoned and op.end_if_abandoned(
        Operation.State.CANCELLED,
        error="Cancelled after its worker stopped: SQS is cancelling the move task.",
        moved=max(op.moved, moved),
    ):
        return CancelResult(ENDED, "Cancelled: SQS is cancelling the move task.")
    return CancelResult(
        REQUESTED,
        "Cancellation requested: SQS is cancelling the move task; the operation ends when "
        "it confirms.",
    )


def _move_task_not_cancelled(
    op: Operation, source_arn: str, handle: str, refusal: AwsError
) -> CancelResult:
    """SQS would not cancel an abandoned row's task: it may have finished (then the row
    ends with SQS's own final state) or the call failed (the row stays, and says why)."""
    try:
        tasks = sqs.list_message_move_tasks(source_arn)
    except AwsError as exc:
        return _refused(op, "CancelMessageMoveTask", exc)
    task = next((t for t in tasks if t.task_handle == handle), None)
    if task is not None and task.status == "CANCELLING":
        op.end_if_abandoned(Operation.State.CANCELLED, error="SQS is cancelling the move task.")
        return CancelResult(ENDED, "Cancelled: SQS was already cancelling the move task.")
    if task is None or task.status in native_redrive.FINAL_STATUSES:
        state, error, fields = native_redrive.final_fields(op, task)
        op.end_if_abandoned(state, error=error, **fields)
        return CancelResult(ENDED, f"SQS had already ended the move task ({state}).")
    return _refused(op, "CancelMessageMoveTask", refusal)
