"""What a redrive did with each message: ``OperationMessage`` rows, and the counts from them.

Every run of an operation (the first, or one that resumes after its worker died) loads
the rows of the runs before it, so each message counts once however many workers saw
it, and the moves of earlier runs are kept. A message is recorded ``sent`` right after
SendMessageBatch accepted it and before it is deleted from the DLQ: a run that meets a
``sent`` message again deletes it without sending it a second time.

Rows are buffered and written as one multi-row upsert, at the latest just before each
DeleteMessageBatch (so the ``sent`` rows it depends on are durable). ``moved`` rows are
not needed for that, and wait for a few hundred or the end of the run: a ``sent`` row
counts as moved until its message is met again in the DLQ, and a ``sent`` row whose
message a run never met (a previous run deleted it and died before writing "moved") is
recorded moved once a pass has seen the whole DLQ (``settle``).
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.utils import timezone

from operations.models import OperationMessage
from operations.redrive_ids import IdMap

Outcome = OperationMessage.Outcome
# Outcomes of messages the operation took on (they count towards ``max_messages``).
TAKEN = frozenset({Outcome.SENT, Outcome.MOVED, Outcome.FAILED, Outcome.HELD_BACK})
# Buffered rows written without waiting for the next delete.
FLUSH_ROWS = 500
# Rows per INSERT statement: 5 parameters each, under SQLite's 999-parameter limit.
RECORD_CHUNK = 150


# The byte each message has in the ledger's table: this run met it (``MET``), and the code
# of its (outcome, reason) pair in ``Ledger._pairs`` (0: no outcome). A pass has a handful
# of distinct pairs; past ``_ODD - 1`` of them a message's pair is kept in ``Ledger._odd``.
MET = 0x80
_CODE = 0x7F
_ODD = 0x7F


@dataclass(frozen=True)
class Counts:
    moved: int
    failed: int
    skipped: int
    held_back: int
    returned: int

    @property
    def taken(self) -> int:
        return self.moved + self.failed + self.held_back


class Ledger:
    """The outcome of every message an operation met, kept in memory and in the database,
    and which of them this run met.

    In memory one packed entry a message (``IdMap``: 16 bytes of ID and one byte for both),
    not a ``str`` and a tuple in a dict: a pass of 1,000,000 messages keeps them all."""

    def __init__(self, operation_id: int) -> None:
        self.operation_id = operation_id
        self._ids = IdMap()
        self._pairs: list[tuple[str, str] | None] = [None]
        self._codes: dict[tuple[str, str], int] = {}
        self._odd: dict[str, tuple[str, str]] = {}
        self._counts: Counter[str] = Counter()
        # Written with the next flush (at most ``FLUSH_ROWS``): message ID -> pair.
        self._buffer: dict[str, tuple[str, str]] = {}
        self._moved: dict[str, tuple[str, str]] = {}
        # Sent, but this run's delete from the DLQ failed: message ID -> why.
        self.undeleted: dict[str, str] = {}
        rows = OperationMessage.objects.filter(operation_id=operation_id).values_list(
            "message_id", "outcome", "reason"
        )
        for message_id, outcome, reason in rows.iterator():
            self._store(message_id, 0, (outcome, reason))
            self._counts[outcome] += 1

    def __contains__(self, message_id: str) -> bool:
        """Whether the message has a recorded outcome (this run's or an earlier one's)."""
        return bool(self._ids.get(message_id) & _CODE)

    def outcome(self, message_id: str) -> str | None:
        entry = self._entry(message_id, self._ids.get(message_id))
        return entry[0] if entry else None

    def meet(self, message_id: str) -> bool:
        """This run met the message; True if it had not met it before."""
        value = self._ids.get(message_id)
        if value & MET:
            return False
        self._ids.set(message_id, value | MET)
        return True

    def met(self, message_id: str) -> bool:
        return bool(self._ids.get(message_id) & MET)

    def note(self, message_id: str, outcome: str, reason: str = "") -> None:
        """Record ``outcome`` for the message (written with the next ``flush``)."""
        pair = (outcome, reason[:256])
        value = self._ids.get(message_id)
        previous = self._entry(message_id, value)
        if previous == pair:
            return
        if previous is not None:
            self._counts[previous[0]] -= 1
        self._counts[outcome] += 1
        self._store(message_id, value, pair)
        if outcome == Outcome.MOVED:
            self.undeleted.pop(message_id, None)
            self._buffer.pop(message_id, None)  # not written yet: "moved" will do
            self._moved[message_id] = pair
        else:
            self._moved.pop(message_id, None)
            self._buffer[message_id] = pair
        if len(self._buffer) + len(self._moved) >= FLUSH_ROWS:
            self.flush()

    def settle(self) -> None:
        """The pass saw the whole DLQ: a message recorded sent by an earlier run that this
        run never met is not in the DLQ any more (that run's delete went through before it
        died, its "moved" row did not): record it moved."""
        sent = {code for code, pair in enumerate(self._pairs) if pair and pair[0] == Outcome.SENT}
        gone = [
            message_id
            for message_id, value in self._ids.items(wanted=sent | {_ODD})
            if self.outcome(message_id) == Outcome.SENT
        ]
        for message_id in gone:
            self.note(message_id, Outcome.MOVED)

    def _entry(self, message_id: str, value: int) -> tuple[str, str] | None:
        code = value & _CODE
        return self._odd[message_id] if code == _ODD else self._pairs[code]

    def _store(self, message_id: str, value: int, pair: tuple[str, str]) -> None:
        """Give the message ``pair`` (``value``: its byte until now)."""
        code = self._codes.get(pair)
        if code is None and len(self._pairs) < _ODD:
            code = self._codes[pair] = len(self._pairs)
            self._pairs.append(pair)
        if value & _CODE == _ODD:
            del self._odd[message_id]
        if code is None:
            self._odd[message_id] = pair
            code = _ODD
        self._ids.set(message_id, (value & MET) | code)

    def flush(self, *, moved: bool = True) -> None:
        """Write the buffered outcomes (without ``moved``: not the "moved" rows), one
        multi-row upsert per ``RECORD_CHUNK`` rows."""
        rows = list(self._buffer.items())
        self._buffer.clear()
        if moved:
            rows += self._moved.items()
            self._moved.clear()
        if not rows:
            return
        conn = connections[DEFAULT_DB_ALIAS]
        field = OperationMessage._meta.get_field("updated_at")
        assert isinstance(field, models.Field)
        now = field.get_db_prep_save(timezone.now(), conn)
        with conn.cursor() as cursor:
            for start in range(0, len(rows), RECORD_CHUNK):
                chunk = rows[start : start + RECORD_CHUNK]
                params = [
                    value
                    for message_id, (outcome, reason) in chunk
                    for value in (self.operation_id, message_id[:128], outcome, reason, now)
                ]
                cursor.execute(_upsert(conn.vendor, len(chunk)), params)

    def counts(self) -> Counts:
        c = self._counts
        undeleted = len(self.undeleted)
        return Counts(
            moved=c[Outcome.MOVED] + c[Outcome.SENT] - undeleted,
            failed=c[Outcome.FAILED] + undeleted,
            skipped=c[Outcome.NOT_MATCHING],
            held_back=c[Outcome.HELD_BACK],
            returned=c[Outcome.RETURNED],
        )

    def reasons(self) -> Counter[str]:
        """Why messages it took on did not move, grouped: reason -> how many."""
        reasons: Counter[str] = Counter()
        shown = (Outcome.FAILED, Outcome.HELD_BACK)
        for code, pair in enumerate(self._pairs):
            if pair and pair[0] in shown:
                count = self._ids.count(code) + self._ids.count(code | MET)
                if count:
                    reasons[pair[1] or pair[0]] += count
        odd = self._odd.values()
        reasons.update(reason or outcome for outcome, reason in odd if outcome in shown)
        reasons.update(self.undeleted.values())
        return reasons


@functools.lru_cache(maxsize=8)
def _upsert(vendor: str, rows: int) -> str:
    """The INSERT of ``rows`` rows; a message already recorded takes the new outcome
    (``ON CONFLICT ... DO UPDATE`` reads the same on SQLite and PostgreSQL)."""
    meta = OperationMessage._meta
    quote = connection.ops.quote_name

    def column(name: str) -> str:
        field = meta.get_field(name)
        assert isinstance(field, models.Field)
        return quote(str(field.column))

    columns = ", ".join(
        column(name) for name in ("operation", "message_id", "outcome", "reason", "updated_at")
    )
    key = f"{column('operation')}, {column('message_id')}"
    updates = ", ".join(
        f"{column(name)} = excluded.{column(name)}" for name in ("outcome", "reason", "updated_at")
    )
    values = ", ".join(["(%s, %s, %s, %s, %s)"] * rows)
    return (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {values} "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )
