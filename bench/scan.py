"""Benchmark of the DLQ scan (operations/triage/scan.py) and the dense table over its rows.

    .venv/bin/python bench/scan.py [--n 10000] [--renders 10] [--backend fake|moto]

Prints:
1. AWS calls per message scanned (target <= 0.21: a receive and a release per 10 messages,
   plus GetQueueAttributes at the start and the empty receives that end it);
2. server time of a filtered, sorted DLQ page over the N stored rows: median and range of
   ``--renders`` renders through Django's test client (target: median <= 150 ms). It includes
   the whole request: middleware, login session, the DLQ's own AWS checks (GetQueueUrl,
   GetQueueAttributes, ListDeadLetterSourceQueues against the backend) and the SQL;
3. the worker's peak memory growth during a scan of N (tracemalloc, in its own round, with
   the queue filled before it starts; target <= 50 MB). It counts Python allocations only
   (SQLite's own C allocations are not traced).

``--backend fake`` (default) answers botocore's JSON protocol in-process (bench/redrive.py's
``FakeSqs``): full botocore serialisation and parsing, no emulator cost. ``--backend moto``
runs moto in-process; its ReceiveMessage slows with the queue's size (see RECIPES.md), so
keep N small there. The database is SQLite in memory.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost")
_spec = importlib.util.spec_from_file_location("bench_redrive", ROOT / "bench" / "redrive.py")
assert _spec is not None and _spec.loader is not None
redrive_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(redrive_bench)  # sets up sys.path and the environment variables


class ScanFakeSqs(redrive_bench.FakeSqs):  # type: ignore[misc,name-defined]
    """The redrive benchmark's in-memory SQS, whose DLQs name their source queue."""

    def ListDeadLetterSourceQueues(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"queueUrls": [body["QueueUrl"].replace("bench-dlq-", "bench-")]}


def fill(n: int, backend: str) -> tuple[str, Any]:
    """A DLQ of ``n`` messages of three event types and three errors; (url, fake or None)."""
    fake = ScanFakeSqs() if backend == "fake" else None
    clients = redrive_bench.engine_clients(fake)
    client = redrive_bench.plain_client(fake)
    dlq, source, _ = redrive_bench.make_queues(client, 0, fake)
    if fake is None:
        arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
        policy = {"deadLetterTargetArn": arn["Attributes"]["QueueArn"], "maxReceiveCount": 3}
        client.set_queue_attributes(
            QueueUrl=source, Attributes={"RedrivePolicy": json.dumps(policy)}
        )
    kinds = ("OrderPaid", "OrderShipped", "OrderCancelled")
    errors = ("amount -{i} is not positive", "timeout calling billing after {i} ms", "")
    for start in range(0, n, 10):
        entries = []
        for i in range(start, min(n, start + 10)):
            detail = {"correlationId": f"c-{i}", "orderId": f"o-{i}", "note": "x" * (i % 300)}
            body = {"id": f"e-{i}", "detail-type": kinds[i % 3], "detail": detail}
            attributes = {"correlation_id": {"DataType": "String", "StringValue": f"c-{i}"}}
            error = errors[i % 3].format(i=i)
            if error:
                attributes["ErrorMessage"] = {"DataType": "String", "StringValue": error}
            entries.append(
                {
                    "Id": str(i - start),
                    "MessageBody": json.dumps(body),
                    "MessageAttributes": attributes,
                }
            )
        if fake is not None:
            fake.SendMessageBatch({"QueueUrl": dlq, "Entries": entries})
        else:
            client.send_message_batch(QueueUrl=dlq, Entries=entries)
    del clients
    return dlq, fake


def count_calls() -> Counter[str]:
    from operations.aws import client as aws_client

    calls: Counter[str] = Counter()
    for client in (aws_client.client("sqs"), aws_client.client("sqs", bulk=True)):
        client.meta.events.register(
            "before-call.*.*",
            lambda model, **_: calls.update([f"{model.service_model.service_name}.{model.name}"]),
        )
    return calls


