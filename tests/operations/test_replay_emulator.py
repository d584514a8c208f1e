"""The replay task against the devstack emulator, where replays run in the background as on AWS.

Stock moto replays inside StartReplay; the emulator answers STARTING and replays afterwards, so
these tests show the task polls a replay to its end and that the window and the chosen rules
hold end to end.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from infra.devstack import emulator
from operations import archive, replay
from operations.models import Operation
from operations.replay_tasks import run_replay
from tests.operations import archive_world
from tests.operations.archive_world import ARCHIVE, detail

world = archive_world.world
pytestmark = pytest.mark.django_db


@pytest.fixture
def emu(world: archive_world.World) -> Iterator[emulator.Emulator]:
    installed = emulator.install()
    try:
        yield installed
    finally:
        emulator.uninstall()


def _replay(emu: emulator.Emulator, rules: tuple[str, ...], start: datetime) -> Operation:
    view = archive.load_archive(ARCHIVE)
    plan = replay.plan_replay(view, start, datetime.now(tz=UTC), rules)
    op = replay.start_replay_operation(plan, reason="outage", requested_by_name="t")
    token = op.claim()
    name = op.parameters["replay_name"]
    # Each "sleep" between polls waits for the background replay instead of the clock.
    run_replay(op, token, sleep=lambda s: emu.replays.wait(name), interval=0, max_polls=5)
    op.refresh_from_db()
    return op


def test_replay_operation_succeeds_and_reaches_only_the_chosen_rule(world, emu):
    world.put("OrderPaid", detail("c-1"))
    world.drain("billing-rule"), world.drain("notify-rule")
    op = _replay(emu, ("billing-rule",), datetime.now(tz=UTC) - timedelta(minutes=5))
    assert op.state == Operation.State.SUCCEEDED
    assert [e["detail"]["correlationId"] for e in world.drain("billing-rule")] == ["c-1"]
    assert world.drain("notify-rule") == []


def test_replay_operation_leaves_out_events_before_its_window(world, emu):
    world.put("OrderPaid", detail("c-old"), Time=datetime.now(tz=UTC) - timedelta(hours=2))
    world.put("OrderPaid", detail("c-new"))
    world.drain("billing-rule")
    op = _replay(emu, (), datetime.now(tz=UTC) - timedelta(minutes=5))
    replayed = world.drain("billing-rule")
    assert op.progress["percent"] == 100
    assert [e["detail"]["correlationId"] for e in replayed] == ["c-new"]
