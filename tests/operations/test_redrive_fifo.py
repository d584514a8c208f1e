"""FIFO redrive against moto: deduplication IDs, strict group order, whole-queue passes."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from operations import dlq
from operations.aws import sqs
from operations.redrive_entries import Lanes, Pending, deduplication_id
from tests.operations.redrive_world import (
    Refuse,
    drain,
    event_body,
    fill_fifo,
    ids,
    make_queues,
    run,
)

# Every scenario with one loop and with 8 pipelines (the default), threads switching as
# often as Python lets them (see test_redrive_pipelines.py).
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("pipelines", "threads_switch_often"),
]


def test_two_messages_that_share_a_deduplication_id_both_arrive(aws: None) -> None:
    """A reused business key: the DLQ holds two messages sent 6 minutes apart with one ID."""
    client, source_url, source_arn, dlq_url = make_queues(fifo=True)
    for i, when in enumerate([datetime.now(UTC) - timedelta(minutes=6), None]):
        with time_machine.travel(when or datetime.now(UTC)):
            client.send_message(
                QueueUrl=dlq_url,
                MessageBody=event_body(i),
                MessageGroupId="order-42",
                MessageDeduplicationId="order-42",
            )
    op = run(dlq_url, destination_arn=source_arn)
    assert (op.state, op.moved) == ("succeeded", 2)
    assert ids(drain(client, source_url)) == ["e-0", "e-1"]


def test_a_message_that_just_failed_moves_at_once(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It reached the DLQ seconds after it was sent: its own deduplication ID is still in
    the source queue's 5-minute window, so the copy goes with one of its own."""
    client, source_url, source_arn, dlq_url = make_queues(fifo=True)
    client.send_message(
        QueueUrl=source_url,
        MessageBody=event_body(1),
        MessageGroupId="g",
        MessageDeduplicationId="d",
    )
    for _ in range(2):  # maxReceiveCount 1: the second receive moves it to the DLQ
        client.receive_message(QueueUrl=source_url, VisibilityTimeout=0)
    (in_dlq,) = client.receive_message(QueueUrl=dlq_url, VisibilityTimeout=0)["Messages"]
    spy = Refuse(lambda entry: False)
    monkeypatch.setattr(sqs, "send_message_batch", spy)
    op = run(dlq_url, destination_arn=source_arn)
    assert (op.state, op.moved) == ("succeeded", 1)
    assert spy.calls[0][0]["MessageDeduplicationId"] == f"redrive-{in_dlq['MessageId']}"
    assert ids(drain(client, source_url)) == ["e-1"]


def test_deduplication_ids_are_derived_valid_and_stable() -> None:
    assert deduplication_id("4a3f-9") == deduplication_id("4a3f-9") == "redrive-4a3f-9"
    hashed = deduplication_id("x" * 200)
    assert len(hashed) <= 128 and hashed != deduplication_id("x" * 201)


