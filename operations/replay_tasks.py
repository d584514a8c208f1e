"""Celery tasks for archive replays and re-publishing events.

Both claim their ``Operation`` row first (compare-and-set), so a redelivered
task does nothing twice. A replay is idempotent: its name is fixed when the row
is written, and a StartReplay that finds the name taken means an earlier attempt
started it, so the task just resumes polling.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.utils import timezone

from operations import republish as republish_engine
from operations.aws import events
from operations.aws.errors import AwsError
from operations.models import Operation

logger = logging.getLogger(__name__)

LEASE_SECONDS = 120
FINAL_STATES = {
    "COMPLETED": Operation.State.SUCCEEDED,
    "CANCELLED": Operation.State.CANCELLED,
    "FAILED": Operation.State.FAILED,
}


def poll_seconds() -> float:
    return float(getattr(settings, "EVENTOPS_REPLAY_POLL_SECONDS", 10))


def _claim_or_retry(task: Task, op: Operation) -> Any:
    token = op.claim(LEASE_SECONDS)
    if token is None:
        op.refresh_from_db()
        if op.is_active and op.lease_expires_at is not None:
            wait = (op.lease_expires_at - timezone.now()).total_seconds()
            raise task.retry(countdown=max(1, int(wait) + 1))
    return token


@shared_task(
    bind=True,
    name="operations.replay",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
)
def replay(self: Task, operation_id: int) -> None:
    """Run (or resume) the replay operation ``operation_id``."""
    op = Operation.objects.filter(pk=operation_id, kind=Operation.Kind.REPLAY).first()
    if op is None or op.is_finished:
        return
    token = _claim_or_retry(self, op)
    if token is not None and not run_replay(op, token):
        # Still running after this task's polling budget: hand over to a fresh task,
        # which claims the row once this lease expires and resumes polling.
        raise self.retry(countdown=LEASE_SECONDS + 1)


@shared_task(
    bind=True,
    name="operations.republish",
    ignore_result=True,
    acks_late=False,
    max_retries=None,
)
def republish(self: Task, operation_id: int) -> None:
    """Run the re-publish operation ``operation_id`` (not resumed: PutEvents is not idempotent)."""
    op = Operation.objects.filter(pk=operation_id, kind=Operation.Kind.REPUBLISH).first()
    if op is None or op.is_finished:
        return
    token = op.claim(LEASE_SECONDS)
    if token is not None:
        republish_engine.run(op, token)


def replay_progress(info: events.ReplayInfo, start: datetime, end: datetime) -> dict[str, Any]:
    """DescribeReplay as progress: EventLastReplayedTime across the window."""
    span = (end - start).total_seconds()
    fraction = 0.0
    if info.state == "COMPLETED":
        fraction = 1.0
    elif info.last_replayed is not None and span > 0:
        fraction = min(1.0, max(0.0, (info.last_replayed - start).total_seconds() / span))
    return {
        "replay_name": info.name,
        "started": True,
        "state": info.state,
        "state_reason": info.state_reason,
        "last_replayed": info.last_replayed.isoformat() if info.last_replayed else "",
        "fraction": round(fraction, 4),
        "percent": math.floor(fraction * 100),
    }


def run_replay(
    op: Operation,
    token: Any,
    *,
    sleep: Callable[[float], None] = time.sleep,
    interval: float | None = None,
    max_polls: int | None = None,
) -> bool:
    """Start the replay (unless an earlier attempt did) and poll it to a final state.

    Returns False when the replay is still running after ``max_polls`` polls (the
    row stays running; the caller polls again later), True once the row is final.
    """
    params = op.parameters
    name = str(params["replay_name"])
    start = datetime.fromisoformat(params["start"]).astimezone(UTC)
    end = datetime.fromisoformat(params["end"]).astimezone(UTC)
    interval = poll_seconds() if interval is None else interval
    if max_polls is None:
        budget = float(getattr(settings, "CELERY_TASK_SOFT_TIME_LIMIT", 3300))
        max_polls = max(1, int(budget / max(interval, 0.1)))
    try:
        if not op.progress.get("started"):
            if op.cancel_requested:
                op.finish(token, Operation.State.CANCELLED, error="Cancelled before it started.")
                return True
            _start(op, name, start, end)
            op.report(token, LEASE_SECONDS, progress={"replay_name": name, "started": True})
        return _poll(op, token, name, start, end, sleep, interval, max_polls)
    except AwsError as exc:
        logger.warning("Replay operation %s failed: %s", op.pk, exc)
        op.finish(token, Operation.State.FAILED, error=str(exc))
        return True
    except Exception as exc:
        op.finish(token, Operation.State.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise


def _start(op: Operation, name: str, start: datetime, end: datetime) -> None:
    params = op.parameters
    try:
        events.start_replay(
            name=name,
            archive_arn=params["archive_arn"],
            bus_arn=params["bus_arn"],
            start=start,
            end=end,
            filter_arns=params.get("filter_arns") or [],
            description=f"eventops operation {op.pk}: {op.reason}",
        )
    except AwsError as exc:
        # The name is fixed per operation: it exists only if an earlier attempt of
        # this same operation started it (a worker killed after StartReplay).
        if exc.code != "ResourceAlreadyExistsException":
            raise
        logger.info("Replay %s was already started; resuming", name)


def _poll(
    op: Operation,
    token: Any,
    name: str,
    start: datetime,
    end: datetime,
    sleep: Callable[[float], None],
    interval: float,
    max_polls: int,
) -> bool:
    cancel_sent = bool(op.progress.get("cancel_sent"))
    for attempt in range(max_polls):
        if op.cancel_requested and not cancel_sent:
            try:
                events.cancel_replay(name)
            except AwsError as exc:
                # IllegalStatusException: it already finished; DescribeReplay says how.
                logger.info("CancelReplay %s: %s", name, exc)
            cancel_sent = True
        info = events.describe_replay(name)
        progress = replay_progress(info, start, end) | {"cancel_sent": cancel_sent}
        if info.state in FINAL_STATES:
            op.finish(
                token,
                FINAL_STATES[info.state],
                error=info.state_reason if info.state == "FAILED" else "",
                progress=progress,
                outcome={"replay_name": name, "state": info.state},
            )
            return True
        if not op.report(token, LEASE_SECONDS, progress=progress):
            logger.warning("Replay operation %s lost its lease", op.pk)
            return True
        if attempt < max_polls - 1:
            sleep(interval)
    return False
