"""Benchmark: correlation lookup in X-Ray, parallel windows vs one sequential window.

Setup: 50 traces carry one correlation ID, spread over 24 h, among 5,000 other
traces. A simulated X-Ray answers the real botocore client (a ``before-call``
handler, so parameter validation and the adapter's code run unchanged):

- ``GetTraceSummaries`` scans at most ``SCAN_PER_PAGE`` traces of its time range
  per page (as X-Ray does: ``TracesProcessedCount``), returns those matching the
  filter and a ``NextToken`` while traces remain; each page takes ``PAGE_LATENCY``.
- ``BatchGetTraces`` returns up to 5 traces per call, ``BATCH_LATENCY`` each.

It prints the X-Ray calls per lookup by operation and the lookup time of the
windowed parallel lookup against a single-window sequential baseline, in the
same run, and their ratio. Run: ``.venv/bin/python bench/trace.py``.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
for name, value in {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ.setdefault(name, value)
os.environ.pop("AWS_ENDPOINT_URL", None)

import django  # noqa: E402

django.setup()

from botocore.awsrequest import AWSResponse  # noqa: E402

from operations.aws import client as aws_client  # noqa: E402
from operations.aws import xray  # noqa: E402

CORRELATION_ID = "corr-bench-0001"
MATCHING = 50
OTHERS = 5_000
SPAN = timedelta(hours=24)
SCAN_PER_PAGE = 500
PAGE_LATENCY = 0.05
BATCH_LATENCY = 0.05
END = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
START = END - SPAN


def trace_id(moment: datetime, n: int) -> str:
    return f"1-{int(moment.timestamp()):08x}-{n:024x}"


class SimulatedXRay:
    """Traces in memory; answers GetTraceSummaries and BatchGetTraces like X-Ray."""

    def __init__(self, seed: int = 7) -> None:
        rng = random.Random(seed)
        traces: list[tuple[datetime, str, str]] = []
        for n in range(MATCHING + OTHERS):
            moment = START + timedelta(seconds=rng.uniform(0, SPAN.total_seconds()))
            cid = CORRELATION_ID if n < MATCHING else f"corr-other-{n}"
            traces.append((moment, trace_id(moment, n), cid))
        self.traces = sorted(traces)
        self.by_id = {tid: (moment, cid) for moment, tid, cid in self.traces}
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    @staticmethod
    def remember(params: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
        """The API parameters (before serialisation), for the before-call handler."""
        context["bench_params"] = dict(params)

    def handle(
        self, model: Any, context: dict[str, Any], **kwargs: Any
    ) -> tuple[AWSResponse, dict]:
        params = context["bench_params"]
        with self.lock:
            self.calls[model.name] += 1
        if model.name == "GetTraceSummaries":
            time.sleep(PAGE_LATENCY)
            return AWSResponse(None, 200, {}, None), self.summaries(params)
        if model.name == "BatchGetTraces":
            time.sleep(BATCH_LATENCY)
            return AWSResponse(None, 200, {}, None), self.batch(params)
        raise AssertionError(f"unexpected call {model.name}")

    def summaries(self, params: dict[str, Any]) -> dict[str, Any]:
        wanted = params["FilterExpression"].split('"')[1]
        in_range = [t for t in self.traces if params["StartTime"] <= t[0] < params["EndTime"]]
        offset = int(params.get("NextToken") or 0)
        scanned = in_range[offset : offset + SCAN_PER_PAGE]
        page: dict[str, Any] = {
            "TraceSummaries": [
                {"Id": tid, "StartTime": moment, "Duration": 0.2, "HasError": False}
                for moment, tid, cid in scanned
                if cid == wanted
            ],
            "TracesProcessedCount": len(scanned),
        }
        if offset + SCAN_PER_PAGE < len(in_range):
            page["NextToken"] = str(offset + SCAN_PER_PAGE)
        return page

    def batch(self, params: dict[str, Any]) -> dict[str, Any]:
        traces = []
        for tid in params["TraceIds"]:
            moment, _cid = self.by_id[tid]
            start = moment.timestamp()
            document = {
                "id": "a" * 16,
                "name": "billing",
                "start_time": start,
                "end_time": start + 0.2,
            }
            traces.append(
                {
                    "Id": tid,
                    "Duration": 0.2,
                    "Segments": [{"Id": "s", "Document": json.dumps(document)}],
                }
            )
        return {"Traces": traces, "UnprocessedTraceIds": []}


def lookup(window: timedelta, workers: int) -> tuple[float, int]:
    """One lookup as the correlation page does it; returns (seconds, traces found)."""
    expression = xray.correlation_filter(CORRELATION_ID)
    began = time.perf_counter()
    summaries = xray.find_trace_summaries(
        expression, START, END, window=window, max_workers=workers
    )
    traces = xray.get_traces([s.id for s in summaries], START, END, max_workers=workers)
    return time.perf_counter() - began, len(traces)


def main() -> None:
    simulated = SimulatedXRay()
    aws_client.reset()
    xray_client = aws_client.client("xray")
    xray_client.meta.events.register("before-parameter-build.xray.*", simulated.remember)
    xray_client.meta.events.register_first("before-call.xray.*", simulated.handle)

    runs = {
        "parallel, 6 h windows": (xray.DEFAULT_WINDOW, xray.MAX_WORKERS),
        "baseline, one 24 h window, sequential": (SPAN, 1),
    }
    results = {}
    print(f"{MATCHING} traces for {CORRELATION_ID} among {OTHERS} others over 24 h")
    print(
        f"simulated X-Ray: {SCAN_PER_PAGE} traces scanned per GetTraceSummaries page, "
        f"{PAGE_LATENCY * 1000:.0f} ms a page, {BATCH_LATENCY * 1000:.0f} ms a BatchGetTraces call"
    )
    print("(the baseline also fetches the traces' chunks one after another)\n")
    for label, (window, workers) in runs.items():
        simulated.calls.clear()
        seconds, found = lookup(window, workers)
        results[label] = seconds
        calls = ", ".join(f"{op}={n}" for op, n in sorted(simulated.calls.items()))
        print(f"{label:<40} {seconds * 1000:7.0f} ms  traces={found}  calls: {calls}")
        if found != MATCHING:
            raise SystemExit(f"expected {MATCHING} traces, found {found}")
    baseline = results["baseline, one 24 h window, sequential"]
    parallel = results["parallel, 6 h windows"]
    print(f"speed-up (baseline / parallel): {baseline / parallel:.1f}x")


if __name__ == "__main__":
    main()
