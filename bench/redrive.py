"""Benchmark of the client-side redrive engine (operations/redrive.py).

    .venv/bin/python bench/redrive.py [--n 2000] [--rss-sizes 1000,10000]

Prints:
1. AWS API calls per message moved (target <= 0.32: receive 10 + send 10 + delete 10);
2. the wall-time ratio of the engine against a plain boto3 receive/send/delete batch
   loop in the same process, same N (target <= 1.2);
3. peak RSS (VmHWM) of a process that redrives N = 1,000 and N = 10,000 messages
   (target: at most 20 MB apart).

By default the AWS side is a small in-memory SQS answering botocore's JSON protocol
in-process (``FakeSqs``, below): full botocore serialisation and parsing, both for
the engine and for the plain loop, but no emulator cost. moto's ReceiveMessage scans
every message of the queue several times per call (about 0.5 s per receive at 1,000
messages on a busy machine), so ``--backend moto`` is practical only for small N.
Peak RSS runs each N in its own subprocess; the fake queue's storage (about 0.4 KB a
message) is included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ["DATABASE_URL"] = "sqlite://:memory:"
for key, value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "LOG_LEVEL": "WARNING",
    # DEBUG keeps every SQL query in memory (connection.queries): not what production runs.
    "DEBUG": "false",
    "SECRET_KEY": "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
}.items():
    os.environ.setdefault(key, value)
os.environ.pop("AWS_PROFILE", None)


class FakeSqs:
    """In-memory SQS for the operations the redrive uses, wired in as a botocore
    ``before-send`` handler so requests and responses go through botocore as usual."""

    def __init__(self, latency: float = 0.0) -> None:
        self.queues: dict[str, dict[str, Any]] = {}
        self.counter = 0
        # Seconds each call takes, as a stand-in for the network round trip to SQS.
        self.latency = latency

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-send.sqs", self.handle)

    def _queue(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.queues[body["QueueUrl"]]

    def _id(self) -> str:
        self.counter += 1
        return f"{self.counter:032x}"

    def handle(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        action = request.headers["X-Amz-Target"].decode().split(".", 1)[1]
        body = json.loads(request.body or b"{}")
        result = getattr(self, action)(body)
        raw = json.dumps(result).encode()
        if self.latency:
            time.sleep(self.latency)

        class Raw:
            def stream(self, **_: Any) -> Any:
                yield raw

        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "bench"}
        return AWSResponse(request.url, 200, headers, Raw())

    def CreateQueue(self, body: dict[str, Any]) -> dict[str, Any]:
        url = f"https://sqs.us-east-1.amazonaws.com/123456789012/{body['QueueName']}"
        self.queues.setdefault(
            url, {"visible": {}, "hidden": {}, "attributes": body.get("Attributes", {})}
        )
        return {"QueueUrl": url}

    def GetQueueUrl(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"QueueUrl": f"https://sqs.us-east-1.amazonaws.com/123456789012/{body['QueueName']}"}

    def GetQueueAttributes(self, body: dict[str, Any]) -> dict[str, Any]:
        queue = self._queue(body)
        name = body["QueueUrl"].rsplit("/", 1)[-1]
        return {
            "Attributes": {
                "QueueArn": f"arn:aws:sqs:us-east-1:123456789012:{name}",
                "ApproximateNumberOfMessages": str(len(queue["visible"])),
                "ApproximateNumberOfMessagesNotVisible": str(len(queue["hidden"])),
                **queue["attributes"],
            }
        }

    def SendMessageBatch(self, body: dict[str, Any]) -> dict[str, Any]:
        queue = self._queue(body)
        ok = []
        for entry in body["Entries"]:
            message_id = self._id()
            queue["visible"][message_id] = {
                "MessageId": message_id,
                "Body": entry["MessageBody"],
                "MD5OfBody": "0" * 32,
                "MessageAttributes": entry.get("MessageAttributes", {}),
                "Attributes": {"SentTimestamp": str(int(time.time() * 1000))},
            }
            ok.append({"Id": entry["Id"], "MessageId": message_id, "MD5OfMessageBody": "0" * 32})
        return {"Successful": ok, "Failed": []}

    def ReceiveMessage(self, body: dict[str, Any]) -> dict[str, Any]:
        queue = self._queue(body)
        out = []
        for message_id in list(queue["visible"])[: body.get("MaxNumberOfMessages", 1)]:
            message = queue["hidden"][message_id] = queue["visible"].pop(message_id)
            handle = f"{message_id}:{self._id()}"
            out.append({**message, "ReceiptHandle": handle})
        return {"Messages": out} if out else {}

    def DeleteMessageBatch(self, body: dict[str, Any]) -> dict[str, Any]:
        queue = self._queue(body)
        for entry in body["Entries"]:
            queue["hidden"].pop(entry["ReceiptHandle"].split(":", 1)[0], None)
        return {"Successful": [{"Id": e["Id"]} for e in body["Entries"]], "Failed": []}

    def ChangeMessageVisibilityBatch(self, body: dict[str, Any]) -> dict[str, Any]:
        queue = self._queue(body)
        for entry in body["Entries"]:
            message_id = entry["ReceiptHandle"].split(":", 1)[0]
            if message_id in queue["hidden"]:
                queue["visible"][message_id] = queue["hidden"].pop(message_id)
        return {"Successful": [{"Id": e["Id"]} for e in body["Entries"]], "Failed": []}

    def ListDeadLetterSourceQueues(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"queueUrls": []}


def setup_django() -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def plain_client(fake: FakeSqs | None) -> Any:
    import boto3

    client = boto3.client("sqs", region_name="us-east-1")
    if fake is not None:
        fake.attach(client)
    return client


def engine_clients(fake: FakeSqs | None) -> list[Any]:
    """The engine's two SQS clients: the ordinary one and the bulk one of the message calls."""
    from operations.aws import client as aws_client

    aws_client.reset()
    clients = [aws_client.client("sqs"), aws_client.client("sqs", bulk=True)]
    if fake is not None:
        for client in clients:
            fake.attach(client)
    return clients


