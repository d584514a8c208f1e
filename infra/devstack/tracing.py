"""X-Ray segments for the handlers the devstack runs in-process.

On AWS, Lambda's active tracing writes a segment per invocation and the function code adds a
subsegment with the ``correlation_id`` annotation. In the devstack the handlers run with
``POWERTOOLS_TRACE_DISABLED=true`` (no X-Ray daemon), so the runner writes equivalent segment
documents itself with ``PutTraceSegments``.

One order keeps one trace: its trace ID is derived from the correlation ID the first time it is
seen (or taken from an ``AWSTraceHeader``), and every hop of that order reuses it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from infra.devstack.clients import Clients

log = logging.getLogger(__name__)

# PutTraceSegments takes a list of documents; keep requests small.
MAX_DOCUMENTS_PER_CALL = 50
TRACE_IDS_KEPT = 50_000


def new_id() -> str:
    """A 16-hex-digit segment ID."""
    return os.urandom(8).hex()


def trace_root_from_header(header: str | None) -> str | None:
    """``Root=1-...;Parent=...;Sampled=1`` -> ``1-...``."""
    if not header:
        return None
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "Root" and value:
            return value
    return None


class TraceIds:
    """correlation ID -> X-Ray trace ID, for the ``limit`` correlation IDs seen last.

    An order keeps its trace for as long as it is active; one not seen for ``limit`` orders
    (hours at the default rate, longer than the emulator keeps traces) starts a new trace.
    """

    def __init__(self, limit: int = TRACE_IDS_KEPT) -> None:
        self.limit = limit
        self._ids: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def _remember(self, correlation_id: str, trace_id: str) -> None:
        self._ids[correlation_id] = trace_id
        self._ids.move_to_end(correlation_id)
        while len(self._ids) > self.limit:
            self._ids.popitem(last=False)

    def for_correlation(self, correlation_id: str, now: float | None = None) -> str:
        with self._lock:
            trace_id = self._ids.get(correlation_id)
            if trace_id is None:
                epoch = int(now if now is not None else time.time())
                digest = hashlib.sha256(correlation_id.encode()).hexdigest()[:24]
                trace_id = f"1-{epoch:08x}-{digest}"
            self._remember(correlation_id, trace_id)
            return trace_id

    def adopt(self, correlation_id: str, trace_id: str) -> None:
        """Use a trace ID that arrived with a message (``AWSTraceHeader``)."""
        with self._lock:
            self._remember(correlation_id, self._ids.get(correlation_id, trace_id))

    def __len__(self) -> int:
        return len(self._ids)


@dataclass
class Hop:
    """What one invocation did for one correlation ID (one subsegment)."""

    correlation_id: str
    event_types: list[str] = field(default_factory=list)
    failed: bool = False
    cause: str | None = None


@dataclass
class Invocation:
    function_name: str
    function_arn: str
    request_id: str
    start: float
    end: float
    # A crashed (or fault-injected) invocation: every hop failed.
    fault: bool = False
    cause: str | None = None
    hops: list[Hop] = field(default_factory=list)


class SegmentWriter:
    """Turns invocations into segment documents and sends them to X-Ray.

    By default ``send`` writes at once. Started (:meth:`start`), it queues the documents and a
    thread writes them in batches, as the X-Ray daemon does for Lambda: the traffic and the
    pollers do not wait for X-Ray, and the emulator gets one request per batch instead of one
    per invocation. At most ``max_pending`` documents wait; more are dropped (telemetry).
    """

    def __init__(
        self,
        clients: Clients,
        trace_ids: TraceIds,
        origin: str = "AWS::Lambda::Function",
        *,
        flush_interval_s: float = 0.2,
        max_pending: int = 10_000,
    ):
        self.flush_interval_s = flush_interval_s
        self.max_pending = max_pending
        self.dropped = 0
        self._pending: list[str] = []
        self._pending_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.clients = clients
        self.trace_ids = trace_ids
        self.origin = origin

    def documents(self, invocation: Invocation) -> list[dict[str, Any]]:
        """One segment per correlation ID the invocation touched, with an annotated subsegment.

        Annotations go on the subsegment (as Lambda requires); ``error``/``fault`` keys are only
        present when true, because X-Ray (and moto) treat their presence as the flag.
        """
        documents = []
        for hop in invocation.hops:
            subsegment: dict[str, Any] = {
                "id": new_id(),
                "name": "process",
                "start_time": invocation.start,
                "end_time": invocation.end,
                "annotations": {
                    "correlation_id": hop.correlation_id,
                    "event_type": ",".join(sorted(set(hop.event_types))) or "unknown",
                },
            }
            segment: dict[str, Any] = {
                "trace_id": self.trace_ids.for_correlation(hop.correlation_id, invocation.start),
                "id": new_id(),
                "name": invocation.function_name,
                "origin": self.origin,
                "start_time": invocation.start,
                "end_time": invocation.end,
                "aws": {
                    "function_arn": invocation.function_arn,
                    "request_id": invocation.request_id,
                },
                "subsegments": [subsegment],
            }
            if invocation.fault:
                for doc in (segment, subsegment):
                    doc["fault"] = True
                    doc["cause"] = {"exceptions": [{"message": invocation.cause or "fault"}]}
            elif hop.failed:
                for doc in (segment, subsegment):
                    doc["error"] = True
                subsegment["cause"] = {"exceptions": [{"message": hop.cause or "rejected"}]}
            documents.append(segment)
        return documents

    def send(self, invocation: Invocation) -> None:
        documents = [json.dumps(d) for d in self.documents(invocation)]
        if self._thread is None:
            self._write(documents)
            return
        with self._pending_lock:
            room = max(0, self.max_pending - len(self._pending))
            self._pending.extend(documents[:room])
            self.dropped += len(documents) - min(room, len(documents))

    def start(self) -> None:
        """Write in the background from now on."""
        self._thread = threading.Thread(target=self._run, name="xray-segments", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Write what is queued (within ``timeout``) and go back to writing at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def flush(self) -> None:
        with self._pending_lock:
            documents, self._pending = self._pending, []
        self._write(documents)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self.flush()
        self.flush()

    def _write(self, documents: list[str]) -> None:
        xray = self.clients("xray")
        for start in range(0, len(documents), MAX_DOCUMENTS_PER_CALL):
            try:
                response = xray.put_trace_segments(
                    TraceSegmentDocuments=documents[start : start + MAX_DOCUMENTS_PER_CALL]
                )
            except Exception:
                # Traces are telemetry: losing some must not stop the event flow.
                log.exception("PutTraceSegments failed for %d documents", len(documents))
                return
            if response.get("UnprocessedTraceSegments"):
                log.warning(
                    "X-Ray left %d segments unprocessed", len(response["UnprocessedTraceSegments"])
                )
