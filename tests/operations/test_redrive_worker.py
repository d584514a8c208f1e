"""End to end with real processes: a Celery worker on Redis kills itself at an exact point
of a redrive (between SendMessageBatch and DeleteMessageBatch, or between a receive and
its send) and a second worker takes the operation over; two command-line starts race for
one DLQ.

The worker, the command and this test share a database (a file SQLite database, or with a
PostgreSQL DATABASE_URL a fresh PostgreSQL one) and a moto server (ThreadedMotoServer,
reached through AWS_ENDPOINT_URL). Redis database 9 is the broker. The kill point is a
hook, not a timing: the first worker's environment names an adapter call and which call
of it SIGKILLs the worker (``KILLTEST_AT=delete_message_batch:3``), installed by the
settings module the test writes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from tests.conftest import FAKE_AWS_ENV

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("EVENTOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
QUEUE = "eventops-redrive-killtest"
MESSAGES = 60

pytestmark = [pytest.mark.slow, pytest.mark.integration]

# With a PostgreSQL DATABASE_URL (CI's second run) the processes share a fresh PostgreSQL
# database, so the partial unique index and the compare-and-set claim are tested where
# production runs them; otherwise a file SQLite database.
PG_URL = (
    os.environ.get("DATABASE_URL", "") if "postgres" in os.environ.get("DATABASE_URL", "") else ""
)

SETTINGS = """
import os

from dashboard.settings import *  # noqa: F403

if os.environ.get("KILLTEST_AT"):
    import killtest_hooks  # noqa: F401

DATABASES = {{"default": {databases}}}
# A short lease, and Redis gives an unacknowledged task back after 6 s (not 1 h).
EVENTOPS_REDRIVE_LEASE_SECONDS = 4
CELERY_BROKER_TRANSPORT_OPTIONS = {{"visibility_timeout": 6, "unacked_restore_interval": 1,
                                   "unacked_restore_throttle": 1}}
CELERY_TASK_DEFAULT_QUEUE = {queue!r}
"""


# Wraps one SQS adapter function so that its Nth call SIGKILLs this process before it
# reaches SQS: a worker dies exactly there, whatever the timing.
HOOKS = """
import os
import signal

from operations.aws import sqs

_name, _nth = os.environ["KILLTEST_AT"].split(":")
_real = getattr(sqs, _name)
_calls = [0]


def _dies_at_the_nth_call(*args, **kwargs):
    _calls[0] += 1
    if _calls[0] == int(_nth):
        os.kill(os.getpid(), signal.SIGKILL)
    return _real(*args, **kwargs)


