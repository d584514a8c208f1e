"""Handing an Operation to the worker: one path for every start and for the sweeper.

A start writes the row first (its own transaction), then sends the task. When the
broker cannot take it, the row must not stay pending: that would lock its target for
good. ``enqueue`` then marks the row failed ("the task queue is unreachable") and
raises ``QueueUnavailable``, which the pages turn into a clear 503.

Inside a transaction (a caller's ``atomic`` block) the row is not visible to a worker
until commit, so the task is sent on commit instead; a failure there can only be
logged, and the row is marked failed all the same.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from celery import Task
from django.db import transaction
from django.utils import timezone

from operations.models import Operation
from operations.operation_events import ended

logger = logging.getLogger(__name__)

UNREACHABLE = "The task queue is unreachable"
# Publishing retries a refused connection briefly, so a page answers within seconds
# when the broker is down (kombu's default would retry for longer).
RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}


class QueueUnavailable(Exception):
    """The operation's task could not be sent to the broker; its row was marked failed."""

    def __init__(self, operation_id: int, cause: BaseException) -> None:
        super().__init__(f"{UNREACHABLE} ({type(cause).__name__}: {cause})")
        self.operation_id = operation_id


def task_for(kind: str) -> Task:
    """The Celery task that runs (or resumes) an operation of this kind."""
    from operations import replay_tasks, tasks

    by_kind: dict[str, Any] = {
        Operation.Kind.REDRIVE: tasks.redrive,
        Operation.Kind.NATIVE_REDRIVE: tasks.redrive,
        Operation.Kind.DELETE_MESSAGES: tasks.delete_messages,
        Operation.Kind.EDIT_RESEND: tasks.edit_resend,
        Operation.Kind.REPLAY: replay_tasks.replay,
        Operation.Kind.REPUBLISH: replay_tasks.republish,
        Operation.Kind.SCAN: tasks.scan,
    }
    return by_kind[kind]


def enqueue(op: Operation) -> None:
    """Send ``op``'s task once its row is committed.

    Raises ``QueueUnavailable`` (the row now failed) when the broker refuses it."""
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: _send_or_log(op), robust=True)
        return
    _send(op)


def send(op: Operation, **options: Any) -> bool:
    """Send ``op``'s task again (the sweeper). False, logged, when the broker refuses it:
    the row is left as it is for the next sweep."""
    try:
        task_for(op.kind).apply_async((op.pk,), retry_policy=RETRY_POLICY, **options)
    except Exception:
        logger.warning("operation %s: could not enqueue its task", op.pk, exc_info=True)
        return False
    return True


def _send(op: Operation) -> None:
    try:
        task_for(op.kind).apply_async((op.pk,), retry_policy=RETRY_POLICY)
    except Exception as exc:
        logger.error("operation %s: could not enqueue its task: %s", op.pk, exc)
        _mark_unreachable(op, exc)
        raise QueueUnavailable(op.pk, exc) from exc


def _send_or_log(op: Operation) -> None:
    # Logged, and the row marked failed: nobody is left to tell.
    with contextlib.suppress(QueueUnavailable):
        _send(op)


def _mark_unreachable(op: Operation, exc: BaseException) -> None:
    """Fail the row if no worker took it (it is still pending): nothing ran."""
    now = timezone.now()
    error = f"{UNREACHABLE}: the operation was not started ({type(exc).__name__}: {exc})"
    if Operation.objects.filter(pk=op.pk, state=Operation.State.PENDING).update(
        state=Operation.State.FAILED, error=error[:10_000], finished_at=now, updated_at=now
    ):
        ended(op.pk)
        op.part_ended()
    op.refresh_from_db()
