"""The packed message IDs a redrive keeps for its whole pass (operations/redrive_ids.py), and
the ledger built on them: same answers as a set and a dict, a fraction of the memory."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from operations import redrive as engine
from operations import redrive_ids
from operations.models import OperationMessage
from operations.redrive_ids import IdMap, IdSet, pack, unpack
from operations.redrive_ledger import Ledger
from tests.operations.redrive_world import new_op


def uuids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def test_a_uuid_packs_to_16_bytes_and_back() -> None:
    message_id = str(uuid.uuid4())
    key = pack(message_id)
    assert key is not None and len(key) == 16
    assert unpack(key) == message_id


@pytest.mark.parametrize(
    "message_id",
    ["m1", "", str(uuid.uuid4()).upper(), str(uuid.uuid4()).replace("-", ""), "1" * 36],
)
def test_other_ids_do_not_pack(message_id: str) -> None:
    assert pack(message_id) is None


@pytest.mark.parametrize("mapped_bytes", [64 * 1024, 1024])
def test_the_map_answers_like_a_dict_across_growth(
    mapped_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also with the key arrays in memory maps from 1 KB on (64 KB would need 250,000 IDs)."""
    monkeypatch.setattr(redrive_ids, "MAPPED_BYTES", mapped_bytes)
    ids = [*uuids(20_000), "m-not-a-uuid", str(uuid.uuid4()).upper()]
    expected = {message_id: i % 255 + 1 for i, message_id in enumerate(ids)}
    table = IdMap()
    for message_id, value in expected.items():
        table.set(message_id, value)
    table.set(ids[0], 7)  # a new value for a key it has
    expected[ids[0]] = 7
    assert len(table) == len(expected)
    assert all(table.get(i) == v for i, v in expected.items())
    assert [table.get(i) for i in uuids(100)] == [0] * 100


def test_items_and_count_give_back_the_ids_with_a_value() -> None:
    table = IdMap()
    ids = uuids(1000)
    for i, message_id in enumerate(ids):
        table.set(message_id, 3 if i % 10 == 0 else 5)
    table.set("odd-one", 3)
    wanted = sorted(i for i, v in table.items(wanted={3}))
    assert wanted == sorted([*ids[::10], "odd-one"])
    assert (table.count(3), table.count(5), table.count(9)) == (101, 900, 0)


def test_the_map_takes_at_most_30_bytes_a_uuid() -> None:
    table = IdMap()
    for message_id in uuids(50_000):
        table.set(message_id, 1)
    assert table.nbytes() / 50_000 < 30  # 17-byte slots, at least 0.59 full once grown


def test_a_set_of_ids() -> None:
    seen = IdSet()
    first, second = uuids(2)
    seen.add(first)
    seen.add("copy-1")
    assert (first in seen, "copy-1" in seen, second in seen, len(seen)) == (True, True, False, 2)


@pytest.mark.django_db
def test_the_ledger_knows_what_this_run_met_apart_from_earlier_runs_outcomes() -> None:
    op = new_op("https://sqs/q/x-dlq", engine.RedriveParams())
    earlier, now = uuids(2)
    OperationMessage.objects.create(operation=op, message_id=earlier, outcome="sent")
    ledger = Ledger(op.pk)
    assert (earlier in ledger, ledger.met(earlier), now in ledger) == (True, False, False)
    assert (ledger.meet(now), ledger.meet(now), ledger.met(now), now in ledger) == (
        True,
        False,
        True,
        False,
    )
    ledger.note(now, "moved")
    assert (ledger.outcome(now), ledger.met(now), ledger.outcome(earlier)) == (
        "moved",
        True,
        "sent",
    )


@pytest.mark.django_db
def test_settle_records_moved_only_what_an_earlier_run_sent_and_this_one_never_met() -> None:
    op = new_op("https://sqs/q/x-dlq", engine.RedriveParams())
    gone, still_there, failed = uuids(3)
    for message_id, outcome in ((gone, "sent"), (still_there, "sent"), (failed, "failed")):
        OperationMessage.objects.create(operation=op, message_id=message_id, outcome=outcome)
    OperationMessage.objects.create(operation=op, message_id="hand-made", outcome="sent")
    ledger = Ledger(op.pk)
    ledger.meet(still_there)
    ledger.settle()
    ledger.flush()
    rows = dict(OperationMessage.objects.filter(operation=op).values_list("message_id", "outcome"))
    assert rows == {gone: "moved", still_there: "sent", failed: "failed", "hand-made": "moved"}


@pytest.mark.django_db
def test_reasons_and_counts_hold_past_the_distinct_reasons_the_table_codes() -> None:
    """More distinct (outcome, reason) pairs than one byte codes go to a dict: same counts."""
    op = new_op("https://sqs/q/x-dlq", engine.RedriveParams())
    ledger = Ledger(op.pk)
    ids = uuids(400)
    for i, message_id in enumerate(ids):
        ledger.meet(message_id)
        ledger.note(message_id, "failed", f"refused by SQS: E{i % 200}")
    for message_id in ids[:100]:
        ledger.note(message_id, "sent")
    for message_id in ids[:50]:
        ledger.note(message_id, "moved")
    expected = Counter(f"refused by SQS: E{i % 200}" for i in range(100, 400))
    assert ledger.reasons() == expected
    counts = ledger.counts()
    assert (counts.moved, counts.failed) == (100, 300)
    assert [ledger.outcome(i) for i in (ids[0], ids[60], ids[399])] == ["moved", "sent", "failed"]
