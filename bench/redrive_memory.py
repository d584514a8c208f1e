"""What a redrive pass keeps per message, measured without AWS (issue 18: peak at 1,000,000
messages at most 150 MB).

    .venv/bin/python bench/redrive_memory.py                        # 1,000, 100,000, 1,000,000
    .venv/bin/python bench/redrive_memory.py --messages 1000,100000

Each N runs in its own subprocess: a ``Redrive`` of a standard DLQ (the engine's own
``_take`` and outbox flush, the ledger writing its rows to a SQLite file as in production)
is fed N synthetic messages with UUID message IDs, 10 a receive, through a stand-in
``Mover`` that accepts every send (each copy gets a new UUID, as SQS gives) and every
delete. No AWS call and no HTTP, so only the engine's state is measured. Every copy ID is
kept, as in the first ``COPIES_WINDOW_SECONDS`` of a real pass: more than a real pass of
1,000,000 keeps (at 1,500 msg/s, 540,000), so the figure is an upper bound.

Printed per N: tracemalloc's growth of what the pass holds once every message is moved
(the per-message state: IDs met, outcomes, copies) in bytes per message, tracemalloc's
peak during the pass (both plus the key arrays in memory maps, which tracemalloc does not
see: counted from the tables), and the process's peak RSS (VmHWM) against its RSS before. Memory
figures are deterministic up to the hash seed, so one round per N (not 5); the seconds
are shown but not what is measured. bench/redrive.py --memory-only measures the whole
``manage.py redrive`` over HTTP.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import redrive as base  # noqa: E402  (bench/redrive.py: settings, SQLite file, memory_kb)

DLQ = f"https://sqs.us-east-1.amazonaws.com/{base.ACCOUNT}/bench-dlq"
SOURCE_ARN = f"arn:aws:sqs:us-east-1:{base.ACCOUNT}:bench"
SOURCE = f"https://sqs.us-east-1.amazonaws.com/{base.ACCOUNT}/bench"


class AcceptAll:
    """A Mover whose every send and delete succeeds, at once."""

    def send(self, url: str, entries: dict[str, dict[str, object]]) -> Any:
        from operations.redrive_mover import Done

        return Done(succeeded={key: str(uuid.uuid4()) for key in entries})

    def delete(self, url: str, receipt_handles: dict[str, str]) -> Any:
        from operations.redrive_mover import Done

        return Done(succeeded=dict.fromkeys(receipt_handles, ""))


def message(i: int, sent_ms: str) -> Any:
    from operations.aws import sqs

    raw = base.lazy_message(i, sent_ms)
    message_id = str(uuid.UUID(int=(i << 64) | 0x4000_8000_0000_0000))
    return sqs.SqsMessage(
        message_id,
        f"{message_id}#{i}:" + "h" * 150,  # receipt handles run to a few hundred characters
        raw["Body"],
        raw["Attributes"],
        raw["MessageAttributes"],
    )


def child(n: int) -> None:
    base.setup_django()
    from operations import redrive as engine
    from operations.models import Operation
    from operations.redrive_pass import Redrive

    op = Operation.objects.create(
        kind=Operation.Kind.REDRIVE,
        target=DLQ,
        parameters=engine.RedriveParams(destination_arn=SOURCE_ARN).to_parameters(),
        reason="bench",
        requested_by_name="bench",
    )
    sent_ms = str(int(time.time() * 1000) - 60_000)
    rss_before = base.memory_kb("VmRSS")
    tracemalloc.start()
    started = time.perf_counter()
    run = Redrive(op, uuid.uuid4())
    run.destinations[SOURCE_ARN] = SOURCE
    run.outbox.mover = AcceptAll()  # type: ignore[assignment]
    run.outbox.copies_until = float("inf")
    held_before, _ = tracemalloc.get_traced_memory()
    for start in range(0, n, 10):
        for i in range(start, min(n, start + 10)):
            run._take(message(i, sent_ms))
        run._flush()
    run.ledger.flush()
    held, peak = tracemalloc.get_traced_memory()
    # Key arrays of 64 KB and more are memory maps, which tracemalloc does not trace.
    ids = getattr(run.ledger, "_ids", None)
    copies = run.outbox.copies
    mapped = 0
    if ids is not None:
        mapped = ids.nbytes(mapped_only=True) + copies.nbytes(mapped_only=True)
    seconds = time.perf_counter() - started
    counts = run.ledger.counts()
    assert (counts.moved, len(run.handles)) == (n, 0), (counts, len(run.handles))
    print(
        json.dumps(
            {
                "n": n,
                "held": held - held_before + mapped,
                "peak": peak + mapped,
                "mapped": mapped,
                "table": ids.nbytes() if ids is not None else None,
                "copies": copies.nbytes() if hasattr(copies, "nbytes") else None,
                "rss_before_kb": rss_before,
                "peak_kb": base.memory_kb("VmHWM"),
                "s": seconds,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", default="1000,100000,1000000")
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    print(
        "== per-message state of a redrive pass: a Redrive fed N synthetic messages, no AWS "
        "(tracemalloc; one round per N: memory is deterministic)"
    )
    results = {}
    for n in [int(x) for x in args.messages.split(",") if x]:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(n)],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode:
            print(out.stderr[-3000:])
            raise SystemExit(f"the run of {n} failed")
        r = results[n] = json.loads(out.stdout.strip().splitlines()[-1])
        parts = ""
        if r["table"] is not None:
            parts = (
                f" (packed tables: ledger {r['table'] / n:.0f} B, copies "
                f"{r['copies'] / n:.0f} B a message)"
            )
        print(
            f"  N = {n:>9,}: held after the pass {r['held'] / 2**20:.1f} MB = "
            f"{r['held'] / n:.0f} bytes a message{parts}; tracemalloc peak "
            f"{r['peak'] / 2**20:.1f} MB; peak RSS {r['peak_kb'] / 1024:.1f} MB (before "
            f"{r['rss_before_kb'] / 1024:.1f} MB); {r['s']:.0f} s"
        )
    if 1000 in results and 100_000 in results:
        growth = (results[100_000]["peak_kb"] - results[1000]["peak_kb"]) / 1024
        print(f"  peak RSS growth 1,000 -> 100,000: {growth:.1f} MB (target <= 50 MB)")
    if 1_000_000 in results:
        peak = results[1_000_000]["peak_kb"] / 1024
        print(f"  peak RSS at 1,000,000: {peak:.1f} MB (target <= 150 MB)")


if __name__ == "__main__":
    main()
