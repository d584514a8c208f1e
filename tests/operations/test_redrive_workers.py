"""A redrive split across several workers (``--workers N``, operations/redrive_parts.py).

In process, the parts run one after another or interleaved at an exact call (a part
"dies" with an exception nothing handles, and the messages it held are made visible
again as their visibility timeout would): every message moves once, counts are exact,
``max_messages`` holds across parts, cancel and rate changes reach every part, and the
parent ends with the sums. The real two-worker run is in test_redrive_workers_celery.py.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError
from django.utils import timezone

from dashboard.forms import StartForm
from operations import cancel, dlq, enqueue, redrive_parts, sweep
from operations import redrive as engine
from operations.aws import sqs
from operations.models import Operation, OperationMessage
from operations.redrive_rate import current_rate, set_rate
from tests.operations.redrive_world import Killed, drain, fill, ids, make_queues

pytestmark = [pytest.mark.django_db, pytest.mark.integration, pytest.mark.usefixtures("pipelines")]


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The operation IDs whose task was sent to the broker."""
    sent: list[int] = []
    task = enqueue.task_for(Operation.Kind.REDRIVE)
    monkeypatch.setattr(task, "apply_async", lambda args, **kw: sent.append(args[0]))
    return sent


def start(dlq_url: str, workers: int, **params: Any) -> Operation:
    params.setdefault("wait_seconds", 0)
    request = engine.StartRequest(
        dlq_url, engine.RedriveParams(workers=workers, **params), "test", None, "test"
    )
    return engine.create(request)


def parts(parent: Operation) -> list[Operation]:
    return list(parent.parts.order_by("part"))


def run_part(part: Operation) -> Operation:
    token = part.claim(engine.lease_seconds())
    assert token is not None
    engine.Redrive(part, token, sleep=lambda s: None).run()
    part.refresh_from_db()
    return part


def run_all(parent: Operation) -> Operation:
    for part in parts(parent):
        run_part(part)
    parent.refresh_from_db()
    return parent


def die_at(monkeypatch: pytest.MonkeyPatch, name: str, call: int) -> None:
    """The ``call``-th call of ``sqs.<name>`` kills the run before it reaches SQS."""
    real = getattr(sqs, name)
    calls = Counter[str]()

    def maybe_die(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        if calls[name] == call:
            monkeypatch.setattr(sqs, name, real)
            raise Killed(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(sqs, name, maybe_die)


def lapse(part: Operation, dlq_url: str, handles: list[str]) -> None:
    """The dead part's messages become visible again, and its lease runs out."""
    dlq.release(dlq_url, [sqs.SqsMessage(str(i), h, "", {}, {}) for i, h in enumerate(handles)])
    handles.clear()
    past = timezone.now() - timedelta(seconds=1)
    Operation.objects.filter(pk=part.pk).update(lease_expires_at=past)


def test_parts_move_every_message_once_and_the_parent_sums_them(aws: None) -> None:
    client, source_url, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 45)
    parent = start(dlq_url, 3, destination_arn=source_arn)
    assert [(p.part, p.state) for p in parts(parent)] == [
        (1, "pending"),
        (2, "pending"),
        (3, "pending"),
    ]
    assert (parent.state, parent.total) == ("running", None)
    done = run_all(parent)
    assert sorted(ids(drain(client, source_url))) == sorted(f"e-{i}" for i in range(45))
    assert (done.state, done.moved, done.failed, done.total) == ("succeeded", 45, 0, 45)
    assert sum(p.moved for p in parts(parent)) == 45
    assert done.outcome["workers"] == 3 and done.outcome["moved"] == 45
    assert done.outcome["reasons"] == {}


def test_a_part_killed_after_sending_is_never_sent_twice_and_counts_stay_exact(
    aws: None, monkeypatch: pytest.MonkeyPatch, handles: list[str]
) -> None:
    """Part 1 sends a batch, records it sent, and dies before deleting it; part 2 receives
    those messages once their hiding lapses: it deletes them without sending them."""
    client, source_url, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 30)
    parent = start(dlq_url, 2, destination_arn=source_arn)
    first, second = parts(parent)
    die_at(monkeypatch, "delete_message_batch", 1)
    with pytest.raises(Killed):
        run_part(first)
    sent_rows = OperationMessage.objects.filter(operation=first, outcome="sent").count()
    # With pipelines, batches in flight when it died may have been deleted on its way out.
    taken = OperationMessage.objects.filter(operation=first, outcome__in=["sent", "moved"])
    assert sent_rows >= 10
    lapse(first, dlq_url, handles)
    second = run_part(second)
    assert second.state == "succeeded"
    assert second.moved == 30 - taken.count()  # the sibling's messages are not counted here
    first = run_part(Operation.objects.get(pk=first.pk))  # resumed once its lease ran out
    parent.refresh_from_db()
    arrived = ids(drain(client, source_url))
    assert sorted(arrived) == sorted(f"e-{i}" for i in range(30))  # each exactly once
    assert (first.state, first.moved, first.attempts) == ("succeeded", taken.count(), 2)
    assert (parent.state, parent.moved, parent.failed) == ("succeeded", 30, 0)
    assert len(drain(client, dlq_url)) == 0


