"""End to end with real processes: a redrive split across two Celery workers
(``manage.py redrive --workers 2``), one of which SIGKILLs itself in the middle of its
part (between SendMessageBatch and DeleteMessageBatch); the other worker runs its own
part (meeting the messages the dead one sent and did not delete) and then resumes the
dead one's once its lease ends. Every message arrives exactly
once and the parent ends with the exact sum.

The machinery (moto server, shared database, kill hook) is test_redrive_worker.py's: the
database is a file SQLite one, or with ``DATABASE_URL`` on PostgreSQL a database of its own
(the integration run on CI, where the parts' row locks are real); the broker is its own
Redis database (EVENTOPS_TEST_WORKERS_REDIS_URL, default db 11), so the two modules never
take each other's tasks.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from tests.operations.test_redrive_worker import World, running_world, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.integration]

REDIS_URL = os.environ.get("EVENTOPS_TEST_WORKERS_REDIS_URL", "redis://127.0.0.1:6379/11")
MESSAGES = 90


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from running_world(tmp_path_factory.mktemp("workerstest"), REDIS_URL)


def rows(world: World, sql: str, *args: Any) -> list[dict[str, Any]]:
    return world.rows(sql, *args)


def test_two_workers_one_killed_move_every_message_once(world: World) -> None:
    source, dlq = world.make_dlq("bulk")
    for i in range(MESSAGES):
        world.sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"n": i}))
    start = world.manage(
        "redrive", "bulk-dlq", "--yes", "--reason", "workers test", "--workers", "2",
        "--concurrency", "1", "--rate", "20",
    )  # fmt: skip
    assert start.wait(timeout=60) == 0
    parent_query = "SELECT * FROM operations_operation WHERE target = ? AND parent_id IS NULL"
    parts_query = "SELECT * FROM operations_operation WHERE parent_id = ? ORDER BY part"
    (parent,) = rows(world, parent_query, dlq)
    assert parent["state"] == "running"
    # The first worker dies at its second delete: one batch moved, one sent and recorded.
    # The other part, paced at 10 msg/s, is still running when that batch's hiding ends
    # (the 4 s lease): it meets those messages, and must delete them without sending them.
    first = world.worker(kill_at="delete_message_batch:2")
    wait_for(
        lambda: any(p["state"] == "running" for p in rows(world, parts_query, parent["id"])),
        60,
        "a part to be claimed",
    )
    world.worker()
    assert first.wait(timeout=120) == -signal.SIGKILL
    done = wait_for(
        lambda: (op := rows(world, parent_query, dlq)[0])["state"] != "running" and op,
        180,
        "the parent to finish",
    )
    parts = rows(world, parts_query, parent["id"])
    moved = [json.loads(body)["n"] for body in world.drain(source)]
    assert sorted(moved) == list(range(MESSAGES))  # every message, none twice
    assert (done["state"], done["moved"], done["failed"]) == ("succeeded", MESSAGES, 0)
    assert [p["state"] for p in parts] == ["succeeded", "succeeded"]
    assert sum(p["moved"] for p in parts) == MESSAGES
    assert max(p["attempts"] for p in parts) == 2  # the killed part was resumed
    assert world.depth(dlq) == 0
