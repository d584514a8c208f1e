"""A redrive's rate limit: one pacer shared by all its pipelines, changeable while it runs.

``Pacer`` schedules sends so that the operation stays under ``rate`` messages per second
whichever pipeline sends (a virtual clock: each batch books ``len / rate`` seconds after
the previous booking). An operator lowers (or raises, or lifts) the rate of a running
redrive with ``set_rate``: it is written in ``Operation.parameters`` with who changed it
and when, and the run reads it back at most once a second.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

from operations import redrive_parts
from operations.models import Operation

# The highest rate an operator may set (what the forms and the command accept).
MAX_RATE = 500.0
# Rate changes kept in the parameters (the audit log keeps all of them too).
RATE_CHANGES_KEPT = 50
# Seconds of history behind the live rate shown on the progress page.
LIVE_WINDOW = 10.0


class RateError(ValueError):
    """A rate that is not a positive number of messages per second up to ``MAX_RATE``."""


class Pacer:
    """Thread-safe pacing of sends at ``rate`` messages per second (None: no limit)."""

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        self._lock = threading.Lock()
        self._next = clock()

    def set_rate(self, rate: float | None) -> None:
        with self._lock:
            if rate != self.rate:
                # Bookings made at the old rate stand; new ones start from now at the new one.
                self._next = min(self._next, self.clock())
                self.rate = rate

    def book(self, messages: int, *, before: bool) -> float:
        """Book ``messages`` and return how long to wait: before sending them (``before``,
        pipelines), or after they were sent (one loop, which pays for what it sent)."""
        with self._lock:
            if not self.rate or messages <= 0:
                return 0.0
            now = self.clock()
            start = max(now, self._next)
            self._next = start + messages / float(self.rate)
            return (start if before else self._next) - now

    def wait(self, messages: int, stop: threading.Event) -> bool:
        """Wait for the right to send ``messages`` (in a pipeline thread); False if ``stop``
        was set meanwhile (cancel, lost lease: checked at least every 0.2 s)."""
        pause = self.book(messages, before=True)
        deadline = time.monotonic() + pause
        while pause > 0:
            if stop.wait(min(pause, 0.2)):
                return False
            pause = deadline - time.monotonic()
        return not stop.is_set()


class LiveRate:
    """Messages moved per second over the last ``LIVE_WINDOW`` seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._samples: deque[tuple[float, int]] = deque()

    def update(self, moved: int) -> float:
        now = self.clock()
        self._samples.append((now, moved))
        while len(self._samples) > 2 and now - self._samples[1][0] >= LIVE_WINDOW:
            self._samples.popleft()
        first_at, first = self._samples[0]
        elapsed = now - first_at
        return round((moved - first) / elapsed, 1) if elapsed > 0 else 0.0


def parse_rate(value: Any) -> float | None:
    """An operator's rate: a number in (0, MAX_RATE], or "" / "none" / 0 for no limit."""
    if value is None or str(value).strip().lower() in ("", "none", "0"):
        return None
    try:
        rate = float(value)
    except (TypeError, ValueError) as exc:
        raise RateError(f"{value!r} is not a number of messages per second") from exc
    if not 0 < rate <= MAX_RATE:
        raise RateError(f"the rate must be between 0 and {MAX_RATE:g} messages per second")
    return rate


def set_rate(op_id: int, rate: float | None, *, by: str) -> bool:
    """Change the rate limit of a running or pending redrive (None lifts it); the run
    applies it within a second. Recorded in ``parameters["rate_changes"]`` (who, when,
    from, to). False if the operation is not an active client-side redrive."""
    with transaction.atomic():
        op = (
            Operation.objects.select_for_update()
            .filter(
                pk=op_id,
                kind=Operation.Kind.REDRIVE,
                state__in=Operation.ACTIVE_STATES,
                parent__isnull=True,  # a part's rate is its parent's share
            )
            .first()
        )
        if op is None:
            return False
        parameters = dict(op.parameters or {})
        changes = list(parameters.get("rate_changes") or [])
        changes.append(
            {"at": timezone.now().isoformat(), "by": by, "from": parameters.get("rate"), "to": rate}
        )
        parameters["rate"] = rate
        parameters["rate_changes"] = changes[-RATE_CHANGES_KEPT:]
        Operation.objects.filter(pk=op.pk).update(parameters=parameters)
        if redrive_parts.has_parts(op):
            redrive_parts.set_parts_rate(op, rate)
    return True


def current_parameters(op_id: int) -> dict[str, Any]:
    """The parameters stored for the operation now: an operator may have changed its rate,
    and a part of a split redrive may have been given more of ``max_messages``."""
    parameters = Operation.objects.filter(pk=op_id).values_list("parameters", flat=True).first()
    return dict(parameters or {})


def current_rate(op_id: int) -> float | None:
    """The rate limit stored for the operation now (an operator may have changed it)."""
    return current_parameters(op_id).get("rate") or None