def make_queues(client: Any, n: int, fake: FakeSqs | None = None) -> tuple[str, str, str]:
    """A source queue and its DLQ holding ``n`` event messages: (dlq url, source url, arn).
    With ``fake`` the messages are put straight into its storage (faster than SendMessageBatch)."""
    suffix = str(time.monotonic_ns())
    dlq = client.create_queue(QueueName=f"bench-dlq-{suffix}")["QueueUrl"]
    source = client.create_queue(QueueName=f"bench-{suffix}")["QueueUrl"]
    source_arn = client.get_queue_attributes(QueueUrl=source, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    for start in range(0, n, 10):
        entries = []
        for i in range(start, min(n, start + 10)):
            detail = {"correlationId": f"c-{i}", "orderId": f"o-{i}", "amount": i}
            body = json.dumps({"id": f"e-{i}", "detail-type": "OrderPaid", "detail": detail})
            attribute = {"DataType": "String", "StringValue": f"c-{i}"}
            entries.append(
                {
                    "Id": str(i - start),
                    "MessageBody": body,
                    "MessageAttributes": {"correlation_id": attribute},
                }
            )
        if fake is not None:
            fake.SendMessageBatch({"QueueUrl": dlq, "Entries": entries})
        else:
            client.send_message_batch(QueueUrl=dlq, Entries=entries)
    return dlq, source, source_arn


def plain_loop(client: Any, dlq: str, source: str) -> int:
    """The reference: receive 10, send them as a batch, delete the sent ones, until empty."""
    moved = 0
    while True:
        messages = client.receive_message(
            QueueUrl=dlq,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return moved
        entries = [
            {
                "Id": str(i),
                "MessageBody": m["Body"],
                "MessageAttributes": m.get("MessageAttributes", {}),
            }
            for i, m in enumerate(messages)
        ]
        sent = {
            e["Id"]
            for e in client.send_message_batch(QueueUrl=source, Entries=entries)["Successful"]
        }
        client.delete_message_batch(
            QueueUrl=dlq,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(messages)
                if str(i) in sent
            ],
        )
        moved += len(sent)


def run_engine(dlq: str, source_arn: str) -> Any:
    from operations import redrive as engine
    from operations.models import Operation

    params = engine.RedriveParams(destination_arn=source_arn, wait_seconds=0)
    op = Operation.objects.create(
        kind=Operation.Kind.REDRIVE,
        target=dlq,
        parameters=params.to_parameters(),
        reason="bench",
        requested_by_name="bench",
    )
    return engine.run_inline(op)


def calls_and_ratio(n: int, backend: str, latency: float = 0.0) -> None:
    from moto import mock_aws

    with mock_aws() if backend == "moto" else contextlib.nullcontext():
        fake = FakeSqs(latency) if backend == "fake" else None
        plain = plain_client(fake)
        calls: Counter[str] = Counter()
        for ours in engine_clients(fake):
            ours.meta.events.register(
                "before-call.*.*", lambda model, **kw: calls.update([model.name])
            )
        engine_times: list[float] = []
        plain_times: list[float] = []
        # Alternate the two and keep the best of each: the machine's load varies more than
        # either side does. 7 rounds at zero latency (0.3 s each), 3 with latency, 1 on moto.
        rounds = (7 if not latency else 3) if backend == "fake" else 1
        for _ in range(rounds):
            dlq, _, source_arn = make_queues(plain, n, fake)
            calls.clear()
            started = time.perf_counter()
            op = run_engine(dlq, source_arn)
            engine_times.append(time.perf_counter() - started)
            engine_calls = sum(calls.values())
            engine_detail = dict(calls)

            dlq2, source2, _ = make_queues(plain, n, fake)
            started = time.perf_counter()
            plain_moved = plain_loop(plain, dlq2, source2)
            plain_times.append(time.perf_counter() - started)

    where = f"{backend}, {latency * 1000:.0f} ms a call" if backend == "fake" else backend
    print(
        f"backend {where}, N = {n}: engine moved {op.moved} (failed {op.failed}), "
        f"plain loop moved {plain_moved}"
    )
    print(f"  AWS calls by the engine: {engine_calls} {engine_detail}")
    print(
        f"  AWS API calls per message moved: {engine_calls / max(1, op.moved):.3f} (target <= 0.32)"
    )
    engine_seconds, plain_seconds = min(engine_times), min(plain_times)
    print(
        f"  wall time (best of {rounds}): engine {engine_seconds:.2f} s, "
        f"plain loop {plain_seconds:.2f} s, "
        f"ratio {engine_seconds / plain_seconds:.2f} (target <= 1.2)"
    )
    if rounds > 1:
        ratios = sorted(e / p for e, p in zip(engine_times, plain_times, strict=True))
        print(
            f"  ratio round by round: median {statistics.median(ratios):.2f}, "
            f"range {ratios[0]:.2f}-{ratios[-1]:.2f} (the machine's noise)"
        )


def memory_kb(field: str) -> int:
    """``VmHWM`` (peak) or ``VmRSS`` (now) of this process, in KiB.

    Not ``ru_maxrss``: a child's ru_maxrss starts at its parent's RSS at fork (Linux keeps
    the larger across exec), so a small child of a big parent would report the parent."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rss_child(n: int, backend: str) -> None:
    """In a subprocess: fill, redrive, report the peak RSS."""
    setup_django()
    from moto import mock_aws

    with mock_aws() if backend == "moto" else contextlib.nullcontext():
        fake = FakeSqs() if backend == "fake" else None
        dlq, _, source_arn = make_queues(plain_client(fake), n, fake)
        engine_clients(fake)
        before = memory_kb("VmRSS")
        started = time.perf_counter()
        op = run_engine(dlq, source_arn)
        seconds = time.perf_counter() - started
        peak = memory_kb("VmHWM")
        # The same run again under tracemalloc: what the redrive itself allocates at most.
        dlq, _, source_arn = make_queues(plain_client(fake), n, fake)
        tracemalloc.start()
        run_engine(dlq, source_arn)
        heap_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    print(
        json.dumps(
            {
                "n": n,
                "moved": op.moved,
                "before_kb": before,
                "peak_kb": peak,
                "s": seconds,
                "heap_peak_kb": heap_peak // 1024,
            }
        )
    )


def rss(sizes: list[int], backend: str) -> None:
    results = []
    for n in sizes:
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, __file__, "--backend", backend, "--rss-child", str(n)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["wall"] = time.perf_counter() - started
        results.append(result)
        print(
            f"N = {n}: moved {result['moved']}, peak RSS {result['peak_kb'] / 1024:.1f} MB "
            f"(before the redrive {result['before_kb'] / 1024:.1f} MB), "
            f"tracemalloc peak of the redrive {result['heap_peak_kb'] / 1024:.1f} MB, "
            f"redrive {result['s']:.1f} s, whole subprocess {result['wall']:.1f} s"
        )
    if len(results) >= 2:
        apart = (results[-1]["peak_kb"] - results[0]["peak_kb"]) / 1024
        heap = (results[-1]["heap_peak_kb"] - results[0]["heap_peak_kb"]) / 1024
        print(
            f"peak RSS apart: {apart:.1f} MB, tracemalloc peaks apart: {heap:.1f} MB "
            "(target <= 20 MB)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rss-sizes", default="1000,10000")
    parser.add_argument("--backend", choices=("fake", "moto"), default="fake")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=10.0,
        help="also compare with this per-call latency (a same-region SQS round trip)",
    )
    parser.add_argument("--rss-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.backend)
        return
    started = time.perf_counter()
    setup_django()
    calls_and_ratio(args.n, args.backend)
    if args.backend == "fake" and args.latency_ms:
        calls_and_ratio(args.n, args.backend, args.latency_ms / 1000)
    rss([int(n) for n in args.rss_sizes.split(",") if n], args.backend)
    print(f"bench took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
