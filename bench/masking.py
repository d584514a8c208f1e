"""Benchmark: what masking costs where it runs per message, without AWS.

Builds 1,000 DLQ messages like the demo's (JSON envelopes of about 1 KiB; one in five
carries a card number and a password) and times, over 7 rounds:

- a filtered redrive's match on body text, unmasked (an admin's) and masked (a viewer's:
  the original is checked first, and only a message that holds the text is masked to
  confirm), per 1,000 messages, and their ratio: for a text in one message in five (the
  password), and for a rare one;
- a filter that looks at no content (message IDs only) with the masked flag set: masking
  must not run at all there;
- the DLQ page's 50 shown messages, masked then pretty-printed, against pretty-printed only;
- peak Python memory of masking the 1,000 (tracemalloc).

Run: ``.venv/bin/python bench/masking.py`` (a few seconds). Prints median and range.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ["LOG_LEVEL"] = "ERROR"

import django  # noqa: E402

django.setup()

from operations import dlq, masking  # noqa: E402
from operations.aws import sqs  # noqa: E402

COUNT = 1000
ROUNDS = 7
PAGE = 50


def body(i: int) -> str:
    detail: dict[str, object] = {
        "correlationId": f"corr-{i:06d}",
        "orderId": f"o-{i}",
        "customer": {"email": f"c{i}@example.com", "name": "A. Customer", "country": "DE"},
        "lines": [{"sku": f"sku-{n}", "qty": n, "price": 12.5 * n} for n in range(1, 8)],
        "occurredAt": "2026-12-05T16:00:00Z",
    }
    if i % 5 == 0:
        detail["payment"] = {"card": "4111111111111111", "password": "hunter2"}
    envelope = {"id": f"e-{i}", "detail-type": "OrderPaid", "source": "shop", "detail": detail}
    return json.dumps(envelope)


def messages() -> list[dlq.DlqMessage]:
    error = {"DataType": "String", "StringValue": "charge declined"}
    return [
        dlq.describe(sqs.SqsMessage(f"m-{i}", "r", body(i), {}, {"ErrorMessage": error}))
        for i in range(COUNT)
    ]


def timed(work: Callable[[list[dlq.DlqMessage]], object]) -> list[float]:
    """Seconds of each round; every round gets freshly described messages (a masked copy
    is kept on its message, as it is within one request)."""
    rounds = []
    for _ in range(ROUNDS):
        fresh = messages()
        started = time.perf_counter()
        work(fresh)
        rounds.append(time.perf_counter() - started)
    return rounds


def show(label: str, rounds: list[float]) -> float:
    median = statistics.median(rounds)
    print(
        f"{label:<58} median {median * 1000:8.2f} ms  "
        f"range {min(rounds) * 1000:.2f}-{max(rounds) * 1000:.2f} ms"
    )
    return median


def main() -> None:
    print(f"{COUNT} messages of about {len(body(1))} bytes, {ROUNDS} rounds\n")
    plain = dlq.Filters(contains="hunter2")
    masked = dlq.Filters(contains="hunter2", masked=True)
    ids_only = dlq.Filters(message_ids=frozenset({"m-1"}), masked=True)
    unmasked_t = show(
        "redrive filter, body text, unmasked (admin)",
        timed(lambda ms: [plain.matches(m) for m in ms]),
    )
    masked_t = show(
        "redrive filter, body text, masked (viewer)",
        timed(lambda ms: [masked.matches(m) for m in ms]),
    )
    show(
        "redrive filter, message IDs only, masked flag",
        timed(lambda ms: [ids_only.matches(m) for m in ms]),
    )
    print(f"  ratio masked / unmasked body-text filter: {masked_t / unmasked_t:.1f}x")
    rare = dlq.Filters(contains="corr-000123")
    rare_masked = dlq.Filters(contains="corr-000123", masked=True)
    rare_t = show(
        "redrive filter, a rare text (one match), unmasked",
        timed(lambda ms: [rare.matches(m) for m in ms]),
    )
    rare_masked_t = show(
        "redrive filter, a rare text (one match), masked",
        timed(lambda ms: [rare_masked.matches(m) for m in ms]),
    )
    print(f"  ratio: {rare_masked_t / rare_t:.1f}x")
    found = sum(masked.matches(m) for m in messages()), sum(plain.matches(m) for m in messages())
    print(f"  matches for 'hunter2': masked {found[0]}, unmasked {found[1]}\n")
    page_plain = show(
        f"DLQ page: {PAGE} messages pretty-printed",
        timed(lambda ms: [m.shown_body for m in ms[:PAGE]]),
    )
    page_masked = show(
        f"DLQ page: {PAGE} messages masked, then pretty-printed",
        timed(lambda ms: [m.masked.shown_body for m in ms[:PAGE]]),
    )
    print(f"  ratio: {page_masked / page_plain:.1f}x\n")
    fresh = messages()
    tracemalloc.start()
    for m in fresh:
        masking.mask_text(m.raw.body)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"peak memory masking {COUNT} bodies one by one: {peak / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
