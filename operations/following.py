"""Following a job that AWS runs on its own (an archive replay, a message move task).

Only AWS's final state or a person ends such an operation (ARCHITECTURE.md decision
12). A throttled, failed (5xx) or timed-out call, or an AccessDenied that a fixed
policy cures, says nothing about the job, which goes on in AWS: the call is retried
with backoff, the operation's lease is kept alive meanwhile (so no other worker takes
over and the target stays locked), the error is shown in its progress, and the next
successful call reconciles the row with what AWS says.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.utils import timezone

from operations.aws.errors import AwsError
from operations.models import Operation

T = TypeVar("T")

# The longest pause between two attempts (the first is the poll interval, then doubled).
MAX_BACKOFF_SECONDS = 300.0


class OutOfTime(Exception):
    """This task's polling budget ends before the next call: hand over to a fresh task."""


class LeaseLost(Exception):
    """Another worker holds the operation now (this one was too slow to report)."""


def keeps_following(exc: AwsError) -> bool:
    """Whether an error leaves the job's fate open (AWS may still be running it)."""
    return exc.transient or exc.access_denied


@dataclass
class Follower:
    """Paces one worker's calls about one job, and keeps the operation's lease."""

    op: Operation
    token: Any
    lease_seconds: int
    interval: float
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    # When this task must stop polling (``clock`` time); None: no limit.
    deadline: float | None = None
    # Failed attempts in a row.
    failures: int = 0

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()``, retried while it fails with an error that ``keeps_following``.

        Other ``AwsError`` propagate; ``OutOfTime`` and ``LeaseLost`` end the wait."""
        while True:
            try:
                result = fn()
            except AwsError as exc:
                if not keeps_following(exc):
                    raise
                self.failures += 1
                self._show(exc)
                self.wait(self.backoff())
                continue
            self.failures = 0
            return result

    def backoff(self) -> float:
        """The pause after the latest failure: the poll interval, doubled each time."""
        first = max(1.0, self.interval)
        return float(min(MAX_BACKOFF_SECONDS, first * 2 ** max(0, self.failures - 1)))

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, reporting at least three times a lease so the lease holds.

        Returns early once a cancel is requested, so it is acted on at once."""
        if self.deadline is not None and self.clock() + seconds >= self.deadline:
            raise OutOfTime
        cancelled_before = self.op.cancel_requested
        remaining = seconds
        while remaining > 0:
            pause = min(remaining, self.lease_seconds / 3)
            self.sleep(pause)
            remaining -= pause
            if remaining <= 0:
                break
            if not self.op.report(self.token, self.lease_seconds):
                raise LeaseLost
            if self.op.cancel_requested and not cancelled_before:
                return
        # A cancel asked for during the last pause is acted on before the next call.
        self.op.refresh_from_db(fields=["cancel_requested"])

    def _show(self, exc: AwsError) -> None:
        progress = dict(self.op.progress or {})
        progress.update(
            aws_error=str(exc)[:500],
            aws_error_at=timezone.now().isoformat(),
            aws_error_retries=self.failures,
        )
        if not self.op.report(self.token, self.lease_seconds, progress=progress):
            raise LeaseLost
