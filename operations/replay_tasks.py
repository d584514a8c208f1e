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
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from operations import environments, outcomes
from operations import republish as republish_engine
from operations.aws import events
from operations.aws.errors import AwsError
from operations.following import Follower, LeaseLost, OutOfTime, keeps_following
from operations.models import Operation
from operations.tasks import claim_or_retry

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


@shared_task(
    bind=True,
    name="operations.replay",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
)
@environments.in_operation_environment
def replay(self: Task, operation_id: int) -> None:
    """Run (or resume) the replay operation ``operation_id``."""
    op = Operation.objects.filter(pk=operation_id, kind=Operation.Kind.REPLAY).first()
    if op is None or op.is_finished:
        return
    token = claim_or_retry(self, op, LEASE_SECONDS)
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
@environments.in_operation_environment
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
    running; the caller polls again later), True once the row is final or another
    worker holds it. Transient errors and AccessDenied are retried with backoff while
    the lease is kept (``operations.following``): only EventBridge's final state or a
    person ends the row. ``SoftTimeLimitExceeded`` propagates and leaves the row
    running: the replay goes on in AWS, so failing the row would release the archive
    while it still runs.
    """
    params = op.parameters
    name = str(params["replay_name"])
    start = datetime.fromisoformat(params["start"]).astimezone(UTC)
    end = datetime.fromisoformat(params["end"]).astimezone(UTC)
    interval = poll_seconds() if interval is None else interval
    budget = poll_budget_seconds() if budget_seconds is None else budget_seconds
    follower = Follower(
        op, token, LEASE_SECONDS, interval, sleep=sleep, clock=clock, deadline=clock() + budget
    )
    try:
        if not op.progress.get("started"):
            if not follower.call(lambda: _start_unless_cancelled(op, name, start, end)):
                op.finish(token, Operation.State.CANCELLED, error="Cancelled before it started.")
                return True
            op.report(token, LEASE_SECONDS, progress={"replay_name": name, "started": True})
        return _poll(op, token, name, start, end, follower, max_polls)
    except OutOfTime:
        return False
    except LeaseLost:
        logger.warning("Replay operation %s lost its lease", op.pk)
        return True
    except SoftTimeLimitExceeded:
        raise
    except AwsError as exc:
        # Refused for good: StartReplay (so nothing runs in AWS), or EventBridge no longer
        # knows the replay.
        logger.warning("Replay operation %s failed: %s", op.pk, exc)
        outcome = {"replay_name": name, "reasons": {str(exc)[:300]: 1}}
        op.finish(token, Operation.State.FAILED, error=str(exc), outcome=outcome)
        return True
    except Exception as exc:
        op.finish(token, Operation.State.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise


def _start_unless_cancelled(op: Operation, name: str, start: datetime, end: datetime) -> bool:
    """StartReplay, unless a cancel came first; False when nothing runs in AWS.

    A worker killed right after StartReplay leaves ``started`` unset, so a cancel finds
    out from EventBridge whether the replay exists (the poll then cancels it)."""
    if op.cancel_requested:
        return events.replay_exists(name)
    _start(op, name, start, end)
    return True


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
        # this same operation started it (a worker killed after StartReplay, or a
        # StartReplay that timed out after EventBridge accepted it).
        if exc.code != "ResourceAlreadyExistsException":
            raise
        logger.info("Replay %s was already started; resuming", name)


def send_cancel(name: str) -> bool:
    """CancelReplay; True once EventBridge took it or refused it for good (a replay that
    already finished refuses: DescribeReplay then tells how it ended), False when it
    should be tried again (a transient error, or AccessDenied)."""
    try:
        events.cancel_replay(name)
    except AwsError as exc:
        logger.info("CancelReplay %s: %s", name, exc)
        return not keeps_following(exc)
    return True


def _poll(
    op: Operation,
    token: Any,
    name: str,
    start: datetime,
    end: datetime,
    follower: Follower,
    max_polls: int | None,
) -> bool:
    cancel_sent = bool(op.progress.get("cancel_sent"))
    polls = 0
    while True:
        if op.cancel_requested and not cancel_sent:
            cancel_sent = send_cancel(name)
        info = follower.call(lambda: events.describe_replay(name))
        polls += 1
        progress = replay_progress(info, start, end) | {"cancel_sent": cancel_sent}
        if info.state in FINAL_STATES:
            op.finish(
                token,
                FINAL_STATES[info.state],
                error=info.state_reason if info.state == "FAILED" else "",
                progress=progress,
                outcome=replay_outcome(op, info),
            )
            return True
        if not op.report(token, LEASE_SECONDS, progress=progress):
            raise LeaseLost
        if max_polls is not None and polls >= max_polls:
            return False
        follower.wait(follower.interval)


def replay_outcome(op: Operation, info: events.ReplayInfo) -> dict[str, Any]:
    """What the row keeps of the replay's end: EventBridge's state and, if it did not
    complete, why (grouped like every operation's reasons)."""
    outcome: dict[str, Any] = {"replay_name": info.name or op.parameters.get("replay_name")}
    outcome["state"] = info.state
    if info.state == "FAILED":
        outcome["reasons"] = {f"replay failed: {info.state_reason or 'no reason given'}": 1}
    elif info.state == "CANCELLED":
        outcome["reasons"] = outcomes.cancelled_by(op)
    elif op.cancel_requested:
        outcome["note"] = "A cancel was requested, but the replay completed first."
    return outcome
