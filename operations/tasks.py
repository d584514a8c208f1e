"""Celery tasks for DLQ operations (redrive, delete, edit-and-resend) and the sweeper.

Each operation task claims its Operation row first (compare-and-set), so a redelivered
or re-enqueued task does nothing twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from operations import dlq_actions, environments, native_redrive, redrive_parts, sweep
from operations import redrive as engine
from operations.models import Operation

logger = logging.getLogger(__name__)


# Idempotent (the row is claimed with compare-and-set, the engine deletes only what
# it sent), so the broker may redeliver it after a worker is killed: acks_late plus
# reject_on_worker_lost. A copy that finds the row leased by a live worker checks
# again once that lease could have expired, which is how a killed run resumes.
#
# The global task time limits (about an hour) are for ordinary tasks. A rate-limited
# redrive of a deep DLQ runs longer, and its lease already tells a live worker from a
# dead one, so it gets a day: at the form's lowest rate (0.1/s) that is 8,640 messages.
REDRIVE_SOFT_TIME_LIMIT = 24 * 3600
REDRIVE_TIME_LIMIT = REDRIVE_SOFT_TIME_LIMIT + 300


@shared_task(
    bind=True,
    name="operations.redrive",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
    soft_time_limit=REDRIVE_SOFT_TIME_LIMIT,
    time_limit=REDRIVE_TIME_LIMIT,
)
@environments.in_operation_environment
def redrive(self: Task, operation_id: int) -> None:
    """Run (or resume) the redrive operation ``operation_id``."""
    op = Operation.objects.filter(pk=operation_id).first()
    if op is None or op.is_finished or redrive_parts.has_parts(op):
        return  # a parent split across workers: its parts' tasks run it
    lease = engine.lease_seconds()
    token = claim_or_retry(self, op, lease)
    if token is None:
        return
    try:
        if op.kind == Operation.Kind.NATIVE_REDRIVE:
            native_redrive.run(op, token, lease_seconds=lease)
        else:
            engine.Redrive(op, token).run()
    except SoftTimeLimitExceeded:
        if op.kind != Operation.Kind.NATIVE_REDRIVE:
            raise
        # The move task goes on in SQS (it may run 36 hours): a fresh task follows it
        # once this one's lease expires; failing the row would unlock a moving DLQ.
        raise self.retry(countdown=lease + 1) from None
    except Exception as exc:
        # Not an AWS error (the engine handles those): record it, re-raise. What the last
        # progress report counted as moved stays moved.
        state = Operation.State.PARTIAL if op.moved else Operation.State.FAILED
        op.finish(token, state, error=f"{type(exc).__name__}: {exc}")
        raise
    logger.info("operation %s finished: %s", op.pk, op.state)


def claim_or_retry(task: Task, op: Operation, lease: int) -> uuid.UUID | None:
    """Claim ``op`` for ``task``. When a live worker holds it, retry once that lease could
    have expired (how a killed run resumes); None when it has finished."""
    token = op.claim(lease)
    if token is None:
        op.refresh_from_db()
        if op.is_active and op.lease_expires_at is not None:
            wait = (op.lease_expires_at - timezone.now()).total_seconds()
            raise task.retry(countdown=max(1, int(wait) + 1))
    return token


@shared_task(
    bind=True,
    name="operations.delete_messages",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
)
@environments.in_operation_environment
def delete_messages(self: Task, operation_id: int) -> None:
    """Run (or resume) the delete operation ``operation_id``: a resumed run deletes only
    what an earlier one did not record as deleted."""
    _run_action(self, operation_id, Operation.Kind.DELETE_MESSAGES, dlq_actions.run_delete)


@shared_task(
    bind=True,
    name="operations.edit_resend",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
)
@environments.in_operation_environment
def edit_resend(self: Task, operation_id: int) -> None:
    """Run (or resume) the edit-and-resend operation ``operation_id``: a resumed run that
    finds the copy sent only deletes the original."""
    _run_action(self, operation_id, Operation.Kind.EDIT_RESEND, dlq_actions.run_edit_resend)


def _run_action(
    task: Task, operation_id: int, kind: str, run: Callable[[Operation, uuid.UUID], str]
) -> None:
    op = Operation.objects.filter(pk=operation_id, kind=kind).first()
    if op is None or op.is_finished:
        return
    token = claim_or_retry(task, op, dlq_actions.LEASE_SECONDS)
    if token is None:
        return
    try:
        state = run(op, token)
    except Exception as exc:
        # Not an AWS error (those end the operation inside): record it, re-raise.
        op.finish(token, Operation.State.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
    logger.info("operation %s finished: %s", op.pk, state)


@shared_task(
    bind=True,
    name="operations.scan",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
)
@environments.in_operation_environment
def scan(self: Task, operation_id: int) -> None:
    """Run (or resume) the DLQ scan ``operation_id``: a resumed run keeps the rows stored
    and reads on (what the dead run held reappears when its visibility timeout ends)."""
    from operations.triage import scan as scanner

    _run_action(self, operation_id, Operation.Kind.SCAN, scanner.run_scan)


@shared_task(name="operations.sweep", ignore_result=True)
def sweep_operations() -> None:
    """Re-enqueue pending operations nobody took, resume running ones whose worker died
    (Celery beat runs it every ``EVENTOPS_SWEEP_SECONDS``)."""
    sweep.run()


@shared_task(name="operations.poll_alarm_history", ignore_result=True)
def poll_alarm_history() -> None:
    """Beat, every minute: alarm changes from DescribeAlarmHistory (without SNS)."""
    from operations import alarm_ingest

    alarm_ingest.poll()


@shared_task(name="operations.purge_idempotency_keys", ignore_result=True)
def purge_idempotency_keys() -> None:
    """Beat, hourly: forget API Idempotency-Keys older than 24 hours."""
    from datetime import timedelta

    from operations.models import IdempotencyKey

    IdempotencyKey.objects.filter(created__lt=timezone.now() - timedelta(hours=24)).delete()
