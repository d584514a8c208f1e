"""Benchmark of the client-side redrive (operations/redrive.py) behind real network latency.

    .venv/bin/python bench/redrive.py                          # throughput, then memory
    .venv/bin/python bench/redrive.py --latencies 20 --rounds 5 --n 1000
    .venv/bin/python bench/redrive.py --memory-only --messages 1000,100000
    .venv/bin/python bench/redrive.py --memory-only --messages 1000000   # separately: long

What it runs: an SQS stand-in (``FakeSqs``, an in-memory SQS answering botocore's JSON
protocol over HTTP) in a separate process, behind a small threaded HTTP proxy that adds a
fixed delay to every request (0, 20 and 50 ms: a same-Region round trip is 10-50 ms).
boto3 reaches it through ``AWS_ENDPOINT_URL``, so every call pays serialisation, HTTP and
the delay, as against SQS. ``--backend moto`` puts moto's ThreadedMotoServer behind the
proxy instead; moto's ReceiveMessage scans the whole queue on every call (about 44 msg/s
at 500 messages), which then measures moto, not the redrive: use it with a small ``--n``.

Printed, for each latency, each round (all rounds, then median and range; at least 5):
- messages/s of a plain boto3 loop (receive 10 with WaitTimeSeconds=1, send them as one
  batch, delete the sent ones, until a receive is empty) and of ``manage.py redrive --yes
  --wait`` at ``--concurrency`` 1, 4, 8 and 16. The command's time includes its setup
  calls (GetQueueUrl, GetQueueAttributes, ListDeadLetterSourceQueues, the destination)
  and its final receive with the same 1 s wait as the plain loop's last receive; the
  stand-in holds an empty long poll for its wait time, as SQS does.
- the speed-up of each against the plain loop (median of the per-round ratios); the
  command ends when the queue's depth says nothing is left, without waiting out a last
  empty long poll, so the plain loop is also shown without its last receive;
- AWS calls per message moved, counted at the proxy, setup calls included.
Targets at 20 ms: concurrency 8 >= 3.5x the plain loop and > 500 msg/s; <= 0.32 calls
per message.

Memory (``--memory-only`` or after the throughput): each N runs ``manage.py redrive
--wait`` at the default concurrency in its own subprocess (the SQS stand-in is another
process, not counted), and prints the process's peak RSS (VmHWM) and its RSS before the
redrive. Targets: growth from 1,000 to 100,000 messages <= 50 MB; peak at 1,000,000
<= 150 MB (a 1,000,000 run takes about 10 minutes; bench/redrive_memory.py measures the
engine's per-message state alone, without HTTP, in bytes a message).
"""

from __future__ import annotations

import argparse
import atexit
import http.client
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
# The embedded default database (a SQLite file in WAL mode under EVENTOPS_VAR_DIR), in a
# directory of this run's own: an in-memory database would count its rows (the ledger) in
# the redrive's own memory, which neither that file nor PostgreSQL does.
os.environ.pop("DATABASE_URL", None)
_VAR = Path(tempfile.mkdtemp(prefix="bench-redrive-"))
os.environ["EVENTOPS_VAR_DIR"] = str(_VAR)
atexit.register(shutil.rmtree, _VAR, ignore_errors=True)
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

ACCOUNT = "123456789012"
CONCURRENCIES = (1, 4, 8, 16)


# --- the SQS stand-in ------------------------------------------------------------------


