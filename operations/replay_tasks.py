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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.utils import timezone

from operations import republish as republish_engine
from operations.aws import events
from operations.aws.errors import AwsError
from operations.models import Operation

logger = logging.getLogger(__name__)

LEASE_SECONDS = 120
# A task polls for this share of the soft time limit, then hands over to a fresh task.
# The rest is margin for the last DescribeReplay and report: the soft limit must never be
# what ends a poll, as the replay goes on in AWS whatever happens to the task.
POLL_BUDGET_SHARE = 0.8
FINAL_STATES = {
    "COMPLETED": Operation.State.SUCCEEDED,
    "CANCELLED": Operation.State.CANCELLED,
    "FAILED": Operation.State.FAILED,
}


def poll_seconds() -> float:
    return float(getattr(settings, "EVENTOPS_REPLAY_POLL_SECONDS", 10))


def poll_budget_seconds() -> float:
    """How long one task polls: ``POLL_BUDGET_SHARE`` of the soft time limit."""
    soft_limit = float(getattr(settings, "CELERY_TASK_SOFT_TIME_LIMIT", 3300))
    return POLL_BUDGET_SHARE * soft_limit


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
    if token is None:
        return
    try:
        finished = run_replay(op, token)
    except SoftTimeLimitExceeded:
        # The deadline should end polling first; if the limit still hit (a slow call),
        # the replay goes on in AWS, so the row stays running and a fresh task resumes.
        logger.warning("Replay operation %s hit the soft time limit; resuming later", op.pk)
        finished = False
    if not finished:
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
    budget_seconds: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Start the replay (unless an earlier attempt did) and poll it to a final state.

    Polls until ``budget_seconds`` (default ``poll_budget_seconds()``) have passed,
    measured with ``clock`` and counting the calls themselves, or ``max_polls`` polls
    were made. Returns False when the replay is still running then (the row stays
    running; the caller polls again later), True once the row is final.
    ``SoftTimeLimitExceeded`` propagates and leaves the row running: the replay goes
    on in AWS, so failing the row would release the archive while it still runs.
    """
    params = op.parameters
    name = str(params["replay_name"])
    start = datetime.fromisoformat(params["start"]).astimezone(UTC)
    end = datetime.fromisoformat(params["end"]).astimezone(UTC)
    interval = poll_seconds() if interval is None else interval
    budget = poll_budget_seconds() if budget_seconds is None else budget_seconds
    deadline = clock() + budget
    try:
        if not op.progress.get("started"):
            if op.cancel_requested:
                op.finish(token, Operation.State.CANCELLED, error="Cancelled before it started.")
                return True
            _start(op, name, start, end)
            op.report(token, LEASE_SECONDS, progress={"replay_name": name, "started": True})
        return _poll(
            op, token, name, start, end, _Pacing(sleep, interval, max_polls, deadline, clock)
        )
    except SoftTimeLimitExceeded:
        raise
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


@dataclass(frozen=True)
class _Pacing:
    sleep: Callable[[float], None]
    interval: float
    max_polls: int | None
    deadline: float
    clock: Callable[[], float]

    def another_poll(self, polls_done: int) -> bool:
        """Whether to sleep and poll again: within the poll count and, after the sleep,
        still before the deadline."""
        if self.max_polls is not None and polls_done >= self.max_polls:
            return False
        return self.clock() + self.interval < self.deadline


def _poll(
    op: Operation,
    token: Any,
    name: str,
    start: datetime,
    end: datetime,
    pacing: _Pacing,
) -> bool:
    cancel_sent = bool(op.progress.get("cancel_sent"))
    polls = 0
    while True:
        if op.cancel_requested and not cancel_sent:
            try:
                events.cancel_replay(name)
            except AwsError as exc:
                # IllegalStatusException: it already finished; DescribeReplay says how.
                logger.info("CancelReplay %s: %s", name, exc)
            cancel_sent = True
        info = events.describe_replay(name)
        polls += 1
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
        if not pacing.another_poll(polls):
            return False
        pacing.sleep(pacing.interval)
