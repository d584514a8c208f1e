"""Celery tasks for operator actions (redrive). Each claims its Operation row first."""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.utils import timezone

from operations import native_redrive
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
def redrive(self: Task, operation_id: int) -> None:
    """Run (or resume) the redrive operation ``operation_id``."""
    op = Operation.objects.filter(pk=operation_id).first()
    if op is None or op.is_finished:
        return
    lease = engine.lease_seconds()
    token = op.claim(lease)
    if token is None:
        op.refresh_from_db()
        if op.is_active and op.lease_expires_at is not None:
            wait = (op.lease_expires_at - timezone.now()).total_seconds()
            raise self.retry(countdown=max(1, int(wait) + 1))
        return
    try:
        if op.kind == Operation.Kind.NATIVE_REDRIVE:
            native_redrive.run(op, token, lease_seconds=lease)
        else:
            engine.Redrive(op, token).run()
    except Exception as exc:
        # Not an AWS error (the engine handles those): record it, re-raise. What the last
        # progress report counted as moved stays moved.
        state = Operation.State.PARTIAL if op.moved else Operation.State.FAILED
        op.finish(token, state, error=f"{type(exc).__name__}: {exc}")
        raise
    logger.info("operation %s finished: %s", op.pk, op.state)
