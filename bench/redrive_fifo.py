"""What FIFO group order costs the redrive engine (operations/redrive_*.py), and what its
pipelines gain.

    .venv/bin/python bench/redrive_fifo.py [--n 2000] [--rounds 5] [--latency-ms 20]

A FIFO redrive sends at most one message of a group per SendMessageBatch, so that an
entry SQS refuses can never be overtaken by a later message of its group in the same
call. It gathers messages from several receives to fill its batches with other groups.
This prints the AWS calls per message moved for N messages spread over 1 to N groups,
with one loop and with 8 pipelines, against 0.30 for a standard queue (receive 10 +
send 10 + delete 10), and checks that each group arrived in order.

Then the throughput round: every call takes ``--latency-ms`` (20: a same-Region round
trip), and 1,000 messages in 50 groups are redriven at concurrency 1 and 8, ``--rounds``
times: messages/s (median and range) and the speed-up of 8 pipelines over one loop.

The SQS side is bench/redrive.py's in-memory fake with FIFO receive semantics, as SQS
documents them: a receive returns as many messages of one group as it can, in order,
and nothing of a group while one of its messages is in flight.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import redrive as base  # noqa: E402  (bench/redrive.py: settings, FakeSqs, clients)


class FakeFifoSqs(base.FakeSqs):
    """``FakeSqs`` with FIFO order and group locking."""

    def __init__(self) -> None:
        super().__init__()
        self.sequence = 0

    def SendMessageBatch(self, body: dict[str, Any]) -> dict[str, Any]:
        result = super().SendMessageBatch(body)
        queue = self._queue(body)
        for entry, ok in zip(body["Entries"], result["Successful"], strict=True):
            self.sequence += 1
            message = queue["visible"][ok["MessageId"]]
            message["Attributes"]["MessageGroupId"] = entry["MessageGroupId"]
            message["sequence"] = self.sequence
        return result

    def ReceiveMessage(self, body: dict[str, Any]) -> dict[str, Any]:
        queue = self._queue(body)
        want = body.get("MaxNumberOfMessages", 1)
        locked = {m["Attributes"]["MessageGroupId"] for m in queue["hidden"].values()}
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for message in sorted(queue["visible"].values(), key=lambda m: m["sequence"]):
            group = message["Attributes"]["MessageGroupId"]
            if group not in locked:
                groups[group].append(message)
        out = []
        for messages in groups.values():  # as many of one group as it can, then the next
            for message in messages[: want - len(out)]:
                message_id = message["MessageId"]
                queue["hidden"][message_id] = queue["visible"].pop(message_id)
                public = {k: v for k, v in message.items() if k != "sequence"}
                out.append({**public, "ReceiptHandle": f"{message_id}:{self._id()}"})
            if len(out) >= want:
                break
        return {"Messages": out} if out else {}


def make_fifo_queues(fake: FakeFifoSqs, client: Any, n: int, groups: int) -> tuple[str, str, str]:
    suffix = str(time.monotonic_ns())
    dlq = client.create_queue(QueueName=f"bench-dlq-{suffix}.fifo")["QueueUrl"]
    source = client.create_queue(QueueName=f"bench-{suffix}.fifo")["QueueUrl"]
    arn = f"arn:aws:sqs:us-east-1:123456789012:bench-{suffix}.fifo"
    for start in range(0, n, 10):
        entries = []
        for i in range(start, min(n, start + 10)):
            group = f"g{i % groups}"
            body = {"id": i, "group": group, "detail-type": "OrderPaid", "detail": {}}
            entries.append(
                {"Id": str(i - start), "MessageBody": json.dumps(body), "MessageGroupId": group}
            )
        fake.SendMessageBatch({"QueueUrl": dlq, "Entries": entries})
    return dlq, source, arn


def in_order(fake: FakeFifoSqs, source: str) -> bool:
    """Whether every group arrived in the order it had in the DLQ."""
    arrived = sorted(fake.queues[source]["visible"].values(), key=lambda m: m["sequence"])
    last: dict[str, int] = {}
    for message in arrived:
        body = json.loads(message["Body"])
        if body["id"] < last.get(body["group"], -1):
            return False
        last[body["group"]] = body["id"]
    return True


def measure(n: int, groups: int, concurrency: int, latency: float = 0.0) -> dict[str, Any]:
    fake = FakeFifoSqs()
    plain = base.plain_client(fake)
    calls: Counter[str] = Counter()
    for ours in base.engine_clients(fake):
        ours.meta.events.register("before-call.*.*", lambda model, **kw: calls.update([model.name]))
    dlq, source, arn = make_fifo_queues(fake, plain, n, groups)
    calls.clear()
    fake.latency = latency
    started = time.perf_counter()
    op = base.run_engine(dlq, arn, concurrency=concurrency)
    seconds = time.perf_counter() - started
    moved = max(1, op.moved)
    return {
        "op": op,
        "seconds": seconds,
        "rate": op.moved / seconds,
        "calls": sum(calls.values()) / moved,
        "sends": calls["SendMessageBatch"] / moved,
        "receives": calls["ReceiveMessage"] / moved,
        "in_order": in_order(fake, source),
    }


def cost(n: int) -> None:
    print(f"FIFO redrive of N = {n}: AWS calls per message moved (standard queue: 0.30)")
    for groups in (n, 100, 50, 10, 3, 1):
        for concurrency in (1, 8):
            m = measure(n, groups, concurrency)
            op = m["op"]
            print(
                f"  {groups:>5} groups of {n // groups:>4}, concurrency {concurrency}: moved "
                f"{op.moved} ({op.state}), {m['calls']:.3f} calls a message ({m['sends']:.3f} "
                f"sends, {m['receives']:.3f} receives), in order: "
                f"{'yes' if m['in_order'] else 'NO'}, {m['seconds']:.2f} s"
            )


def throughput(latency_ms: float, rounds: int, n: int = 1000, groups: int = 50) -> None:
    print(f"\n== {latency_ms:g} ms a call, N = {n} messages in {groups} groups, {rounds} rounds")
    rates: dict[int, list[float]] = {1: [], 8: []}
    calls: dict[int, list[float]] = {1: [], 8: []}
    for _ in range(rounds):
        for concurrency in rates:
            m = measure(n, groups, concurrency, latency_ms / 1000)
            assert (m["op"].state, m["op"].moved, m["in_order"]) == ("succeeded", n, True), m
            rates[concurrency].append(m["rate"])
            calls[concurrency].append(m["calls"])
    for concurrency, values in rates.items():
        print(
            f"  concurrency {concurrency}: {base.spread(values, ' msg/s')}; "
            f"calls/message {base.spread(calls[concurrency], '', 3)}"
        )
    ratios = [eight / one for one, eight in zip(rates[1], rates[8], strict=True)]
    print(f"  8 pipelines x one loop: {base.spread(ratios, '', 2)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=20)
    args = parser.parse_args()
    base.setup_django()
    cost(args.n)
    throughput(args.latency_ms, args.rounds)


if __name__ == "__main__":
    main()
