"""The in-process handlers' log lines, in their log groups, as on Lambda.

On Lambda, whatever a function's Powertools Logger writes goes to ``/aws/lambda/<function>``.
The devstack runs the handlers in its own process, so :class:`FunctionLogs` adds a handler to
each consumer's logger that keeps the formatted JSON line (formatted in the calling thread,
so the keys appended for the record being processed are in it), and a thread that sends
them to the emulator with ``PutLogEvents``: batched (at most ``MAX_BATCH_EVENTS`` events and
about ``MAX_BATCH_BYTES`` a call) every ``interval_s``. Memory stays bounded: at most
``max_pending`` lines wait (the oldest are dropped and counted), and the emulator's store is
trimmed by :mod:`infra.devstack.emulator.retention` like every other log group.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections import deque
from typing import Any

from infra.devstack.clients import Clients

log = logging.getLogger(__name__)

MAX_PENDING = 10_000
MAX_BATCH_EVENTS = 1_000
MAX_BATCH_BYTES = 512 * 1024
# PutLogEvents counts 26 bytes per event on top of its message.
EVENT_OVERHEAD = 26
MAX_LINE_CHARS = 64 * 1024


class _GroupHandler(logging.Handler):
    def __init__(self, shipper: FunctionLogs, group: str, formatter: logging.Formatter | None):
        super().__init__()
        self.shipper = shipper
        self.group = group
        if formatter is not None:
            self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a line that cannot be formatted is not worth a crash
            self.handleError(record)
            return
        self.shipper.add(self.group, int(record.created * 1000), line[:MAX_LINE_CHARS])


class FunctionLogs:
    """Collects handlers' log lines and ships them to the emulator's log groups."""

    def __init__(
        self, clients: Clients, *, max_pending: int = MAX_PENDING, interval_s: float = 1.0
    ) -> None:
        self.clients = clients
        self.interval_s = interval_s
        self.stream = f"devstack/[$LATEST]{uuid.uuid4().hex}"
        self.pending: deque[tuple[str, int, str]] = deque(maxlen=max_pending)
        self.dropped = 0
        self.shipped = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._streams: set[str] = set()
        self._attached: list[tuple[Any, logging.Handler]] = []

    def attach(self, logger: Any, group: str) -> None:
        """Send what ``logger`` (a Powertools Logger) writes to ``group`` too."""
        handler = _GroupHandler(self, group, getattr(logger, "registered_formatter", None))
        logger.addHandler(handler)
        self._attached.append((logger, handler))

    def add(self, group: str, timestamp_ms: int, line: str) -> None:
        with self._lock:
            if len(self.pending) == self.pending.maxlen:
                self.dropped += 1
            self.pending.append((group, timestamp_ms, line))

    def _take(self) -> list[tuple[str, int, str]]:
        with self._lock:
            taken = list(self.pending)
            self.pending.clear()
        return taken

    def flush(self) -> int:
        """Send every pending line now; returns how many were sent."""
        by_group: dict[str, list[dict[str, Any]]] = {}
        for group, timestamp_ms, line in self._take():
            by_group.setdefault(group, []).append({"timestamp": timestamp_ms, "message": line})
        sent = 0
        for group, events in by_group.items():
            events.sort(key=lambda e: e["timestamp"])
            for batch in _batches(events):
                try:
                    self._put(group, batch)
                    sent += len(batch)
                except Exception as exc:  # the emulator is stopping, or the group is gone
                    log.warning("could not ship %d log lines to %s: %s", len(batch), group, exc)
        self.shipped += sent
        return sent

    def _put(self, group: str, events: list[dict[str, Any]]) -> None:
        logs = self.clients("logs")
        if group not in self._streams:
            self._create_stream(group)
        try:
            logs.put_log_events(logGroupName=group, logStreamName=self.stream, logEvents=events)
        except logs.exceptions.ResourceNotFoundException:
            # The retention sweep drops emptied streams: make it again.
            self._create_stream(group)
            logs.put_log_events(logGroupName=group, logStreamName=self.stream, logEvents=events)

    def _create_stream(self, group: str) -> None:
        logs = self.clients("logs")
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_stream(logGroupName=group, logStreamName=self.stream)
        self._streams.add(group)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.flush()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="function-logs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Ship what is pending and detach from the loggers (they outlive the devstack)."""
        for logger, handler in self._attached:
            logger.removeHandler(handler)
        self._attached.clear()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        if time.monotonic() < deadline:
            self.flush()


def _batches(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for event in events:
        cost = len(event["message"].encode("utf-8")) + EVENT_OVERHEAD
        if current and (len(current) >= MAX_BATCH_EVENTS or size + cost > MAX_BATCH_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append(event)
        size += cost
    if current:
        batches.append(current)
    return batches