setattr(sqs, _name, _dies_at_the_nth_call)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], Any], seconds: float, what: str) -> Any:
    """Poll ``check`` until it returns something truthy (a bounded wait, not a timed assert)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _pg_admin(url: str) -> Any:
    import psycopg

    server = urlsplit(url)._replace(path="/postgres").geturl()
    return psycopg.connect(server, autocommit=True)


class World:
    def __init__(self, tmp: Path, endpoint: str) -> None:
        self.tmp = tmp
        self.db = tmp / "eventops.sqlite3"
        self.pg_url = ""
        if PG_URL:
            name = f"eventops_killtest_{uuid.uuid4().hex[:8]}"
            with _pg_admin(PG_URL) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            self.pg_url = urlsplit(PG_URL)._replace(path=f"/{name}").geturl()
            databases = f"dj_database_url.parse({self.pg_url!r})"
        else:
            databases = repr(
                {
                    "ENGINE": "django.db.backends.sqlite3",
                    "NAME": str(self.db),
                    "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
                }
            )
        settings = SETTINGS.format(databases=databases, queue=QUEUE)
        (tmp / "killtest_settings.py").write_text("import dj_database_url\n" + settings)
        (tmp / "killtest_hooks.py").write_text(HOOKS)
        self.env = {
            **os.environ,
            **FAKE_AWS_ENV,
            "PYTHONPATH": f"{tmp}{os.pathsep}{ROOT}",
            "DJANGO_SETTINGS_MODULE": "killtest_settings",
            "REDIS_URL": REDIS_URL,
            "AWS_ENDPOINT_URL": endpoint,
            "EVENTOPS_VAR_DIR": str(tmp),
            "LOG_LEVEL": "WARNING",
        }
        self.sqs = boto3.client(
            "sqs",
            region_name="us-east-1",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        self.workers: list[subprocess.Popen[bytes]] = []

    def manage(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def worker(self, kill_at: str = "") -> subprocess.Popen[bytes]:
        """A Celery worker; ``kill_at`` ("<sqs function>:<n>") makes it die at that call."""
        log = open(self.tmp / f"worker{len(self.workers)}.log", "wb")  # noqa: SIM115
        env = {**self.env, "KILLTEST_AT": kill_at} if kill_at else self.env
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "celery"),
                "-A",
                "dashboard",
                "worker",
                "--pool=solo",
                "-Q",
                QUEUE,
                "--without-gossip",
                "--without-mingle",
                "-l",
                "INFO",
            ],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(proc)
        return proc

    def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """The rows of a query on the workers' database (``?`` placeholders)."""
        if self.pg_url:
            import psycopg
            from psycopg.rows import dict_row

            with psycopg.connect(self.pg_url, row_factory=dict_row) as pg:
                return list(pg.execute(sql.replace("?", "%s"), args).fetchall())
        with sqlite3.connect(self.db) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute(sql, args).fetchall()]

    def operation(self, target: str) -> dict[str, Any] | None:
        found = self.rows(
            "SELECT * FROM operations_operation WHERE target = ? ORDER BY id DESC", target
        )
        return found[0] if found else None

    def drop_database(self) -> None:
        """The PostgreSQL database this world made (nothing on SQLite)."""
        if self.pg_url:
            with _pg_admin(PG_URL) as admin:
                name = urlsplit(self.pg_url).path[1:]
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop_workers(self) -> None:
        """Stop the workers earlier tests left running: they share the task queue, and
        would take a task meant for the worker a test starts."""
        for proc in self.workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)

    def outcomes(self, operation_id: int) -> dict[str, int]:
        """How many of the operation's messages have each recorded outcome."""
        found = self.rows(
            "SELECT outcome, COUNT(*) AS n FROM operations_operationmessage "
            "WHERE operation_id = ? GROUP BY outcome",
            operation_id,
        )
        return {str(row["outcome"]): int(row["n"]) for row in found}

    def make_dlq(self, name: str, *, fifo: bool = False) -> tuple[str, str]:
        suffix, extra = (".fifo", {"FifoQueue": "true"}) if fifo else ("", {})
        dlq = self.sqs.create_queue(QueueName=f"{name}-dlq{suffix}", Attributes=extra)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3})
        source = self.sqs.create_queue(
            QueueName=f"{name}{suffix}", Attributes={**extra, "RedrivePolicy": policy}
        )["QueueUrl"]
        return source, dlq

    def depth(self, url: str) -> int:
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )

    def drain(self, url: str) -> list[str]:
        bodies: list[str] = []
        while batch := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            bodies.extend(m["Body"] for m in batch)
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
                ],
            )
        return bodies


def running_world(tmp: Path, redis_url: str) -> Iterator[World]:
    """A moto server, a migrated database and an empty broker database ``redis_url`` (each
    module its own, so two modules never take each other's tasks); everything is stopped
    and dropped afterwards. Skips without Redis, except in CI."""
    import redis
    from moto.server import ThreadedMotoServer

    broker = redis.Redis.from_url(redis_url)
    try:
        broker.ping()
    except redis.RedisError as exc:
        # CI (.ci/run) starts Redis, so there it is a failure; on a laptop, say what is missing.
        if os.environ.get("CI"):
            raise
        pytest.skip(f"needs Redis at {redis_url} ({exc}); CI always runs it")
    broker.flushdb()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    world = World(tmp, f"http://127.0.0.1:{port}")
    world.env["REDIS_URL"] = redis_url
    migrate = world.manage("migrate", "--no-input")
    assert migrate.wait(timeout=120) == 0, migrate.stderr.read() if migrate.stderr else ""
    yield world
    world.stop_workers()
    server.stop()
    broker.flushdb()
    world.drop_database()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from running_world(tmp_path_factory.mktemp("killtest"), REDIS_URL)  # database 9


def finished(world: World, dlq: str) -> dict[str, Any]:
    return wait_for(
        lambda: (op := world.operation(dlq)) and op["state"] not in ("pending", "running") and op,
        120,
        "the operation to finish",
    )