def test_a_part_killed_before_sending_leaves_its_messages_to_the_others(
    aws: None, monkeypatch: pytest.MonkeyPatch, handles: list[str]
) -> None:
    client, source_url, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 25)
    parent = start(dlq_url, 2, destination_arn=source_arn)
    first, second = parts(parent)
    die_at(monkeypatch, "send_message_batch", 1)
    with pytest.raises(Killed):
        run_part(first)
    lapse(first, dlq_url, handles)
    run_part(second)
    run_part(Operation.objects.get(pk=first.pk))
    parent.refresh_from_db()
    assert sorted(ids(drain(client, source_url))) == sorted(f"e-{i}" for i in range(25))
    assert (parent.state, parent.moved) == ("succeeded", 25)


def test_max_messages_is_split_exactly_and_never_exceeded(
    aws: None, monkeypatch: pytest.MonkeyPatch, handles: list[str]
) -> None:
    client, source_url, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 40)
    parent = start(dlq_url, 3, destination_arn=source_arn, max_messages=17)
    shares = [p.parameters["max_messages"] for p in parts(parent)]
    assert shares == [6, 6, 5] and sum(shares) == 17
    first, second, third = parts(parent)
    # The first part sends its share and dies before deleting: the others meet those
    # messages again and must neither send nor count them.
    die_at(monkeypatch, "delete_message_batch", 1)
    with pytest.raises(Killed):
        run_part(first)
    lapse(first, dlq_url, handles)
    run_part(second)
    run_part(third)
    run_part(Operation.objects.get(pk=first.pk))
    parent.refresh_from_db()
    arrived = ids(drain(client, source_url))
    assert len(arrived) == len(set(arrived)) == 17
    assert (parent.state, parent.moved) == ("succeeded", 17)
    assert len(drain(client, dlq_url)) == 23