class FakeSqs:
    """In-memory SQS for the operations the redrive uses.

    Used two ways: over HTTP (``serve``, the throughput and memory runs) and as a botocore
    ``before-send`` handler (``attach``; bench/redrive_fifo.py). A queue filled with
    ``fill_lazy`` makes its messages when they are first received, so a million-message
    DLQ costs the stand-in nothing until it is read."""

    def __init__(self, latency: float = 0.0) -> None:
        self.queues: dict[str, dict[str, Any]] = {}
        self.counter = 0
        # Seconds each in-process call takes (``attach`` only; the proxy adds it over HTTP).
        self.latency = latency
        self.lock = threading.Lock()

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-send.sqs", self.handle)

    def _queue(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.queues[body["QueueUrl"]]

    def _id(self) -> str:
        # A UUID, as SQS's message IDs are (the engine packs them: redrive_ids).
        self.counter += 1
        return str(uuid.UUID(int=self.counter))

    def call(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """One action, as the HTTP server runs it (an empty long poll waits unlocked)."""
        wait = float(body.get("WaitTimeSeconds") or 0) if action == "ReceiveMessage" else 0
        deadline = time.monotonic() + wait
        while True:
            with self.lock:
                result = getattr(self, action)(body)
            if result or time.monotonic() >= deadline:
                return result
            time.sleep(0.05)

    def handle(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        action = request.headers["X-Amz-Target"].decode().split(".", 1)[1]
        body = json.loads(request.body or b"{}")
        with self.lock:  # the engine's pipelines call from several threads
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
        url = f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/{body['QueueName']}"
        self.queues.setdefault(
            url,
            {
                "visible": {},
                "hidden": {},
                "attributes": body.get("Attributes", {}),
                "lazy": [0, 0],
                "received": 0,
            },
        )
        return {"QueueUrl": url}

    def GetQueueUrl(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"QueueUrl": f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/{body['QueueName']}"}

    def GetQueueAttributes(self, body: dict[str, Any]) -> dict[str, Any]:
        queue = self._queue(body)
        name = body["QueueUrl"].rsplit("/", 1)[-1]
        lazy = queue.get("lazy", [0, 0])
        return {
            "Attributes": {
                "QueueArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}",
                "ApproximateNumberOfMessages": str(len(queue["visible"]) + lazy[1] - lazy[0]),
                "ApproximateNumberOfMessagesNotVisible": str(len(queue["hidden"])),
                "ApproximateNumberOfMessagesDelayed": "0",
                **queue["attributes"],
            }
        }

    def SendMessageBatch(self, body: dict[str, Any]) -> dict[str, Any]:
        queue = self._queue(body)
        ok = []
        for entry in body["Entries"]:
            message_id = self._id()
            if not queue["attributes"].get("BenchCountOnly"):
                queue["visible"][message_id] = {
                    "MessageId": message_id,
                    "Body": entry["MessageBody"],
                    "MD5OfBody": "0" * 32,
                    "MessageAttributes": entry.get("MessageAttributes", {}),
                    "Attributes": {"SentTimestamp": str(int(time.time() * 1000))},
                }
            queue["received"] = queue.get("received", 0) + 1
            ok.append({"Id": entry["Id"], "MessageId": message_id, "MD5OfMessageBody": "0" * 32})
        return {"Successful": ok, "Failed": []}

    def ReceiveMessage(self, body: dict[str, Any]) -> dict[str, Any]:
        queue = self._queue(body)
        wanted = body.get("MaxNumberOfMessages", 1)
        out = []
        for message_id in list(queue["visible"])[:wanted]:
            message = queue["hidden"][message_id] = queue["visible"].pop(message_id)
            out.append({**message, "ReceiptHandle": f"{message_id}:{self._id()}"})
        lazy = queue.get("lazy", [0, 0])
        while len(out) < wanted and lazy[0] < lazy[1]:
            message = lazy_message(lazy[0], queue["attributes"].get("BenchSentMs", "0"))
            lazy[0] += 1
            queue["hidden"][message["MessageId"]] = message
            out.append({**message, "ReceiptHandle": f"{message['MessageId']}:{self._id()}"})
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
            if message_id in queue["hidden"] and not entry.get("VisibilityTimeout"):
                queue["visible"][message_id] = queue["hidden"].pop(message_id)
        return {"Successful": [{"Id": e["Id"]} for e in body["Entries"]], "Failed": []}

    def ListDeadLetterSourceQueues(self, body: dict[str, Any]) -> dict[str, Any]:
        arn = self.GetQueueAttributes(body)["Attributes"]["QueueArn"]
        urls = [
            url
            for url, queue in self.queues.items()
            if arn in str(queue["attributes"].get("RedrivePolicy", ""))
        ]
        return {"queueUrls": urls}

    def BenchFill(self, body: dict[str, Any]) -> dict[str, Any]:
        """Put ``Count`` messages in the queue, made when first received."""
        queue = self._queue(body)
        queue["attributes"]["BenchSentMs"] = str(int(time.time() * 1000) - 1000)
        queue["lazy"] = [0, int(body["Count"])]
        return {}

    def BenchCount(self, body: dict[str, Any]) -> dict[str, Any]:
        """How many messages a (count-only) queue was sent, and how many its DLQ holds."""
        queue = self._queue(body)
        return {"Received": queue.get("received", 0)}


def lazy_message(i: int, sent_ms: str) -> dict[str, Any]:
    detail = {"correlationId": f"c-{i}", "orderId": f"o-{i}", "amount": i}
    message_id = f"{i:08d}-0000-4000-8000-{i:012d}"
    return {
        "MessageId": message_id,
        "Body": json.dumps({"id": f"e-{i}", "detail-type": "OrderPaid", "detail": detail}),
        "MD5OfBody": "0" * 32,
        "MessageAttributes": {"correlation_id": {"DataType": "String", "StringValue": f"c-{i}"}},
        "Attributes": {"SentTimestamp": sent_ms, "ApproximateReceiveCount": "1"},
    }


# --- the HTTP side: the stand-in's server and the latency proxy --------------------------


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are two writes: with Nagle's algorithm each answer would wait for
    # the client's delayed ACK (40 ms), an artefact no SQS endpoint has.
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amzn-RequestId", "bench")
        self.end_headers()
        self.wfile.write(payload)


def sqs_server(fake: FakeSqs) -> ThreadingHTTPServer:
    class Handler(_Quiet):
        def do_POST(self) -> None:
            action = self.headers.get("X-Amz-Target", "").split(".")[-1]
            result = fake.call(action, json.loads(self._body() or b"{}"))
            self._answer(200, json.dumps(result).encode(), "application/x-amz-json-1.0")

    return _server(Handler)


def _server(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    class Server(ThreadingHTTPServer):
        daemon_threads = True
        # 16 pipelines and a plain client connect at once: the default backlog (5) resets.
        request_queue_size = 128

    return Server(("127.0.0.1", 0), handler)


class ProxyState:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.latency = 0.0
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.local = threading.local()

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            host, port = self.upstream.rsplit("//", 1)[1].split(":")
            connection = self.local.connection = http.client.HTTPConnection(host, int(port))
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()


def latency_proxy(state: ProxyState) -> ThreadingHTTPServer:
    """Forwards every request to the upstream, ``state.latency`` seconds later; counts them.
    ``POST /__control`` sets the latency and returns (and resets) the counts."""

    class Handler(_Quiet):
        def do_POST(self) -> None:
            body = self._body()
            if self.path == "/__control":
                order = json.loads(body)
                with state.lock:
                    counts = dict(state.calls)
                    if order.get("reset"):
                        state.calls.clear()
                    if "latency_ms" in order:
                        state.latency = float(order["latency_ms"]) / 1000
                self._answer(200, json.dumps(counts).encode(), "application/json")
                return
            target = self.headers.get("X-Amz-Target", "") or self.path
            with state.lock:
                state.calls[target.split(".")[-1]] += 1
            if state.latency:
                time.sleep(state.latency)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            status, response_headers, payload = state.forward("POST", self.path, headers, body)
            self.send_response(status)
            for name, value in response_headers:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return _server(Handler)


def serve(backend: str) -> None:
    """In a subprocess: the SQS stand-in (or moto) and the proxy; prints both URLs."""
    if backend == "moto":
        from moto.server import ThreadedMotoServer

        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        host, port = moto.get_host_and_port()
        upstream = f"http://{host}:{port}"
    else:
        server = sqs_server(FakeSqs())
        threading.Thread(target=server.serve_forever, daemon=True).start()
        upstream = f"http://127.0.0.1:{server.server_address[1]}"
    proxy = latency_proxy(ProxyState(upstream))
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    print(
        json.dumps({"proxy": f"http://127.0.0.1:{proxy.server_address[1]}", "upstream": upstream})
    )
    sys.stdout.flush()
    sys.stdin.read()  # until the parent goes away


class Backend:
    """The serving subprocess, seen from the bench."""

    def __init__(self, backend: str) -> None:
        self.kind = backend
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--backend", backend],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        urls = json.loads(self.process.stdout.readline())
        self.proxy, self.upstream = urls["proxy"], urls["upstream"]

    def control(self, **order: Any) -> dict[str, int]:
        request = urllib.request.Request(
            self.proxy + "/__control", data=json.dumps(order).encode(), method="POST"
        )
        with urllib.request.urlopen(request) as response:
            return dict(json.loads(response.read()))

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.terminate()
        self.process.wait(timeout=10)


# --- the two sides measured --------------------------------------------------------------


def setup_django() -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def plain_client(fake: FakeSqs | None = None, endpoint: str | None = None) -> Any:
    """A plain boto3 client: default retries and pool, what a hand-written script uses."""
    import boto3

    client = boto3.client("sqs", region_name="us-east-1", endpoint_url=endpoint)
    if fake is not None:
        fake.attach(client)
    return client


def engine_clients(fake: FakeSqs | None) -> list[Any]:
    """The engine's two SQS clients (ordinary and bulk), ``fake`` attached in-process."""
    from operations.aws import client as aws_client

    aws_client.reset()
    clients = [aws_client.client("sqs"), aws_client.client("sqs", bulk=True)]
    if fake is not None:
        for client in clients:
            fake.attach(client)
    return clients


def make_queues(client: Any, n: int, fake: FakeSqs | None = None) -> tuple[str, str, str]:
    """A source queue whose RedrivePolicy names a DLQ holding ``n`` event messages:
    (dlq url, source url, source arn). Over HTTP (``fake`` None) the DLQ is filled with
    BenchFill straight at the stand-in; with ``fake`` in-process, through its storage."""
    suffix = str(time.monotonic_ns())
    dlq = client.create_queue(QueueName=f"bench-{suffix}-dlq")["QueueUrl"]
    dlq_arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:bench-{suffix}-dlq"
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
    source = client.create_queue(QueueName=f"bench-{suffix}", Attributes={"RedrivePolicy": policy})[
        "QueueUrl"
    ]
    source_arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:bench-{suffix}"
    if fake is not None:
        for start in range(0, n, 10):
            entries = [
                {"Id": str(i - start), "MessageBody": lazy_message(i, "0")["Body"]}
                for i in range(start, min(n, start + 10))
            ]
            fake.SendMessageBatch({"QueueUrl": dlq, "Entries": entries})
    return dlq, source, source_arn


def fill(backend: Backend, client: Any, n: int) -> tuple[str, str]:
    """A DLQ (with its source) holding ``n`` messages: (dlq url, dlq name)."""
    dlq, source, _ = make_queues(client, 0)
    if backend.kind == "moto":
        for start in range(0, n, 10):
            entries = [
                {"Id": str(i), "MessageBody": lazy_message(start + i, "0")["Body"]}
                for i in range(min(10, n - start))
            ]
            client.send_message_batch(QueueUrl=dlq, Entries=entries)
    else:
        direct(backend, "BenchFill", {"QueueUrl": dlq, "Count": n})
    return dlq, dlq.rsplit("/", 1)[1]


def direct(backend: Backend, action: str, body: dict[str, Any]) -> dict[str, Any]:
    """An action at the stand-in itself, bypassing the proxy (not counted, no delay)."""
    request = urllib.request.Request(
        backend.upstream,
        data=json.dumps(body).encode(),
        headers={"X-Amz-Target": f"AmazonSQS.{action}"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        return dict(json.loads(response.read()))


def plain_loop(client: Any, dlq: str, source: str, wait_seconds: int = 1) -> int:
    """The reference: receive 10 (long poll, as the command's wait), send them as one
    batch, delete the sent ones, until a receive is empty."""
    moved = 0
    while True:
        plain_loop.last_receive = time.perf_counter()  # type: ignore[attr-defined]
        messages = client.receive_message(
            QueueUrl=dlq,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_seconds,
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


def run_engine(dlq: str, source_arn: str, concurrency: int | None = None) -> Any:
    """The engine without the command (bench/redrive_fifo.py), waiting 0 s at the end."""
    from operations import redrive as engine
    from operations.models import Operation

    params = engine.RedriveParams(
        destination_arn=source_arn, wait_seconds=0, concurrency=concurrency
    )
    op = Operation.objects.create(
        kind=Operation.Kind.REDRIVE,
        target=dlq,
        parameters=params.to_parameters(),
        reason="bench",
        requested_by_name="bench",
    )
    return engine.run_inline(op)


def run_command(name: str, concurrency: int | None) -> Any:
    """``manage.py redrive NAME --yes --wait [--concurrency C]`` as an operator runs it,
    setup included; the cached reads it makes (the DLQ's sources) start cold."""
    from django.core.cache import cache
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from operations.aws import client as aws_client
    from operations.models import Operation

    cache.clear()
    aws_client.reset()
    args = [name, "--yes", "--wait", "--reason", "bench"]
    if concurrency is not None:
        args += ["--concurrency", str(concurrency)]
    try:
        call_command("redrive", *args, stdout=io.StringIO())
    except CommandError as exc:
        raise SystemExit(f"the command failed: {exc}") from exc
    return Operation.objects.order_by("-pk").first()


# --- throughput ----------------------------------------------------------------------------


def spread(values: list[float], unit: str = "", digits: int = 0) -> str:
    shown = ", ".join(f"{v:.{digits}f}" for v in values)
    return (
        f"median {statistics.median(values):.{digits}f}{unit}, range "
        f"{min(values):.{digits}f}-{max(values):.{digits}f} ({shown})"
    )


def throughput(backend: Backend, latency_ms: float, n: int, rounds: int) -> dict[str, Any]:
    from django.conf import settings

    plain = plain_client(endpoint=backend.proxy)
    backend.control(latency_ms=latency_ms, reset=True)
    rates: dict[str, list[float]] = {"plain": [], "plain_no_wait": []}
    ratios: dict[str, list[float]] = {}
    calls: dict[str, list[float]] = {"plain": []}
    detail: dict[str, dict[str, int]] = {}
    for _ in range(rounds):
        dlq, _name = fill(backend, plain, n)
        source = dlq.removesuffix("-dlq")
        backend.control(reset=True)
        started = time.perf_counter()
        moved = plain_loop(plain, dlq, source)
        ended = time.perf_counter()
        seconds = ended - started
        # The same loop, had it known the queue was empty without its last long poll.
        rates.setdefault("plain_no_wait", []).append(
            n / (plain_loop.last_receive - started)  # type: ignore[attr-defined]
        )
        counted = backend.control(reset=True)
        assert moved == n, f"plain loop moved {moved} of {n}"
        rates["plain"].append(n / seconds)
        calls["plain"].append(sum(counted.values()) / n)
        for concurrency in CONCURRENCIES:
            key = f"c{concurrency}"
            dlq, name = fill(backend, plain, n)
            backend.control(reset=True)
            started = time.perf_counter()
            op = run_command(name, concurrency)
            seconds = time.perf_counter() - started
            counted = backend.control(reset=True)
            assert (op.state, op.moved) == ("succeeded", n), (op.state, op.moved, op.error)
            rates.setdefault(key, []).append(n / seconds)
            ratios.setdefault(key, []).append(rates[key][-1] / rates["plain"][-1])
            calls.setdefault(key, []).append(sum(counted.values()) / n)
            detail[key] = counted
    print(
        f"\n== {latency_ms:g} ms added to every call, N = {n} messages, {rounds} rounds "
        f"(backend {backend.kind}; default concurrency {settings.EVENTOPS_REDRIVE_CONCURRENCY})"
    )
    print(f"  plain boto3 loop:   {spread(rates['plain'], ' msg/s')}")
    print(f"                      calls/message {spread(calls['plain'], '', 3)}")
    print(f"    without its last (empty, 1 s) receive: {spread(rates['plain_no_wait'], ' msg/s')}")
    for concurrency in CONCURRENCIES:
        key = f"c{concurrency}"
        print(f"  redrive -c {concurrency:<2}:      {spread(rates[key], ' msg/s')}")
        print(f"                      x plain loop {spread(ratios[key], '', 2)}")
        print(f"                      calls/message {spread(calls[key], '', 3)}")
    print(f"  calls of the last round at concurrency 8: {detail.get('c8')}")
    return {"rates": rates, "ratios": ratios, "calls": calls}


def verdict(latency_ms: float, result: dict[str, Any]) -> None:
    if latency_ms != 20:
        return
    rate = statistics.median(result["rates"]["c8"])
    ratio = statistics.median(result["ratios"]["c8"])
    no_wait = statistics.median(result["rates"]["c8"]) / statistics.median(
        result["rates"]["plain_no_wait"]
    )
    calls = statistics.median(result["calls"]["c8"])
    print(
        f"  targets at 20 ms, concurrency 8 (medians): {ratio:.2f}x the plain loop "
        f"(>= 3.5: {'yes' if ratio >= 3.5 else 'NO'}), {rate:.0f} msg/s "
        f"(> 500: {'yes' if rate > 500 else 'NO'}), {calls:.3f} calls/message "
        f"(<= 0.32: {'yes' if calls <= 0.32 else 'NO'}); {no_wait:.2f}x the plain loop "
        "without its last receive's wait"
    )


# --- memory ----------------------------------------------------------------------------------


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


def memory_child(n: int, backend_kind: str, proxy: str, upstream: str) -> None:
    """In a subprocess: redrive ``n`` messages with the command; print the peak RSS."""
    os.environ["AWS_ENDPOINT_URL"] = proxy
    setup_django()
    backend = Backend.__new__(Backend)
    backend.kind, backend.proxy, backend.upstream = backend_kind, proxy, upstream
    dlq, name = fill(backend, plain_client(endpoint=proxy), n)
    # The destination keeps only a count: the stand-in is not what is measured.
    before = memory_kb("VmRSS")
    started = time.perf_counter()
    op = run_command(name, None)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "n": n,
                "moved": op.moved,
                "state": op.state,
                "before_kb": before,
                "peak_kb": memory_kb("VmHWM"),
                "s": seconds,
            }
        )
    )


def memory(backend: Backend, sizes: list[int]) -> None:
    backend.control(latency_ms=0, reset=True)
    results = []
    print("\n== memory: manage.py redrive --wait at the default concurrency, 0 ms added")
    for n in sizes:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--memory-child",
                str(n),
                "--backend",
                backend.kind,
                "--proxy",
                backend.proxy,
                "--upstream",
                backend.upstream,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode:
            print(out.stderr[-3000:])
            raise SystemExit(f"memory run of {n} failed")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(result)
        print(
            f"  N = {n:>9,}: {result['state']}, moved {result['moved']:,} in {result['s']:.0f} s "
            f"({result['moved'] / max(result['s'], 1e-9):.0f} msg/s); peak RSS "
            f"{result['peak_kb'] / 1024:.1f} MB (before the redrive "
            f"{result['before_kb'] / 1024:.1f} MB)"
        )
    by_n = {r["n"]: r for r in results}
    if 1000 in by_n and 100_000 in by_n:
        growth = (by_n[100_000]["peak_kb"] - by_n[1000]["peak_kb"]) / 1024
        print(f"  growth 1,000 -> 100,000: {growth:.1f} MB (target <= 50 MB)")
    if 1_000_000 in by_n:
        peak = by_n[1_000_000]["peak_kb"] / 1024
        print(f"  peak at 1,000,000: {peak:.1f} MB (target <= 150 MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="messages per throughput round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latencies", default="0,20,50", help="ms added per call")
    parser.add_argument("--messages", default="1000,100000", help="memory runs (N each)")
    parser.add_argument("--memory-only", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--backend", choices=("fake", "moto"), default="fake")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--memory-child", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--proxy", default="", help=argparse.SUPPRESS)
    parser.add_argument("--upstream", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.backend)
        return
    if args.memory_child:
        memory_child(args.memory_child, args.backend, args.proxy, args.upstream)
        return
    if args.rounds < 5:
        parser.error("--rounds: at least 5 (medians and ranges, never one lucky round)")
    started = time.perf_counter()
    backend = Backend(args.backend)
    try:
        os.environ["AWS_ENDPOINT_URL"] = backend.proxy
        setup_django()
        if not args.memory_only:
            for latency in [float(x) for x in args.latencies.split(",") if x]:
                verdict(latency, throughput(backend, latency, args.n, args.rounds))
        if not args.no_memory:
            memory(backend, [int(n) for n in args.messages.split(",") if n])
    finally:
        backend.close()
    print(f"bench took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