@pytest.mark.parametrize("concurrency", [1, 8], ids=["one-loop", "8-pipelines"])
@pytest.mark.parametrize(
    ("name", "kill_at"),
    [
        # One loop: batches 1 and 2 moved, batch 3 sent and recorded "sent", not deleted.
        # 8 pipelines: the third delete kills the worker with other pipelines mid-batch
        # (receiving, sending, or sent and not yet deleted).
        ("send-delete", "delete_message_batch:3"),
        # One loop: batches 1 and 2 moved, batch 3 received (hidden), never sent.
        ("receive-send", "send_message_batch:3"),
    ],
)
def test_a_worker_killed_mid_batch_is_taken_over_without_loss_or_double_counting(
    world: World, name: str, kill_at: str, concurrency: int
) -> None:
    world.stop_workers()
    name = f"{name}-{concurrency}"
    source, dlq = world.make_dlq(f"orders-{name}")
    for i in range(MESSAGES):
        world.sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"n": i}))
    start = world.manage(
        "redrive",
        f"orders-{name}-dlq",
        "--yes",
        "--reason",
        "kill test",
        "--concurrency",
        str(concurrency),
    )
    assert start.wait(timeout=60) == 0
    first = world.worker(kill_at=kill_at)
    assert first.wait(timeout=120) == -signal.SIGKILL
    killed_at = world.operation(dlq)
    world.worker()  # Redis gives the task back; the new worker claims it once the lease ends
    done = finished(world, dlq)
    moved = [json.loads(body)["n"] for body in world.drain(source)]
    assert killed_at is not None and killed_at["state"] == "running"
    # Every message arrived. One loop: none twice (what was sent before the kill was deleted,
    # not resent). Pipelines: a send in flight when the worker died was never recorded, so
    # its batch may arrive twice (at most one batch per pipeline; consumers are idempotent).
    assert sorted(set(moved)) == list(range(MESSAGES))
    duplicates = len(moved) - MESSAGES
    assert duplicates == 0 if concurrency == 1 else duplicates <= concurrency * 10
    assert (done["state"], done["attempts"], done["moved"], done["failed"]) == (
        "succeeded",
        2,
        MESSAGES,
        0,
    )
    assert world.outcomes(done["id"]) == {"moved": MESSAGES}
    assert world.depth(dlq) == 0


def test_a_fifo_redrive_killed_between_send_and_delete_keeps_group_order(world: World) -> None:
    world.stop_workers()
    source, dlq = world.make_dlq("payments", fifo=True)
    for i in range(30):
        body = json.dumps({"group": f"g{i % 3}", "n": i})
        world.sqs.send_message(
            QueueUrl=dlq,
            MessageBody=body,
            MessageGroupId=f"g{i % 3}",
            MessageDeduplicationId=str(i),
        )
    start = world.manage("redrive", "payments-dlq.fifo", "--yes", "--reason", "kill test")
    assert start.wait(timeout=60) == 0
    # The second DeleteMessageBatch: 10 moved, 10 more sent and recorded, not deleted.
    first = world.worker(kill_at="delete_message_batch:2")
    assert first.wait(timeout=120) == -signal.SIGKILL
    world.worker()
    done = finished(world, dlq)
    arrived = [json.loads(body) for body in world.drain(source)]
    assert sorted(m["n"] for m in arrived) == list(range(30))
    for group in ("g0", "g1", "g2"):
        in_group = [m["n"] for m in arrived if m["group"] == group]
        assert in_group == sorted(in_group)
    assert (done["state"], done["moved"], world.outcomes(done["id"])) == (
        "succeeded",
        30,
        {"moved": 30},
    )


def test_two_concurrent_starts_one_runs_the_other_is_refused(world: World) -> None:
    world.stop_workers()
    _, dlq = world.make_dlq("billing")
    world.sqs.send_message(QueueUrl=dlq, MessageBody="{}")
    racers = [world.manage("redrive", "billing-dlq", "--yes", "--reason", "race") for _ in range(2)]
    results = sorted((proc.wait(timeout=60), proc.communicate()[1].decode()) for proc in racers)
    assert [code for code, _ in results] == [0, 2]
    assert "Another operation is already active" in results[1][1]
    # The winner is a real operation that a worker runs to the end.
    world.worker()
    done = wait_for(
        lambda: (op := world.operation(dlq)) and op["state"] not in ("pending", "running") and op,
        60,
        "the winning operation to finish",
    )
    assert (done["state"], done["moved"]) == ("succeeded", 1) and world.depth(dlq) == 0
