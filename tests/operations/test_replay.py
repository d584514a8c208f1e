"""Archive replays: validation, the Operation path, the task against moto, cancel, limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from django.core.management import CommandError, call_command

from operations import archive, cancel, replay
from operations.aws import events
from operations.models import Operation
from operations.replay import ReplayRequestError
from operations.replay_tasks import run_replay
from tests.operations import archive_world
from tests.operations.archive_world import ARCHIVE, detail

world = archive_world.world
pytestmark = pytest.mark.django_db


def _plan(rules: tuple[str, ...] = (), minutes: int = 60) -> replay.ReplayPlan:
    now = datetime.now(tz=UTC)
    view = archive.load_archive(ARCHIVE)
    return replay.plan_replay(view, now - timedelta(minutes=minutes), now, rules)


def _run(op: Operation) -> Operation:
    token = op.claim()
    assert token is not None
    run_replay(op, token, sleep=lambda s: None, interval=0, max_polls=5)
    op.refresh_from_db()
    return op


def test_replay_reaches_the_target_queues_and_succeeds(world):
    world.put("OrderPaid", detail("c-1"))
    world.put("OrderCreated", detail("c-2"))
    world.drain("billing-rule"), world.drain("notify-rule")
    op = replay.start_replay_operation(_plan(), reason="billing outage", requested_by_name="t")
    op = _run(op)
    billing = world.drain("billing-rule")
    assert [e["replay-name"] for e in billing] == [op.parameters["replay_name"]]
    assert op.state == Operation.State.SUCCEEDED and op.progress["state"] == "COMPLETED"
    assert op.progress["percent"] == 100


def test_replay_passes_the_chosen_rules_as_filter_arns(world, monkeypatch):
    calls = []
    monkeypatch.setattr(events, "start_replay", lambda **kw: calls.append(kw) or "STARTING")
    op = replay.start_replay_operation(_plan(("billing-rule",)), reason="r", requested_by_name="t")
    _run(op)
    assert calls[0]["filter_arns"] == [world.rule_arns["billing-rule"]]
    assert calls[0]["name"] == op.parameters["replay_name"]


def test_replay_name_is_valid_and_carries_the_operation_id(world):
    op = replay.start_replay_operation(_plan(), reason="r", requested_by_name="t")
    name = op.parameters["replay_name"]
    assert events.REPLAY_NAME_RE.match(name) and len(name) <= 64
    assert f"op{op.pk}-" in name


def test_cancel_calls_cancel_replay_and_ends_cancelled(world):
    world.put("OrderPaid", detail("c-1"))
    op = replay.start_replay_operation(_plan(), reason="r", requested_by_name="t")
    token = op.claim()
    params = op.parameters
    events.start_replay(
        name=params["replay_name"],
        archive_arn=params["archive_arn"],
        bus_arn=params["bus_arn"],
        start=datetime.fromisoformat(params["start"]),
        end=datetime.fromisoformat(params["end"]),
    )
    op.report(token, progress={"replay_name": params["replay_name"], "started": True})
    assert cancel.cancel(op, by="oncall", reason="wrong window").status == cancel.REQUESTED
    run_replay(op, token, sleep=lambda s: None, interval=0, max_polls=3)
    op.refresh_from_db()
    assert op.state == Operation.State.CANCELLED
    assert events.describe_replay(params["replay_name"]).state == "CANCELLED"


def test_cancel_before_start_never_calls_start_replay(world, monkeypatch):
    monkeypatch.setattr(events, "start_replay", lambda **kw: pytest.fail("started"))
    op = replay.start_replay_operation(_plan(), reason="r", requested_by_name="t")
    token = op.claim()
    op.request_cancel()
    run_replay(op, token, sleep=lambda s: None, interval=0, max_polls=3)
    op.refresh_from_db()
    assert op.state == Operation.State.CANCELLED


def test_resumed_task_does_not_start_the_replay_twice(world):
    op = replay.start_replay_operation(_plan(), reason="r", requested_by_name="t")
    token = op.claim()
    params = op.parameters
    events.start_replay(
        name=params["replay_name"],
        archive_arn=params["archive_arn"],
        bus_arn=params["bus_arn"],
        start=datetime.fromisoformat(params["start"]),
        end=datetime.fromisoformat(params["end"]),
    )
    run_replay(op, token, sleep=lambda s: None, interval=0, max_polls=3)
    op.refresh_from_db()
    assert op.state == Operation.State.SUCCEEDED
    assert len(events.list_replays(source_arn=params["archive_arn"])) == 1


def test_failed_replay_records_the_reason(world, monkeypatch):
    failed = events.ReplayInfo(
        "n", "", "", "FAILED", "Archive broken", None, None, None, None, None, ()
    )
    op = replay.start_replay_operation(_plan(), reason="r", requested_by_name="t")
    monkeypatch.setattr(events, "describe_replay", lambda name: failed)
    op = _run(op)
    assert op.state == Operation.State.FAILED
    assert op.error == "Archive broken"


# --- bad input changes nothing ----------------------------------------------------------------


def test_end_before_start_is_refused(world):
    view = archive.load_archive(ARCHIVE)
    now = datetime.now(tz=UTC)
    with pytest.raises(ReplayRequestError, match="after its start"):
        replay.plan_replay(view, now - timedelta(hours=1), now - timedelta(hours=2))


def test_window_beyond_retention_is_refused(world):
    view = archive.load_archive(ARCHIVE)
    now = datetime.now(tz=UTC)
    with pytest.raises(ReplayRequestError, match="retention of 90 days"):
        replay.plan_replay(view, now - timedelta(days=91), now - timedelta(days=89))


def test_window_in_the_future_is_refused(world):
    view = archive.load_archive(ARCHIVE)
    now = datetime.now(tz=UTC)
    with pytest.raises(ReplayRequestError, match="future"):
        replay.plan_replay(view, now - timedelta(hours=1), now + timedelta(hours=1))


def test_rule_not_on_the_archive_bus_is_refused(world):
    eb = boto3.client("events", region_name="us-east-1")
    eb.put_rule(Name="elsewhere", EventPattern='{"source": ["x"]}')
    with pytest.raises(ReplayRequestError, match="'elsewhere' is not on the archive's bus"):
        _plan(("elsewhere",))


def test_recent_window_is_warned_about(world):
    plan = _plan(minutes=30)
    old = replay.plan_replay(
        plan.view, plan.start - timedelta(hours=2), plan.end - timedelta(hours=1)
    )
    assert any("last 10 minutes" in w for w in plan.warnings)
    assert not any("last 10 minutes" in w for w in old.warnings)


def test_ten_active_replays_refuse_an_eleventh(world, monkeypatch):
    monkeypatch.setattr(events, "count_active_replays", lambda: 10)
    with pytest.raises(ReplayRequestError, match="AWS allows 10"):
        replay.start_replay_operation(_plan(), reason="r", requested_by_name="t")
    assert Operation.objects.count() == 0


def test_active_replays_are_counted_per_state(world, monkeypatch):
    asked = []
    monkeypatch.setattr(events, "list_replays", lambda **kw: asked.append(kw["state"]) or [1])
    assert events.count_active_replays() == 3
    assert asked == ["STARTING", "RUNNING", "CANCELLING"]


def test_colliding_replay_name_is_refused(world, monkeypatch):
    monkeypatch.setattr(events, "replay_exists", lambda name: True)
    with pytest.raises(ReplayRequestError, match="already exists"):
        replay.start_replay_operation(_plan(), reason="r", requested_by_name="t")
    assert Operation.objects.count() == 0


def test_reason_is_required(world):
    with pytest.raises(ReplayRequestError, match="reason"):
        replay.start_replay_operation(_plan(), reason="  ", requested_by_name="t")
    assert Operation.objects.count() == 0


def test_second_active_replay_on_the_same_archive_is_refused(world):
    replay.start_replay_operation(_plan(), reason="r", requested_by_name="t")
    with pytest.raises(ReplayRequestError, match="already active"):
        replay.start_replay_operation(_plan(), reason="r", requested_by_name="t")
    assert Operation.objects.count() == 1


# --- the command line ---------------------------------------------------------------------------


def _window_args() -> list[str]:
    now = datetime.now(tz=UTC)
    return ["--start", (now - timedelta(hours=1)).isoformat(), "--end", now.isoformat()]


def test_command_with_wait_runs_inline_and_prints_the_final_state(world, capsys):
    world.put("OrderPaid", detail("c-1"))
    call_command("replay", ARCHIVE, *_window_args(), "--rule", "billing-rule", "--yes", "--wait")
    out = capsys.readouterr().out
    assert "final state: succeeded (replay COMPLETED)" in out
    assert Operation.objects.get().requested_by_name.startswith("cli:")


def test_command_exits_1_when_the_replay_failed(world, monkeypatch, capsys):
    failed = events.ReplayInfo("n", "", "", "FAILED", "broken", None, None, None, None, None, ())
    monkeypatch.setattr(events, "replay_exists", lambda name: False)
    monkeypatch.setattr(events, "describe_replay", lambda name: failed)
    with pytest.raises(CommandError, match="ended failed") as ended:
        call_command("replay", ARCHIVE, *_window_args(), "--yes", "--wait")
    assert ended.value.returncode == 1 and "1 replay failed: broken" in capsys.readouterr().out


def test_command_without_wait_hands_over_and_exits_5(world, monkeypatch):
    from operations.replay_tasks import replay as replay_task

    monkeypatch.setattr(replay_task, "apply_async", lambda *args, **kwargs: None)
    with pytest.raises(CommandError, match="handed to a Celery worker") as queued:
        call_command("replay", ARCHIVE, *_window_args(), "--yes")
    assert queued.value.returncode == 5 and Operation.objects.get().state == "pending"


def test_command_without_yes_previews_and_starts_nothing(world, capsys):
    world.put("OrderPaid", detail("c-1"))
    with pytest.raises(CommandError, match="--yes") as refused:
        call_command("replay", ARCHIVE, *_window_args())
    assert "1 events in the window" in capsys.readouterr().out and refused.value.returncode == 2
    assert Operation.objects.count() == 0


def test_command_refuses_an_unknown_archive(world):
    with pytest.raises(CommandError, match="No archive named") as refused:
        call_command("replay", "nope", *_window_args(), "--yes")
    assert refused.value.returncode == 2


def test_running_replay_reports_last_replayed_time_across_the_window(world, monkeypatch):
    op = replay.start_replay_operation(_plan(), reason="r", requested_by_name="t")
    start = datetime.fromisoformat(op.parameters["start"])
    running = events.ReplayInfo(
        "n", "", "", "RUNNING", "", None, None, start + timedelta(minutes=15), None, None, ()
    )
    monkeypatch.setattr(events, "describe_replay", lambda name: running)
    token = op.claim()
    finished = run_replay(op, token, sleep=lambda s: None, interval=0, max_polls=2)
    op.refresh_from_db()
    assert finished is False and op.state == Operation.State.RUNNING
    assert (op.progress["state"], op.progress["percent"]) == ("RUNNING", 25)


# --- the polling budget and the soft time limit -------------------------------------------------


def _running_info(op: Operation) -> events.ReplayInfo:
    start = datetime.fromisoformat(op.parameters["start"])
    return events.ReplayInfo(
        "n", "", "", "RUNNING", "", None, None, start + timedelta(minutes=6), None, None, ()
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.polled_at: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_polling_ends_well_before_the_soft_time_limit(world, monkeypatch, settings):
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 100
    clock = FakeClock()
    op = replay.start_replay_operation(_plan(), reason="r", requested_by_name="t")
    running = _running_info(op)

    def describe(name):
        clock.polled_at.append(clock.now)
        clock.now += 5  # the call itself takes time too
        return running

    monkeypatch.setattr(events, "describe_replay", describe)
    token = op.claim()
    finished = run_replay(op, token, sleep=clock.sleep, interval=20, clock=clock)
    op.refresh_from_db()
    assert finished is False and op.state == Operation.State.RUNNING
    # The last poll starts before 0.8 x the soft limit; the old budget polled on to 100 s.
    assert clock.polled_at == [0, 25, 50, 75] and clock.now <= 0.8 * 100


def test_soft_time_limit_leaves_the_replay_running(world, monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    op = replay.start_replay_operation(_plan(), reason="r", requested_by_name="t")

    def describe(name):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(events, "describe_replay", describe)
    token = op.claim()
    with pytest.raises(SoftTimeLimitExceeded):
        run_replay(op, token, sleep=lambda s: None, interval=0)
    op.refresh_from_db()
    assert op.state == Operation.State.RUNNING and op.error == ""
    assert op.progress["started"] is True


def test_task_hit_by_the_soft_time_limit_retries_to_keep_polling(world, monkeypatch):
    from celery.exceptions import Retry, SoftTimeLimitExceeded

    from operations.replay_tasks import replay as replay_task

    op = replay.start_replay_operation(_plan(), reason="r", requested_by_name="t")

    def describe(name):
        raise SoftTimeLimitExceeded()

    retries = []

    def retry(countdown):
        retries.append(countdown)
        return Retry("again", when=countdown)

    monkeypatch.setattr(events, "describe_replay", describe)
    monkeypatch.setattr(replay_task, "retry", retry)
    with pytest.raises(Retry):
        replay_task.run(op.pk)
    op.refresh_from_db()
    assert op.state == Operation.State.RUNNING and retries
    assert Operation.objects.filter(target=op.target, state="running").count() == 1


def test_command_interrupted_hands_the_replay_to_a_worker(world, monkeypatch, capsys):
    from operations.management.commands import replay as command
    from operations.replay_tasks import replay as replay_task

    enqueued: list[int] = []
    monkeypatch.setattr(replay_task, "apply_async", lambda args, **kw: enqueued.append(args[0]))

    def interrupted(op, token, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "run_replay", interrupted)
    with pytest.raises(CommandError) as running:
        _call_interrupted()
    op = Operation.objects.get()
    assert enqueued == [op.pk] and op.state == Operation.State.RUNNING
    assert "handed to a Celery worker" in capsys.readouterr().out
    assert running.value.returncode == 5


def test_command_interrupted_without_a_broker_cancels_the_replay(world, monkeypatch, capsys):
    from operations.management.commands import replay as command
    from operations.replay_tasks import replay as replay_task

    def broker_down(args, **kwargs):
        raise ConnectionError("broker down")

    def interrupted(op, token, **kwargs):
        raise KeyboardInterrupt

    cancelled: list[str] = []
    monkeypatch.setattr(replay_task, "apply_async", broker_down)
    monkeypatch.setattr(command, "run_replay", interrupted)
    monkeypatch.setattr(events, "cancel_replay", cancelled.append)
    with pytest.raises(CommandError, match="cancelled") as stopped:
        _call_interrupted()
    op = Operation.objects.get()
    assert op.state == Operation.State.CANCELLED and cancelled == [op.parameters["replay_name"]]
    assert "the replay was cancelled" in capsys.readouterr().out and stopped.value.returncode == 4


def _call_interrupted() -> None:
    # An unhandled KeyboardInterrupt would end the whole test session, not fail this test.
    try:
        call_command("replay", ARCHIVE, *_window_args(), "--yes", "--wait")
    except KeyboardInterrupt:
        pytest.fail("the command let the interrupt through")


def _rule(name: str) -> events.Rule:
    return events.Rule(name, f"arn:{name}", "bus", "ENABLED", "{}", "", "")


def test_a_consumer_is_fed_only_by_the_rules_that_name_it():
    every = [_rule("eventops-demo-billing-rule"), _rule("eventops-demo-notify-rule")]
    assert replay.fed_by("billing", every[:1], every)
    assert not replay.fed_by("notify", every[:1], every)
    assert replay.fed_by("audit", every[:1], every)  # no rule names it: kept


def test_command_preview_lists_only_the_chosen_rules_consumers(world, capsys, monkeypatch):
    world.put("OrderPaid", detail("c-1"))
    report = replay.IdempotencyReport(events_checked=1)
    report.skipped_by_consumer = {"billing": 1, "notify": 1}
    monkeypatch.setattr(replay, "idempotency_check", lambda found, now=None: report)
    with pytest.raises(CommandError, match="--yes"):
        call_command("replay", ARCHIVE, *_window_args(), "--rule", "billing-rule")
    out = capsys.readouterr().out
    assert "billing will skip 1" in out and "notify" not in out