def test_a_refused_message_holds_back_the_rest_of_its_group(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, source_url, source_arn, dlq_url = make_queues(fifo=True)
    fill_fifo(client, dlq_url, [("A", "OrderPaid"), ("B", "OrderPaid")] * 3)  # A-0 B-1 A-2 ...
    refuse = Refuse(lambda entry: json.loads(entry["MessageBody"])["id"] == "A-2")
    monkeypatch.setattr(sqs, "send_message_batch", refuse)
    op = run(dlq_url, destination_arn=source_arn)
    # SQS was never asked to take A-4, the message behind the refused one.
    assert refuse.sent_bodies() == ["A-0", "B-1", "B-3", "B-5"]
    assert (op.state, op.moved, op.failed, op.held_back) == ("partial", 4, 1, 1)
    assert op.outcome["reasons"] == {
        "refused by SQS: InvalidParameterValue": 1,
        "FIFO group order": 1,
    }
    assert op.outcome["held_groups"] == [
        {"group": "A", "held_back": 1, "behind": "refused by SQS: InvalidParameterValue"}
    ]
    assert ids(drain(client, dlq_url)) == ["A-2", "A-4"]


def test_no_batch_holds_two_messages_of_one_group(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entry refused in a batch cannot be overtaken by a later one of its group in it."""
    client, source_url, source_arn, dlq_url = make_queues(fifo=True)
    fill_fifo(client, dlq_url, [(f"g{n % 3}", "OrderPaid") for n in range(12)])
    spy = Refuse(lambda entry: False)
    monkeypatch.setattr(sqs, "send_message_batch", spy)
    op = run(dlq_url, destination_arn=source_arn)
    groups_per_call = [Counter(e["MessageGroupId"] for e in call) for call in spy.calls]
    assert op.moved == 12 and all(max(c.values()) == 1 for c in groups_per_call)
    moved = ids(drain(client, source_url))
    for group in ("g0", "g1", "g2"):
        in_group = [i for i in moved if i.startswith(group)]
        assert in_group == sorted(in_group, key=lambda i: int(i.split("-")[1]))


def test_many_groups_still_fill_their_batches(
    aws: None, monkeypatch: pytest.MonkeyPatch, pipelines: int
) -> None:
    """Messages from several receives are gathered, so one message per group per batch
    still sends full batches when the DLQ has ten or more groups."""
    client, source_url, source_arn, dlq_url = make_queues(fifo=True)
    fill_fifo(client, dlq_url, [(f"g{n // 3}", "OrderPaid") for n in range(30)])
    spy = Refuse(lambda entry: False)
    monkeypatch.setattr(sqs, "send_message_batch", spy)
    op = run(dlq_url, destination_arn=source_arn)
    assert (op.state, op.moved) == ("succeeded", 30)
    sizes = [len(call) for call in spy.calls]
    # Three receives gather ten groups before anything is sent: 5 calls, not one per receive
    # and per message of a group in it (9).
    if pipelines == 1:
        assert sizes == [10, 8, 8, 2, 2]
    else:
        # The same first whole batch; then batches are formed as answers and receives come
        # back (a free group's next messages may join a later batch): no more calls.
        assert sizes[0] == 10 and len(sizes) <= 5


def test_a_filtered_pass_reads_behind_the_groups_it_holds_back(aws: None) -> None:
    """A-0 does not match, so A's later messages are held back; SQS serves no more of A
    while the pass holds A-0, so the pass releases A and reads the rest of A."""
    client, source_url, source_arn, dlq_url = make_queues(fifo=True)
    layout = [("A", "OrderShipped")] + [("A", "OrderPaid"), ("B", "OrderPaid")] * 5
    layout += [("A", "OrderPaid")] * 3  # A-11..A-13: not in the first receive of A
    fill_fifo(client, dlq_url, layout)
    op = run(dlq_url, destination_arn=source_arn, filters=dlq.Filters(event_type="OrderPaid"))
    assert (op.state, op.moved, op.skipped, op.held_back) == ("partial", 5, 1, 8)
    assert op.outcome["held_groups"] == [
        {"group": "A", "held_back": 8, "behind": "did not match the filters"}
    ]
    assert (op.outcome["unexamined"], op.progress["release_rounds"]) == (0, 1)
    assert sorted(ids(drain(client, source_url))) == [f"B-{n}" for n in (10, 2, 4, 6, 8)]


def test_what_sqs_will_not_serve_behind_a_held_group_is_reported(aws: None) -> None:
    """A receive returns at most 10 messages of a group from its head: behind 12 held
    messages of A, the rest of A cannot be examined, and the pass says so."""
    client, source_url, source_arn, dlq_url = make_queues(fifo=True)
    fill_fifo(client, dlq_url, [("A", "OrderShipped")] + [("A", "OrderPaid")] * 14)
    op = run(dlq_url, destination_arn=source_arn, filters=dlq.Filters(event_type="OrderPaid"))
    assert (op.state, op.moved, op.held_back, op.outcome["unexamined"]) == ("failed", 0, 9, 5)
    assert op.outcome["reasons"] == {
        "FIFO group order": 9,
        "not examined: behind a held-back FIFO group": 5,
    }
    assert len(drain(client, dlq_url)) == 15


def pending(lane: str, size: int = 10, url: str = "q") -> Pending:
    message = dlq.describe(sqs.SqsMessage(f"{lane}-{id(object())}", "h", "x", {}, {}))
    return Pending(message, url, {"MessageBody": "x"}, size, lane)


def batches(lanes: Lanes, **limits: Any) -> list[list[str]]:
    out = []
    while lanes:
        out.append([item.lane for item in lanes.next_batch(**limits)])
    return out


def test_a_batch_takes_the_head_of_each_lane() -> None:
    lanes = Lanes()
    for lane in ["a", "a", "b", "a", "c"]:
        lanes.add(pending(lane))
    assert batches(lanes) == [["a", "b", "c"], ["a"], ["a"]]


def test_batches_split_by_count_and_size() -> None:
    lanes = Lanes()
    for n in range(12):
        lanes.add(pending(f"m{n}", size=100_000 if n < 5 else 1))
    assert [len(b) for b in batches(lanes)] == [9, 2, 1]


def test_a_batch_goes_to_one_queue() -> None:
    lanes = Lanes()
    for lane, url in [("a", "q1"), ("b", "q2"), ("c", "q1")]:
        lanes.add(pending(lane, url=url))
    assert batches(lanes) == [["a", "c"], ["b"]]