def test_a_part_that_ends_short_of_its_share_leaves_the_rest_to_the_running_ones(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Filters rarely match evenly across parts: a part that ended having met fewer
    matching messages than its share hands the rest to the parts still in their pass, so
    the operation moves ``max_messages`` when the DLQ holds that many, never more."""
    client, source_url, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 15, event_type="OrderPaid")
    fill(client, dlq_url, 5, event_type="OrderShipped")
    paid = dlq.Filters(event_type="OrderPaid")
    parent = start(dlq_url, 3, destination_arn=source_arn, max_messages=12, filters=paid)
    first, second, third = parts(parent)
    real = redrive_parts.sibling_outcomes

    def first_ends_short(*args: Any) -> dict[str, str]:
        # While the second part runs (the third still to come), the first ends having
        # taken on one message: 3 of its 4 go to the second (2) and the third (1).
        monkeypatch.setattr(redrive_parts, "sibling_outcomes", real)
        Operation.objects.get(pk=first.pk).finish(None, "succeeded", moved=1)
        return real(*args)

    monkeypatch.setattr(redrive_parts, "sibling_outcomes", first_ends_short)
    done = run_part(second)
    assert (done.parameters["max_messages"], done.moved) == (6, 6)
    done = run_part(third)
    assert (done.parameters["max_messages"], done.moved) == (5, 5)
    parent.refresh_from_db()
    assert (parent.state, parent.moved) == ("succeeded", 12)
    assert len(drain(client, source_url)) == 11
    assert len(drain(client, dlq_url)) == 9


def test_unused_shares_go_only_to_parts_still_in_their_pass(aws: None) -> None:
    """A part that ended its pass (it is only releasing what it held) takes no more; what
    failed or was held back counts as taken; the sum never exceeds ``max_messages``."""
    _, _, source_arn, dlq_url = make_queues()
    parent = start(dlq_url, 4, destination_arn=source_arn, max_messages=20)
    first, second, third, fourth = parts(parent)
    assert redrive_parts.last_in_pass(second) is False  # second ended its pass
    first.finish(None, "partial", moved=1, failed=1, held_back=1)  # 2 of 5 unused
    limits = [p.parameters["max_messages"] for p in parts(parent)]
    assert limits == [5, 5, 6, 6]
    third.finish(None, "succeeded", moved=6)  # used all of it: nothing to hand on
    assert [p.parameters["max_messages"] for p in parts(parent)] == [5, 5, 6, 6]
    fourth.finish(None, "succeeded", moved=2)  # 4 unused, and nobody left to take them
    second.finish(None, "succeeded", moved=5)
    parent.refresh_from_db()
    assert (parent.state, parent.moved, parent.failed) == ("partial", 14, 1)
    assert parent.progress["granted_from"] == sorted([first.pk, third.pk, fourth.pk])


def test_more_workers_than_max_messages_makes_one_part_per_message(aws: None) -> None:
    _, _, source_arn, dlq_url = make_queues()
    parent = start(dlq_url, 5, destination_arn=source_arn, max_messages=2)
    assert [p.parameters["max_messages"] for p in parts(parent)] == [1, 1]
    assert parent.parameters["workers"] == 2


def test_filters_hold_and_skipped_messages_count_once(aws: None) -> None:
    client, source_url, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 12, event_type="OrderShipped")
    fill(client, dlq_url, 12, event_type="OrderPaid")
    parent = start(
        dlq_url, 2, destination_arn=source_arn, filters=dlq.Filters(event_type="OrderPaid")
    )
    done = run_all(parent)
    assert (done.state, done.moved, done.skipped) == ("succeeded", 12, 12)
    assert len(drain(client, source_url)) == 12
    assert len(drain(client, dlq_url)) == 12


def test_a_message_a_sibling_did_not_move_is_its_to_count(aws: None) -> None:
    """Part 1 ended its pass and released what did not match; part 2 meets those
    messages and leaves them uncounted (they are part 1's)."""
    client, _, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 5, event_type="OrderShipped")
    parent = start(
        dlq_url, 2, destination_arn=source_arn, filters=dlq.Filters(event_type="OrderPaid")
    )
    first, second = parts(parent)
    assert run_part(first).skipped == 5
    assert run_part(second).skipped == 0
    parent.refresh_from_db()
    assert (parent.state, parent.skipped) == ("succeeded", 5)
    assert not OperationMessage.objects.filter(operation=second).exists()


def test_cancel_stops_every_part(aws: None) -> None:
    client, source_url, source_arn, dlq_url = make_queues()
    fill(client, dlq_url, 20)
    parent = start(dlq_url, 3, destination_arn=source_arn)
    first, second, third = parts(parent)
    assert first.claim() is not None  # running: it stops at its next report
    result = cancel.cancel(parent, by="alice", reason="wrong DLQ")
    assert result.status == cancel.REQUESTED
    states = [p.state for p in parts(parent)]
    assert states == ["running", "cancelled", "cancelled"]  # pending ones end at once
    first.refresh_from_db()
    assert first.cancel_requested
    engine.Redrive(first, first.lease_token, sleep=lambda s: None).run()
    parent.refresh_from_db()
    assert (parent.state, parent.cancel_requested_by) == ("cancelled", "alice")
    assert len(drain(client, source_url)) == 0
    assert len(drain(client, dlq_url)) == 20


def test_cancelling_a_part_cancels_its_parent(aws: None) -> None:
    _, _, source_arn, dlq_url = make_queues()
    parent = start(dlq_url, 2, destination_arn=source_arn)
    result = cancel.cancel(parts(parent)[1], by="bob")
    parent.refresh_from_db()
    assert (result.status, parent.state) == (cancel.ENDED, "cancelled")


def test_a_rate_change_reaches_every_part(aws: None) -> None:
    _, _, source_arn, dlq_url = make_queues()
    parent = start(dlq_url, 4, destination_arn=source_arn, rate=20.0)
    assert [p.parameters["rate"] for p in parts(parent)] == [5.0] * 4
    assert set_rate(parent.pk, 8.0, by="alice")
    assert [current_rate(p.pk) for p in parts(parent)] == [2.0] * 4
    parts(parent)[0].finish(None, "succeeded")  # the others share what it leaves
    assert [current_rate(p.pk) for p in parts(parent)[1:]] == pytest.approx([8 / 3] * 3)
    assert set_rate(parent.pk, None, by="alice")
    assert [current_rate(p.pk) for p in parts(parent)[1:]] == [None] * 3
    assert not set_rate(parts(parent)[1].pk, 1.0, by="alice")  # a part's is its parent's


def test_one_active_operation_per_dlq_still_holds(aws: None) -> None:
    _, _, source_arn, dlq_url = make_queues()
    parent = start(dlq_url, 3, destination_arn=source_arn)
    with pytest.raises(IntegrityError):
        start(dlq_url, 1, destination_arn=source_arn)
    assert engine.active_operation(dlq_url) == parent


def test_fifo_and_named_messages_are_refused(aws: None) -> None:
    _, _, source_arn, dlq_url = make_queues(fifo=True)
    with pytest.raises(redrive_parts.WorkersError, match="FIFO"):
        start(dlq_url, 2, destination_arn=source_arn)
    _, _, source_arn, dlq_url = make_queues(name="billing")
    with pytest.raises(redrive_parts.WorkersError, match="named"):
        start(
            dlq_url,
            2,
            destination_arn=source_arn,
            filters=dlq.Filters(message_ids=frozenset({"a"})),
        )
    assert not Operation.objects.exists()


def test_start_enqueues_each_part_not_the_parent(
    aws: None, published: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    _, _, source_arn, dlq_url = make_queues()
    request = engine.StartRequest(
        dlq_url, engine.RedriveParams(workers=3, destination_arn=source_arn), "test", None, "t"
    )
    with django_capture_on_commit_callbacks(execute=True):
        parent = engine.start(request)
    assert published == [p.pk for p in parts(parent)]


def test_a_refusing_broker_fails_every_part_and_the_parent(
    aws: None, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    _, _, source_arn, dlq_url = make_queues()

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(enqueue.task_for(Operation.Kind.REDRIVE), "apply_async", refuse)
    request = engine.StartRequest(
        dlq_url, engine.RedriveParams(workers=2, destination_arn=source_arn), "test", None, "t"
    )
    with django_capture_on_commit_callbacks(execute=True):
        engine.start(request)  # inside a transaction: sent on commit, failures logged
    parent = Operation.objects.get(parent__isnull=True)
    assert parent.state == "failed"
    assert [p.state for p in parts(parent)] == ["failed", "failed"]
    assert engine.active_operation(dlq_url) is None  # the DLQ is free again


def test_the_sweeper_ends_a_parent_whose_parts_all_ended(aws: None) -> None:
    _, _, source_arn, dlq_url = make_queues()
    parent = start(dlq_url, 2, destination_arn=source_arn)
    # As if the process that ended the last part died before ending the parent.
    Operation.objects.filter(parent=parent).update(state="succeeded", moved=3)
    report = sweep.run()
    parent.refresh_from_db()
    assert report.finished == [parent.pk]
    assert (parent.state, parent.moved) == ("succeeded", 6)


def test_the_redrive_task_leaves_a_parent_to_its_parts(aws: None) -> None:
    from operations import tasks

    _, _, source_arn, dlq_url = make_queues()
    parent = start(dlq_url, 2, destination_arn=source_arn)
    tasks.redrive.run(parent.pk)
    parent.refresh_from_db()
    assert (parent.state, parent.attempts, parent.lease_token) == ("running", 0, None)


def test_the_parents_page_and_api_show_the_parts_sums(aws: None) -> None:
    from dashboard.views.operations import progress_context

    _, _, source_arn, dlq_url = make_queues()
    parent = start(dlq_url, 2, destination_arn=source_arn)
    Operation.objects.filter(parent=parent, part=1).update(moved=4, failed=1)
    Operation.objects.filter(parent=parent, part=2).update(moved=6, progress={"live_rate": 3.5})
    op = Operation.objects.get(pk=parent.pk)
    context = progress_context(op)
    assert (op.moved, op.failed, op.progress["live_rate"]) == (10, 1, 3.5)
    assert [p.part for p in context["parts"]] == [1, 2]  # type: ignore[attr-defined]
    assert "on 2 workers" in engine.progress_line(Operation.objects.get(pk=parent.pk))


def test_merged_state_is_partial_when_a_part_fell_short(aws: None) -> None:
    _, _, source_arn, dlq_url = make_queues()
    parent = start(dlq_url, 2, destination_arn=source_arn)
    first, second = parts(parent)
    why = "refused by SQS: X"
    first.finish(None, "succeeded", moved=5, outcome={"moved": 5, "reasons": {}})
    parent.refresh_from_db()
    assert parent.state == "running"  # its other part runs
    second.finish(None, "partial", moved=2, failed=1, outcome={"moved": 2, "reasons": {why: 1}})
    parent.refresh_from_db()
    assert (parent.state, parent.moved, parent.failed) == ("partial", 7, 1)
    assert parent.outcome["reasons"] == {why: 1}


# --- the command and the form ----------------------------------------------------------


def command(*args: str) -> str:
    out = StringIO()
    call_command("redrive", *args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "between 1 and 16"),
        (["--workers", "17"], "between 1 and 16"),
        (["--workers", "2", "--wait"], "drop --wait"),
    ],
)
def test_the_command_refuses_bad_workers(aws: None, args: list[str], message: str) -> None:
    make_queues()
    with pytest.raises(CommandError, match=message) as err:
        command("orders-dlq", "--yes", *args)
    assert err.value.returncode == 2
    assert not Operation.objects.exists()


def test_the_command_refuses_workers_on_a_fifo_dlq(aws: None) -> None:
    make_queues(fifo=True)
    with pytest.raises(CommandError, match="FIFO"):
        command("orders-dlq.fifo", "--yes", "--workers", "2")


def test_the_command_queues_the_parts(
    aws: None, published: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    _, _, _, dlq_url = make_queues()
    with django_capture_on_commit_callbacks(execute=True):
        output = command("orders-dlq", "--yes", "--workers", "4")
    parent = Operation.objects.get(parent__isnull=True)
    assert output.strip() == f"operation #{parent.pk} queued in 4 parts; 4 workers run it."
    assert len(published) == 4 and parent.target == dlq_url


def form(data: dict[str, Any], *, fifo: bool = False) -> StartForm:
    return StartForm({"reason": "because", **data}, sources=[("arn:x", "x")], fifo=fifo)


def test_the_form_takes_workers_and_refuses_bad_ones() -> None:
    ok = form({"workers": "4"})
    assert ok.is_valid(), ok.errors
    request = ok.start_request("https://sqs/q/x-dlq", "arn:dlq", None, "u", masked=False)
    assert request.params.workers == 4
    default = form({})
    assert default.is_valid() and default.cleaned_data["workers"] == 1
    assert "workers" in form({"workers": "17"}).errors
    assert "FIFO" in str(form({"workers": "2"}, fifo=True).errors["workers"])
    assert "named" in str(form({"workers": "2", "message_ids": "abc"}).errors["workers"])


def test_the_last_end_of_pass_check_says_what_was_left(aws: None) -> None:
    """A part that checked the end of the pass while a dead sibling still hid messages
    reported them unexamined; the sibling resumed, moved them and checked again later:
    its word stands, and the redrive succeeded."""
    _, _, source_arn, dlq_url = make_queues()
    parent = start(dlq_url, 2, destination_arn=source_arn)
    first, second = parts(parent)
    why = "not examined: hidden by another consumer"
    first.finish(
        None,
        "partial",
        moved=5,
        outcome={"moved": 5, "unexamined": 4, "end_checked": True, "reasons": {why: 4}},
    )
    second.finish(None, "succeeded", moved=4, outcome={"moved": 4, "end_checked": True})
    parent.refresh_from_db()
    assert (parent.state, parent.moved) == ("succeeded", 9)
    assert (parent.outcome["unexamined"], parent.outcome["reasons"]) == (0, {})


def test_sqs_move_task_takes_no_workers(aws: None) -> None:
    """SQS's own move task (a whole-queue redrive with EVENTOPS_NATIVE_REDRIVE) is one
    operation: the workers asked for are not kept, and the task runs it."""
    _, _, source_arn, dlq_url = make_queues()
    params = engine.RedriveParams(workers=4, destination_arn=source_arn)
    op = engine.create(engine.StartRequest(dlq_url, params, "t", None, "t", native=True))
    assert (op.kind, op.parameters["workers"], op.parts.count()) == ("native_redrive", 1, 0)
    assert not redrive_parts.has_parts(op)


def test_operations_list_shows_the_sums_and_names_the_parts(aws: None) -> None:
    _, _, source_arn, dlq_url = make_queues()
    parent = start(dlq_url, 2, destination_arn=source_arn)
    Operation.objects.filter(parent=parent).update(moved=3)
    out = StringIO()
    call_command("operations", "list", stdout=out)
    lines = out.getvalue().splitlines()
    # One line for the operation (the parts' sums), its parts under it.
    assert len(lines) == 3
    assert lines[0].startswith(f"#{parent.pk}\tredrive\trunning") and "moved=6" in lines[0]
    assert lines[1].startswith("  #") and f"part 1 of #{parent.pk}" in lines[1]
    assert f"part 2 of #{parent.pk}" in lines[2] and "moved=3" in lines[2]


def test_the_api_lists_the_operation_once_with_its_parts(aws: None, viewer: Any) -> None:
    from tests.dashboard.api.conftest import api_client

    _, _, source_arn, dlq_url = make_queues()
    parent = start(dlq_url, 3, destination_arn=source_arn)
    Operation.objects.filter(parent=parent).update(moved=2)
    client = api_client(viewer)
    listed = client.get("/api/v1/env/default/operations/").json()
    assert (listed["count"], [row["id"] for row in listed["results"]]) == (1, [parent.pk])
    assert listed["results"][0]["moved"] == 6
    assert [p["part"] for p in listed["results"][0]["parts"]] == [1, 2, 3]
    part = parts(parent)[1]
    one = client.get(f"/api/v1/env/default/operations/{part.pk}").json()
    assert (one["parent"], one["part"]) == (parent.pk, 2)
