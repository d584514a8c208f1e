"""The sweeper: no operation stays stuck (ARCHITECTURE.md decision 12).

Celery beat runs it every ``EVENTOPS_SWEEP_SECONDS``; ``manage.py operations sweep``
runs it once (for cron, where beat does not run).

- A pending operation untouched for a minute was never taken by a worker (the task
  was lost, or a worker refused it): its task is enqueued again.
- A redrive split across workers whose parts all ended is ended (the worker that ended
  the last part died before it could).
- A running operation whose lease expired has lost its worker: its task is enqueued
  again, and claims the row and resumes it as its kind does (a redrive goes on with its
  pass, a replay or move task is followed again, a re-publish sends what it never tried,
  a delete deletes what is left, an edit deletes the original once its copy was sent).

Tasks claim their row with compare-and-set, so a copy that finds the row taken does
nothing twice. The copies sent here expire unstarted after a few sweeps, so a busy
worker's queue does not fill up with them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from operations import enqueue, redrive_parts
from operations.models import Operation

logger = logging.getLogger(__name__)

# A pending row is left alone this long after it was written (or last re-enqueued).
PENDING_GRACE = timedelta(minutes=1)
# Rows looked at per sweep; the next sweep takes the rest.
BATCH = 100
# A copy the sweeper sends expires unstarted after this many sweeps.
EXPIRES_AFTER_SWEEPS = 5


def sweep_seconds() -> int:
    """How often beat runs the sweeper (EVENTOPS_SWEEP_SECONDS)."""
    return int(getattr(settings, "EVENTOPS_SWEEP_SECONDS", 60))


@dataclass
class SweepReport:
    requeued: list[int] = field(default_factory=list)
    resumed: list[int] = field(default_factory=list)
    # Operations whose task the broker refused (tried again on the next sweep).
    unsent: list[int] = field(default_factory=list)
    # Parents of parts (redrive_parts) ended because all their parts had.
    finished: list[int] = field(default_factory=list)


def run(*, now: datetime | None = None) -> SweepReport:
    """Re-enqueue stale pending operations and resume abandoned running ones."""
    now = now or timezone.now()
    report = SweepReport()
    expires = EXPIRES_AFTER_SWEEPS * sweep_seconds()
    pending = Operation.objects.filter(
        state=Operation.State.PENDING, updated_at__lt=now - PENDING_GRACE
    ).order_by("pk")[:BATCH]
    for op in pending:
        if not enqueue.send(op, expires=expires):
            report.unsent.append(op.pk)
            continue
        # Touched, so the next sweep leaves it alone for another minute.
        Operation.objects.filter(pk=op.pk, state=Operation.State.PENDING).update(updated_at=now)
        report.requeued.append(op.pk)
    abandoned = Operation.objects.filter(
        state=Operation.State.RUNNING, lease_expires_at__lt=now
    ).order_by("pk")[:BATCH]
    for op in abandoned:
        if enqueue.send(op, expires=expires):
            report.resumed.append(op.pk)
        else:
            report.unsent.append(op.pk)
    # A redrive split across workers whose last part ended without ending it.
    for parent_id in redrive_parts.stuck_parents()[:BATCH]:
        if redrive_parts.finish_parent(parent_id):
            report.finished.append(parent_id)
    if report.requeued or report.resumed or report.unsent:
        logger.info(
            "sweep: re-enqueued pending %s, resumed %s, could not enqueue %s",
            report.requeued,
            report.resumed,
            report.unsent,
        )
    return report
