"""Masking is for showing: replay and re-publish move the original event, secrets and all,
whoever started them (the DLQ redrive's own tests: tests/dashboard/dlq/test_masking.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from operations import archive, replay
from operations.replay_tasks import run_replay
from tests.operations import archive_world
from tests.operations.archive_world import ARCHIVE
from tests.operations.test_republish import _republish
from tests.secret_bodies import CARD, CORRELATION_ID, DETAIL, PASSWORD

world = archive_world.world
pytestmark = pytest.mark.django_db


def test_republish_sends_the_original_detail(world, settings) -> None:
    settings.EVENTOPS_MASKING = True
    world.put("OrderPaid", DETAIL)
    world.drain("notify-rule")
    _republish(CORRELATION_ID)
    sent = world.drain("notify-rule")
    assert [e["detail"] for e in sent] == [DETAIL]
    assert sent[0]["detail"]["card"] == CARD and sent[0]["detail"]["password"] == PASSWORD


def test_replay_delivers_the_original_detail(world, settings) -> None:
    settings.EVENTOPS_MASKING = True
    world.put("OrderPaid", DETAIL)
    world.drain("billing-rule"), world.drain("notify-rule")
    now = datetime.now(tz=UTC)
    plan = replay.plan_replay(archive.load_archive(ARCHIVE), now - timedelta(hours=1), now, ())
    op = replay.start_replay_operation(plan, reason="outage", requested_by_name="oncall")
    token = op.claim()
    assert token is not None
    run_replay(op, token, sleep=lambda s: None, interval=0, max_polls=5)
    assert [e["detail"] for e in world.drain("billing-rule")] == [DETAIL]
