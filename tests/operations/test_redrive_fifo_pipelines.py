"""A FIFO DLQ redriven by 8 pipelines (operations/redrive_pipelines.py): batches of different
groups in flight at once, each group strictly in order, and the same counts and reasons
as the one loop for the same DLQ."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from typing import Any

import pytest

from operations import dlq, redrive_rate
from operations import redrive as engine
from operations.aws import sqs
from operations.models import Operation, OperationMessage
from operations.redrive_entries import deduplication_id
from tests.operations.redrive_world import (
    Refuse,
    drain,
    fill_fifo,
    ids,
    make_queues,
    new_op,
    run,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("threads_switch_often")]

PIPELINES = 8


class GroupSends:
    """Wraps ``sqs.send_message_batch`` (after ``Refuse``, if any): holds each call a
    network round trip, counts the most calls in flight at once, and records every group
    that had two batches in flight at once, and the order each group's bodies were sent."""

    def __init__(self, real: Any, hold: float = 0.02) -> None:
        self.real = real
        self.hold = hold
        self.lock = threading.Lock()
        self.flying: set[str] = set()
        self.now = 0
        self.most = 0
        self.overlaps: list[str] = []
        self.sent: dict[str, list[int]] = defaultdict(list)

    def __call__(self, url: str, entries: list[dict[str, Any]]) -> sqs.BatchResult:
        groups = [e["MessageGroupId"] for e in entries]
        with self.lock:
            self.overlaps += [g for g in groups if g in self.flying]
            self.flying.update(groups)
            self.now += 1
            self.most = max(self.most, self.now)
            for entry in entries:
                group, n = json.loads(entry["MessageBody"])["id"].split("-")
                self.sent[group].append(int(n))
        try:
            time.sleep(self.hold)  # the others get to start
            return self.real(url, entries)  # type: ignore[no-any-return]
        finally:
            with self.lock:
                self.now -= 1
                self.flying.difference_update(groups)


def by_group(event_ids: list[str]) -> dict[str, list[int]]:
    """Event ids ("g3-17") in the order given, per group: {"g3": [17, ...]}."""
    out: dict[str, list[int]] = defaultdict(list)
    for event_id in event_ids:
        group, n = event_id.split("-")
        out[group].append(int(n))
    return dict(out)


def layout_of(messages: list[tuple[str, str]]) -> dict[str, list[int]]:
    """What ``fill_fifo`` puts in the DLQ, per group, in order."""
    return by_group([f"{group}-{n}" for n, (group, _) in enumerate(messages)])


def assert_prefixes(moved: dict[str, list[int]], layout: dict[str, list[int]]) -> None:
    """Each group moved a head of itself, in order: nothing after a message that stayed."""
    for group, numbers in moved.items():
        assert numbers == layout[group][: len(numbers)], group


def compared(op: Operation) -> dict[str, Any]:
    """What must not depend on the concurrency: state, counts, reasons, held groups."""
    shown = {k: v for k, v in op.outcome.items() if k != "destinations"}
    return {"state": op.state, **shown}


