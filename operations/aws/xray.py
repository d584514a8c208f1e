"""AWS X-Ray adapter: find traces by correlation ID and fetch their segments.

The correlation ID is user input placed inside X-Ray's filter-expression
language, so :func:`correlation_filter` refuses anything that could close the
quoted string (quotes, backslashes, control characters) instead of trusting
callers to have validated it.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from operations.aws.client import client
from operations.aws.context import ContextThreadPoolExecutor
from operations.aws.errors import AwsError, translate

logger = logging.getLogger(__name__)

ANNOTATION = "correlation_id"
BATCH_SIZE = 5  # BatchGetTraces takes 1-5 trace IDs per call.
DEFAULT_WINDOW = timedelta(hours=6)
MAX_WORKERS = 8
MAX_VALUE_LENGTH = 256
# Characters that never appear in an annotation value we look up: they could
# close the quoted string or smuggle an escape into the filter expression.
_FORBIDDEN = re.compile(r'["\\\x00-\x1f\x7f]')
TRACE_ID_RE = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")


@dataclass(frozen=True)
class TraceSummary:
    id: str
    start: datetime | None
    duration: float | None
    response_time: float | None
    has_error: bool
    has_fault: bool
    has_throttle: bool
    http_status: int | None = None
    entry_point: str = ""


@dataclass(frozen=True)
class Segment:
    """One segment or subsegment of a trace document, with its children."""

    id: str
    name: str
    start: float
    end: float | None
    error: bool = False
    fault: bool = False
    throttle: bool = False
    in_progress: bool = False
    origin: str = ""
    namespace: str = ""
    cause: str = ""
    annotations: dict[str, Any] = field(default_factory=dict)
    # The first recorded exception's type and its top stack frame ("path:line in label").
    cause_type: str = ""
    cause_location: str = ""
    children: tuple[Segment, ...] = ()

    @property
    def duration(self) -> float:
        return max(0.0, (self.end if self.end is not None else self.start) - self.start)


@dataclass(frozen=True)
class Trace:
    id: str
    duration: float | None
    segments: tuple[Segment, ...]

    def walk(self) -> Iterator[tuple[int, Segment]]:
        """Every segment and subsegment, depth first, with its depth."""
        stack = [(0, seg) for seg in reversed(self.segments)]
        while stack:
            depth, seg = stack.pop()
            yield depth, seg
            stack.extend((depth + 1, child) for child in reversed(seg.children))

    def annotation(self, key: str) -> Any:
        for _depth, seg in self.walk():
            if key in seg.annotations:
                return seg.annotations[key]
        return None


@dataclass(frozen=True)
class Retrieval:
    """A Transaction Search retrieval: its status and whatever traces are ready."""

    token: str
    status: str
    traces: tuple[Trace, ...] = ()

    @property
    def finished(self) -> bool:
        return self.status not in {"SCHEDULED", "RUNNING"}


def correlation_filter(value: str, annotation: str = ANNOTATION) -> str:
    """``annotation.<annotation> = "<value>"``, refusing values that could escape the quotes.

    Raises ``ValueError`` for quotes, backslashes, control characters, an empty
    value or one longer than ``MAX_VALUE_LENGTH``.
    """
    if not value or len(value) > MAX_VALUE_LENGTH:
        raise ValueError("The value must be 1 to 256 characters long.")
    if _FORBIDDEN.search(value):
        raise ValueError("Quotes, backslashes and control characters are not allowed.")
    if not re.fullmatch(r"[A-Za-z0-9_]+", annotation):
        raise ValueError("Invalid annotation key.")
    return f'annotation.{annotation} = "{value}"'


def windows(
    start: datetime, end: datetime, size: timedelta = DEFAULT_WINDOW
) -> list[tuple[datetime, datetime]]:
    """Split [start, end) into consecutive windows of at most ``size``, oldest first."""
    if size <= timedelta(0):
        raise ValueError("window size must be positive")
    spans = []
    cursor = start
    while cursor < end:
        upper = min(cursor + size, end)
        spans.append((cursor, upper))
        cursor = upper
    return spans


def _summary(raw: dict[str, Any]) -> TraceSummary:
    http = raw.get("Http") or {}
    entry = raw.get("EntryPoint") or {}
    return TraceSummary(
        id=raw["Id"],
        start=raw.get("StartTime"),
        duration=raw.get("Duration"),
        response_time=raw.get("ResponseTime"),
        has_error=bool(raw.get("HasError")),
        has_fault=bool(raw.get("HasFault")),
        has_throttle=bool(raw.get("HasThrottle")),
        http_status=http.get("HttpStatus"),
        entry_point=str(entry.get("Name", "")),
    )


# https://docs.aws.amazon.com/xray/latest/api/API_GetTraceSummaries.html
def get_trace_summaries(
    filter_expression: str, start: datetime, end: datetime
) -> list[TraceSummary]:
    """Every trace summary in one time window, following ``NextToken``."""
    xray = client("xray")
    params: dict[str, Any] = {
        "StartTime": start,
        "EndTime": end,
        "FilterExpression": filter_expression,
    }
    found: list[TraceSummary] = []
    try:
        while True:
            page = xray.get_trace_summaries(**params)
            found.extend(_summary(raw) for raw in page.get("TraceSummaries", []))
            token = page.get("NextToken")
            if not token:
                return found
            params["NextToken"] = token
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, "GetTraceSummaries") from exc


def find_trace_summaries(
    filter_expression: str,
    start: datetime,
    end: datetime,
    window: timedelta = DEFAULT_WINDOW,
    max_workers: int = MAX_WORKERS,
) -> list[TraceSummary]:
    """Trace summaries over a long range: split into windows queried in parallel.

    Results are de-duplicated by trace ID and sorted by start time. The first
    error of any window is raised (as ``AwsError``).
    """
    spans = windows(start, end, window)
    if not spans:
        return []
    workers = max(1, min(max_workers, len(spans)))
    with ContextThreadPoolExecutor(max_workers=workers, thread_name_prefix="xray-window") as pool:
        pages = list(pool.map(lambda span: get_trace_summaries(filter_expression, *span), spans))
    unique: dict[str, TraceSummary] = {}
    for page in pages:
        for summary in page:
            unique.setdefault(summary.id, summary)
    return sorted(unique.values(), key=lambda s: (s.start is None, s.start or start, s.id))


def _segment(doc: dict[str, Any]) -> Segment:
    cause = doc.get("cause")
    cause_text = cause_type = cause_location = ""
    if isinstance(cause, dict):
        exceptions = [e for e in cause.get("exceptions", []) if isinstance(e, dict)]
        messages = [str(e.get("message", "")) for e in exceptions]
        cause_text = "; ".join(m for m in messages if m)
        if exceptions:
            cause_type = str(exceptions[0].get("type", "") or "")
            cause_location = _top_frame(exceptions[0].get("stack"))
    annotations = doc.get("annotations")
    return Segment(
        id=str(doc.get("id", "")),
        name=str(doc.get("name", "")),
        start=float(doc.get("start_time", 0.0)),
        end=float(doc["end_time"]) if doc.get("end_time") is not None else None,
        error=bool(doc.get("error")),
        fault=bool(doc.get("fault")),
        throttle=bool(doc.get("throttle")),
        in_progress=bool(doc.get("in_progress")),
        origin=str(doc.get("origin", "")),
        namespace=str(doc.get("namespace", "")),
        cause=cause_text,
        annotations=dict(annotations) if isinstance(annotations, dict) else {},
        cause_type=cause_type,
        cause_location=cause_location,
        children=tuple(
            sorted(
                (_segment(sub) for sub in doc.get("subsegments", []) if isinstance(sub, dict)),
                key=lambda s: s.start,
            )
        ),
    )


def _top_frame(stack: Any) -> str:
    if not isinstance(stack, list) or not stack or not isinstance(stack[0], dict):
        return ""
    frame = stack[0]
    where = f"{frame.get('path', '')}:{frame.get('line', '')}".strip(":")
    label = frame.get("label")
    return f"{where} in {label}" if label else where


def parse_documents(trace_id: str, duration: float | None, documents: Iterable[str]) -> Trace:
    """A ``Trace`` from segment documents (JSON strings); unreadable ones are skipped."""
    segments = []
    for document in documents:
        try:
            doc = json.loads(document)
        except (TypeError, ValueError):
            logger.warning("Skipping an unreadable segment document in trace %s", trace_id)
            continue
        if isinstance(doc, dict):
            segments.append(_segment(doc))
    segments.sort(key=lambda s: s.start)
    return Trace(id=trace_id, duration=duration, segments=tuple(segments))


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for index in range(0, len(items), size):
        yield items[index : index + size]


# https://docs.aws.amazon.com/xray/latest/api/API_BatchGetTraces.html
def _batch_get_chunk(chunk: list[str]) -> list[Trace]:
    xray = client("xray")
    params: dict[str, Any] = {"TraceIds": chunk}
    traces: list[Trace] = []
    try:
        while True:
            page = xray.batch_get_traces(**params)
            for raw in page.get("Traces", []):
                documents = [s.get("Document", "") for s in raw.get("Segments", [])]
                traces.append(parse_documents(raw["Id"], raw.get("Duration"), documents))
            token = page.get("NextToken")
            if not token:
                return traces
            params["NextToken"] = token
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, "BatchGetTraces") from exc


def batch_get_traces(trace_ids: Iterable[str], max_workers: int = MAX_WORKERS) -> list[Trace]:
    """Full traces, asked for in chunks of five (the API's limit), chunks in parallel.

    Traces come back in the order of ``trace_ids`` (those X-Ray found)."""
    chunks = list(_chunks(list(dict.fromkeys(trace_ids)), BATCH_SIZE))
    if not chunks:
        return []
    workers = max(1, min(max_workers, len(chunks)))
    with ContextThreadPoolExecutor(max_workers=workers, thread_name_prefix="xray-batch") as pool:
        return [trace for found in pool.map(_batch_get_chunk, chunks) for trace in found]


# https://docs.aws.amazon.com/xray/latest/api/API_StartTraceRetrieval.html
def start_trace_retrieval(trace_ids: list[str], start: datetime, end: datetime) -> str:
    """Ask Transaction Search for traces (at most 5 IDs); returns the retrieval token."""
    try:
        response = client("xray").start_trace_retrieval(
            TraceIds=trace_ids[:BATCH_SIZE], StartTime=start, EndTime=end
        )
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, "StartTraceRetrieval") from exc
    return str(response["RetrievalToken"])


# https://docs.aws.amazon.com/xray/latest/api/API_ListRetrievedTraces.html
def list_retrieved_traces(token: str) -> Retrieval:
    """The state of a retrieval and, once complete, its traces (X-Ray segment format)."""
    xray = client("xray")
    params: dict[str, Any] = {"RetrievalToken": token, "TraceFormat": "XRAY"}
    traces: list[Trace] = []
    status = "RUNNING"
    try:
        while True:
            page = xray.list_retrieved_traces(**params)
            status = str(page.get("RetrievalStatus", status))
            for raw in page.get("Traces", []):
                documents = [s.get("Document", "") for s in raw.get("Spans", [])]
                traces.append(parse_documents(raw["Id"], raw.get("Duration"), documents))
            next_token = page.get("NextToken")
            if not next_token:
                break
            params["NextToken"] = next_token
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, "ListRetrievedTraces") from exc
    return Retrieval(token=token, status=status, traces=tuple(traces))


def retrieve_traces(
    trace_ids: list[str],
    start: datetime,
    end: datetime,
    attempts: int = 5,
    interval: float = 0.5,
) -> list[Trace]:
    """Transaction Search fallback: start retrievals (5 IDs each) and poll them briefly.

    Polling is bounded (``attempts`` x ``interval`` seconds per retrieval) so a
    page never hangs; traces not ready by then are simply not shown.
    """
    traces: list[Trace] = []
    for chunk in _chunks(list(dict.fromkeys(trace_ids)), BATCH_SIZE):
        token = start_trace_retrieval(chunk, start, end)
        for attempt in range(attempts):
            retrieval = list_retrieved_traces(token)
            if retrieval.finished:
                traces.extend(retrieval.traces)
                break
            if attempt + 1 < attempts:
                time.sleep(interval)
    return traces


def get_traces(
    trace_ids: list[str], start: datetime, end: datetime, max_workers: int = MAX_WORKERS
) -> list[Trace]:
    """Full traces by ID: ``BatchGetTraces``, or Transaction Search when that finds nothing."""
    if not trace_ids:
        return []
    traces = batch_get_traces(trace_ids, max_workers=max_workers)
    if traces:
        return traces
    try:
        return retrieve_traces(trace_ids, start, end)
    except AwsError as exc:
        if exc.transient:
            raise
        # Accounts without Transaction Search reject StartTraceRetrieval: nothing more to find.
        logger.info("Trace retrieval unavailable: %s", exc)
        return []