def run_scan(dlq: str, n: int) -> Any:
    from operations.triage import scan

    op = scan.create_scan(dlq, max_messages=n, reason="bench", user_name="bench")
    token = op.claim(scan.LEASE_SECONDS)
    scan.run_scan(op, token)
    op.refresh_from_db()
    return op


def calls_round(n: int, backend: str) -> Any:
    dlq, fake = fill(n, backend)
    calls = count_calls()
    started = time.perf_counter()
    op = run_scan(dlq, n)
    elapsed = time.perf_counter() - started
    total = sum(calls.values())
    print(
        f"1. scan of {op.moved} messages ({op.state}, stopped: {op.outcome.get('stopped')}) "
        f"in {elapsed:.1f} s"
    )
    for name, count in sorted(calls.items()):
        print(f"     {name}: {count}")
    ratio = total / max(1, op.moved)
    verdict = "ok" if ratio <= 0.21 else "OVER"
    print(
        f"   AWS calls per message scanned: {total} / {op.moved} = {ratio:.4f} "
        f"(target <= 0.21: {verdict})"
    )
    if fake is not None:
        queue = fake.queues[dlq]
        print(
            f"   left hidden after the scan: {len(queue['hidden'])}, "
            f"visible: {len(queue['visible'])}"
        )
    return dlq, op


def render_round(dlq: str, renders: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from operations import environments
    from operations.aws import sqs

    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_superuser": True, "is_staff": True}
    )
    client = Client()
    client.force_login(user)
    name = sqs.queue_name_from_url(dlq)
    url = reverse("operations:dlq_messages", args=[environments.default().name, name])
    params = {"event_type": "OrderPaid", "q": "amount", "sort": "-size", "page": "3"}
    client.get(url, params, secure=True)  # warm-up (template loading), not counted
    times, cpu, count, queries = [], [], 0, 0
    for _ in range(renders):
        with CaptureQueriesContext(connection) as captured:
            started, started_cpu = time.perf_counter(), time.process_time()
            response = client.get(url, params, secure=True)
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        assert response.status_code == 200, response.status_code
        found = re.search(r'id="table-count">(\d+)', response.content.decode())
        count = int(found.group(1)) if found else -1
        queries = len(captured.captured_queries)
    median = statistics.median(times)
    verdict = "ok" if median <= 150 else "OVER"
    print(
        f"2. filtered page over the stored rows ({params}; {count} match, "
        f"{queries} SQL queries per render)"
    )
    print(
        f"   server time of {renders} renders: median {median:.1f} ms, "
        f"range {min(times):.1f}-{max(times):.1f} ms (target median <= 150 ms: {verdict})"
    )
    print(
        "   CPU time of the same renders (this process; without the waits for a busy CPU): "
        f"median {statistics.median(cpu):.1f} ms, range {min(cpu):.1f}-{max(cpu):.1f} ms"
    )


def memory_round(n: int, backend: str) -> None:
    from operations.models import Operation

    Operation.objects.filter(state__in=Operation.ACTIVE_STATES).update(state="succeeded")
    dlq, _ = fill(n, backend)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    op = run_scan(dlq, n)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    growth = (peak - base) / 1024 / 1024
    verdict = "ok" if growth <= 50 else "OVER"
    print(
        f"3. worker peak memory growth during a scan of {op.moved} messages (tracemalloc, "
        f"Python allocations): {growth:.1f} MB (target <= 50 MB: {verdict})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--renders", type=int, default=10)
    parser.add_argument("--backend", choices=("fake", "moto"), default="fake")
    args = parser.parse_args()
    os.environ["EVENTOPS_SCAN_MAX"] = str(max(args.n, 1))
    if args.backend == "moto":
        from moto import mock_aws

        mock = mock_aws()
        mock.start()
    redrive_bench.setup_django()
    load = os.getloadavg()[0]
    print(
        f"backend: {args.backend}, N = {args.n}, database: SQLite in memory, "
        f"load average {load:.1f} on {os.cpu_count()} CPUs"
    )
    dlq, _ = calls_round(args.n, args.backend)
    render_round(dlq, args.renders)
    memory_round(args.n, args.backend)


if __name__ == "__main__":
    sys.exit(main())
