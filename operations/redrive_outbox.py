"""The messages a redrive pass has in hand: waiting to be sent, or sent and to be deleted.

Sending takes one message per FIFO group per batch (``Lanes``); an entry that is not
sent stops its group, and what waits behind it in that group is held back. What was
sent is recorded ``sent`` in the ledger, the ledger is written, and only then are the
messages deleted from the DLQ and recorded ``moved``: a worker that dies between send
and delete leaves rows from which the next run deletes without sending again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.db import IntegrityError

from operations import dlq
from operations.aws import sqs
from operations.models import TouchedCorrelation
from operations.redrive_entries import Lanes, Pending
from operations.redrive_groups import GroupOrder
from operations.redrive_ids import IdSet
from operations.redrive_ledger import Ledger, Outcome
from operations.redrive_mover import Done, Mover

logger = logging.getLogger(__name__)

FIFO_ORDER = "FIFO group order"
# Correlation IDs buffered before they are written as TouchedCorrelation rows.
TOUCHED_FLUSH = 100


class Outbox:
    def __init__(
        self,
        *,
        operation_id: int,
        url: str,
        fifo: bool,
        ledger: Ledger,
        groups: GroupOrder,
        mover: Mover,
        handles: dict[str, str],
        clock: Callable[[], float],
    ) -> None:
        self.operation_id = operation_id
        self.url = url
        self.fifo = fifo
        self.ledger = ledger
        self.groups = groups
        self.mover = mover
        # The pass's receipt handles (message id -> latest), shared: deleted ones leave it.
        self.handles = handles
        self.clock = clock
        self.lanes = Lanes()
        # The batch being sent: out of its lanes, not yet to delete.
        self.sending: list[Pending] = []
        self.to_delete: dict[str, dlq.DlqMessage | None] = {}
        # Taken to delete, the delete not done yet (its message, for the correlation ID).
        self._deleting: dict[str, dlq.DlqMessage | None] = {}
        # When the oldest message in hand was received (to keep it hidden in time).
        self.since: float | None = None
        # Copies this run sent (their new message IDs): one whose consumer fails again comes
        # back to the DLQ under that ID, and moving it again would loop forever. A copy's
        # SentTimestamp tells it from the pass's own messages once it is later than the
        # pass's start; kept only until ``copies_until`` (epoch seconds), past which every
        # copy is (see Redrive), so a pass of millions does not keep an ID for each; packed.
        self.copies = IdSet()
        self.copies_until = float("inf")
        self.touched: set[str] = set()
        # A sibling part sent these (redrive_parts): to delete, not counted here.
        self.foreign: set[str] = set()
        self.foreign_deleted = 0
        self.sent = 0
        self.batches = 0

    def __bool__(self) -> bool:
        return bool(self.lanes or self.to_delete or self._deleting)

    def add(self, item: Pending) -> None:
        """A message to send."""
        self._received()
        self.lanes.add(item)

    def add_sent(self, message_id: str, message: dlq.DlqMessage | None) -> None:
        """A message sent already (by an earlier run, or whose delete failed): delete it."""
        self._received()
        self.to_delete.setdefault(message_id, message)

    def add_foreign(self, message_id: str) -> None:
        """A message a sibling part sent and did not delete (its worker died): delete it
        without recording it, the sibling's row counts it."""
        self.foreign.add(message_id)
        self.add_sent(message_id, None)

    def in_hand(self) -> list[str]:
        waiting = [*self.sending, *self.lanes.items()]
        return [item.message_id for item in waiting] + [*self.to_delete, *self._deleting]

    def groups_in_hand(self) -> set[str]:
        """FIFO: the groups of which the pass has messages waiting, being sent or being
        deleted. SQS serves no later message of such a group until these are deleted."""
        deleting = (*self.to_delete.values(), *self._deleting.values())
        return {
            *self.lanes.names(),
            *(item.lane for item in self.sending),
            *(_group(message) for message in deleting),
        }

    def groups_deleting(self, chunk: dict[str, str]) -> set[str]:
        """FIFO: the groups of the messages of a delete ``chunk`` (entry ID -> message ID)."""
        return {_group(self._deleting.get(message_id)) for message_id in chunk.values()}

    def flush(self, *, pace: Callable[[], None], stop: Callable[[], bool]) -> None:
        """Send everything waiting, one message per group per batch (``pace`` after each
        batch, until ``stop``), and delete what was sent."""
        while self.lanes and not stop():
            self._send(self.lanes.next_batch())
            if len(self.to_delete) >= sqs.MAX_BATCH_ENTRIES:
                self._delete()
            pace()
        self._delete()
        if not self.lanes:
            self.since = None

    def record_correlations(self, *, flush: bool = False) -> None:
        """Write the moved correlation IDs every few batches and at the end (one INSERT
        per batch would cost as much as the batch's three AWS calls)."""
        if not self.touched or not (flush or len(self.touched) >= TOUCHED_FLUSH):
            return
        try:
            TouchedCorrelation.record(self.operation_id, self.touched)
        except IntegrityError:
            logger.warning("operation %s: could not record correlation IDs", self.operation_id)
        self.touched.clear()

    def _received(self) -> None:
        if self.since is None:
            self.since = self.clock()

    def _send(self, batch: list[Pending]) -> None:
        items, entries = self.prepare(batch)
        self.sending = batch
        try:
            result = self.mover.send(batch[0].url, entries)
        finally:
            self.sending = []
        self.record_sent(items, result)

    @staticmethod
    def prepare(batch: list[Pending]) -> tuple[dict[str, Pending], dict[str, dict[str, object]]]:
        """The batch's entries by entry ID, and the SendMessageBatch entries."""
        items = {f"m{i}": item for i, item in enumerate(batch)}
        entries = {key: {**item.entry, "Id": key} for key, item in items.items()}
        return items, entries

    def record_sent(self, items: dict[str, Pending], result: Done) -> None:
        """Record what a send did: sent messages are to delete, the others did not move."""
        for key, copy_id in result.succeeded.items():
            item = items[key]
            self.ledger.note(item.message_id, Outcome.SENT)
            self.to_delete[item.message_id] = item.message
            if copy_id and time.time() < self.copies_until:
                self.copies.add(copy_id)
        self.sent += len(result.succeeded)
        for key, why in result.failed.items():
            self._not_sent(items[key], why)
        self.batches += 1

    def _not_sent(self, item: Pending, why: str) -> None:
        self.ledger.note(item.message_id, Outcome.FAILED, why)
        if not self.fifo:
            return
        # Nothing later in its group may move now: not what waits to be sent either.
        self.groups.stop(item.lane, why, earliest=True)
        self.groups.hold(item.lane, item.message_id)
        for rest in self.lanes.drop(item.lane):
            self.ledger.note(rest.message_id, Outcome.HELD_BACK, FIFO_ORDER)
            self.groups.hold(item.lane, rest.message_id, held_back=True)

    def _delete(self) -> None:
        for chunk in self.deletes():
            handles = self.handles_of(chunk)
            if handles:
                self.record_deleted(chunk, self.mover.delete(self.url, handles))

    def handles_of(self, chunk: dict[str, str]) -> dict[str, str]:
        """The receipt handles of a delete chunk (entry ID -> message ID), ``chunk`` trimmed
        in place to the messages that still have one. A message without one was received
        again while an earlier delete of it was in flight, and that delete went through:
        it is moved, nothing is left to delete."""
        for key, message_id in list(chunk.items()):
            if message_id not in self.handles:
                del chunk[key]
                self._deleting.pop(message_id, None)
        return {k: self.handles[i] for k, i in chunk.items()}

    def deletes(self) -> list[dict[str, str]]:
        """Take what waits to be deleted, in DeleteMessageBatch chunks (entry ID -> message
        ID), once the "sent" rows are written: a worker that dies after this is followed by
        one that deletes those messages instead of sending them again."""
        if not self.to_delete:
            return []
        self.ledger.flush(moved=False)
        waiting = list(self.to_delete)
        size = sqs.MAX_BATCH_ENTRIES
        self._deleting.update(self.to_delete)
        self.to_delete.clear()
        return [
            {f"d{i}": message_id for i, message_id in enumerate(waiting[start : start + size])}
            for start in range(0, len(waiting), size)
        ]

    def record_deleted(self, chunk: dict[str, str], result: Done) -> None:
        """Record what a delete of ``chunk`` (entry ID -> message ID) did."""
        for key in result.succeeded:
            message_id = chunk[key]
            self.handles.pop(message_id, None)
            message = self._deleting.pop(message_id, None)
            if message_id in self.foreign:
                self.foreign.discard(message_id)
                self.foreign_deleted += 1
                continue
            self.ledger.note(message_id, Outcome.MOVED)
            if message is not None and message.correlation_id:
                self.touched.add(message.correlation_id[:256])
        for key, why in result.failed.items():
            self._deleting.pop(chunk[key], None)
            if chunk[key] in self.foreign:
                # Its sibling's row counts it; deleted when received again.
                logger.warning(
                    "operation %s: %s not deleted: %s", self.operation_id, chunk[key], why
                )
                continue
            # Unless another delete of it (after it was received again) went through.
            if self.ledger.outcome(chunk[key]) != Outcome.MOVED:
                self.ledger.undeleted[chunk[key]] = why
        self.record_correlations()


def _group(message: dlq.DlqMessage | None) -> str:
    """A message's FIFO group ("" when the message is not at hand: received again to
    delete it again, after a delete failed)."""
    return message.raw.attributes.get("MessageGroupId", "") if message else ""