def redrive_both(
    messages: list[tuple[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    refused: str = "",
    **params: Any,
) -> tuple[Operation, Operation, dict[str, Any]]:
    """The same DLQ redriven with one loop and with 8 pipelines (two pairs of queues):
    (one loop's operation, the pipelines' operation, the pipelines' world)."""
    ops = []
    for concurrency, name in ((1, "one"), (PIPELINES, "eight")):
        client, source_url, source_arn, dlq_url = make_queues(fifo=True, name=name)
        fill_fifo(client, dlq_url, messages)
        refuse = Refuse(lambda e: json.loads(e["MessageBody"])["id"] == refused)
        monkeypatch.setattr(sqs, "send_message_batch", refuse)
        sends = GroupSends(refuse)
        monkeypatch.setattr(sqs, "send_message_batch", sends)
        ops.append(run(dlq_url, destination_arn=source_arn, concurrency=concurrency, **params))
        monkeypatch.undo()
    world = {
        "client": client,
        "source": source_url,
        "dlq": dlq_url,
        "sends": sends,
        "layout": layout_of(messages),
    }
    return ops[0], ops[1], world


def test_groups_move_at_once_and_each_in_order(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    messages = [(f"g{n % 20}", "OrderPaid") for n in range(120)]
    one, eight, world = redrive_both(messages, monkeypatch)
    assert (eight.state, eight.moved, eight.progress["concurrency"]) == ("succeeded", 120, 8)
    assert compared(eight) == compared(one)
    sends = world["sends"]
    # Batches of different groups were in flight at once; never two of one group.
    assert sends.most > 1 and sends.overlaps == []
    assert sends.sent == world["layout"]
    assert by_group(ids(drain(world["client"], world["source"]))) == world["layout"]
    assert drain(world["client"], world["dlq"]) == []


def test_a_failure_stops_only_its_group(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    messages = [(f"g{n % 12}", "OrderPaid") for n in range(60)]  # g3: 3, 15, 27, 39, 51
    one, eight, world = redrive_both(messages, monkeypatch, refused="g3-15")
    assert (eight.state, eight.moved, eight.failed, eight.held_back) == ("partial", 56, 1, 3)
    assert compared(eight) == compared(one)
    assert eight.outcome["held_groups"] == [
        {"group": "g3", "held_back": 3, "behind": "refused by SQS: InvalidParameterValue"}
    ]
    # SQS was never asked to take what lies behind the refused message.
    assert world["sends"].sent["g3"] == [3, 15]
    moved = by_group(ids(drain(world["client"], world["source"])))
    assert moved == {**world["layout"], "g3": [3]}
    assert ids(drain(world["client"], world["dlq"])) == ["g3-15", "g3-27", "g3-39", "g3-51"]


def test_groups_held_back_by_the_filters_are_the_one_loops(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The head of g0, g5 and g10 does not match: the rest of them is held back, the
    other groups move, and the held groups are released at the end to be read on (their
    9 messages: one receive brings them all)."""
    messages = [
        (f"g{n % 15}", "OrderShipped" if n in (0, 5, 10) else "OrderPaid") for n in range(45)
    ]
    one, eight, world = redrive_both(
        messages, monkeypatch, filters=dlq.Filters(event_type="OrderPaid")
    )
    assert (eight.state, eight.moved, eight.skipped, eight.held_back) == ("partial", 36, 3, 6)
    assert compared(eight) == compared(one)
    assert sorted(g["group"] for g in eight.outcome["held_groups"]) == ["g0", "g10", "g5"]
    assert eight.outcome["unexamined"] == 0
    layout = world["layout"]
    moved = by_group(ids(drain(world["client"], world["source"])))
    assert moved == {g: n for g, n in layout.items() if g not in ("g0", "g5", "g10")}
    left = by_group(ids(drain(world["client"], world["dlq"])))
    assert left == {g: layout[g] for g in ("g0", "g5", "g10")}


def test_one_deep_group_is_read_to_its_end(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every receive but one per 10 messages comes back empty while the pass holds the
    group's messages: that is not the end of the pass."""
    messages = [("solo", "OrderPaid")] * 25
    one, eight, world = redrive_both(messages, monkeypatch)
    assert (eight.state, eight.moved, eight.outcome["unexamined"]) == ("succeeded", 25, 0)
    assert compared(eight) == compared(one)
    assert ids(drain(world["client"], world["source"])) == [f"solo-{n}" for n in range(25)]


def test_max_messages_takes_heads_of_groups_and_no_more(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = [(f"g{n % 10}", "OrderPaid") for n in range(50)]
    one, eight, world = redrive_both(messages, monkeypatch, max_messages=13)
    assert (eight.state, eight.moved) == (one.state, one.moved) == ("succeeded", 13)
    moved = by_group(ids(drain(world["client"], world["source"])))
    assert sum(map(len, moved.values())) == 13
    assert_prefixes(moved, world["layout"])
    assert len(drain(world["client"], world["dlq"])) == 37


def test_a_cancel_leaves_every_group_a_head_moved_and_its_rest_in_order(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, source_url, source_arn, dlq_url = make_queues(fifo=True)
    messages = [(f"g{n % 30}", "OrderPaid") for n in range(300)]
    fill_fifo(client, dlq_url, messages)
    monkeypatch.setattr(sqs, "send_message_batch", GroupSends(sqs.send_message_batch))
    real_report = Operation.report

    def cancel_once_something_moved(self: Operation, *args: Any, **fields: Any) -> bool:
        if fields.get("moved"):
            Operation.objects.filter(pk=self.pk).update(cancel_requested=True)
        return real_report(self, *args, **fields)

    monkeypatch.setattr(Operation, "report", cancel_once_something_moved)
    op = run(dlq_url, destination_arn=source_arn, concurrency=PIPELINES)
    moved = by_group(ids(drain(client, source_url)))
    left = by_group(ids(drain(client, dlq_url)))
    assert (op.state, op.moved) == ("cancelled", sum(map(len, moved.values())))
    assert 0 < op.moved < 300
    layout = layout_of(messages)
    assert_prefixes(moved, layout)
    # Nothing lost, nothing in both places, what is left in order behind what moved.
    for group, numbers in layout.items():
        assert moved.get(group, []) + left.get(group, []) == numbers, group


def test_what_an_earlier_run_sent_is_deleted_not_sent_again(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, source_url, source_arn, dlq_url = make_queues(fifo=True)
    messages = [(f"g{n % 6}", "OrderPaid") for n in range(30)]
    fill_fifo(client, dlq_url, messages)
    op = new_op(dlq_url, engine.RedriveParams(destination_arn=source_arn, concurrency=PIPELINES))
    # An earlier run sent (and recorded) the first six, one per group, and died before
    # deleting them.
    received = client.receive_message(
        QueueUrl=dlq_url, MaxNumberOfMessages=6, MessageSystemAttributeNames=["All"]
    )["Messages"]
    assert sorted(json.loads(m["Body"])["id"] for m in received) == [f"g{n}-{n}" for n in range(6)]
    client.change_message_visibility_batch(
        QueueUrl=dlq_url,
        Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(received)
        ],
    )
    client.send_message_batch(
        QueueUrl=source_url,
        Entries=[
            {
                "Id": str(i),
                "MessageBody": m["Body"],
                "MessageGroupId": m["Attributes"]["MessageGroupId"],
                "MessageDeduplicationId": deduplication_id(m["MessageId"]),
            }
            for i, m in enumerate(received)
        ],
    )
    OperationMessage.objects.bulk_create(
        OperationMessage(operation=op, message_id=m["MessageId"], outcome="sent") for m in received
    )
    sends = GroupSends(sqs.send_message_batch)
    monkeypatch.setattr(sqs, "send_message_batch", sends)
    done = engine.run_inline(op, sleep=lambda s: None)
    assert (done.state, done.moved) == ("succeeded", 30)
    # The run sent only the other 24, each group in order after its first.
    assert sends.sent == {g: n[1:] for g, n in layout_of(messages).items()}
    assert by_group(ids(drain(client, source_url))) == layout_of(messages)


def test_every_send_is_paced_by_the_one_rate(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pipelines draw every batch of every group from the run's one pacer."""
    client, source_url, source_arn, dlq_url = make_queues(fifo=True)
    messages = [(f"g{n % 15}", "OrderPaid") for n in range(60)]
    fill_fifo(client, dlq_url, messages)
    booked: list[int] = []
    lock = threading.Lock()

    def wait(self: redrive_rate.Pacer, count: int, stop: threading.Event) -> bool:
        with lock:
            booked.append(count)
        return True  # the time itself: test_redrive_pipelines.py's pacer tests

    monkeypatch.setattr(redrive_rate.Pacer, "wait", wait)
    op = run(dlq_url, destination_arn=source_arn, concurrency=PIPELINES, rate=50)
    assert (op.state, op.moved, op.progress["rate_limit"]) == ("succeeded", 60, 50)
    assert sum(booked) == 60 and max(booked) <= 10
    assert by_group(ids(drain(client, source_url))) == layout_of(messages)
