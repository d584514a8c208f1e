"""Several receive -> send -> delete pipelines in one redrive run (issue 18).

A redrive's cost is round trips: each batch of 10 is three calls in a row. Here up to
``concurrency`` calls are in flight at once, on threads: boto3's bulk SQS client is
thread-safe (one client, shared; sessions are not, and none is made here) and its
connection pool holds ``AWS_MAX_POOL_CONNECTIONS``. Threads, not asyncio: aiobotocore is
not installed, and the engine's retries, lease and ledger are synchronous code.

Only the AWS calls run on the pool's threads. Everything else stays on the run's own
thread, which is the single writer of the operation's state: deciding what each received
message is (``Redrive._take``), the ledger and its database rows, progress reports, the
lease, visibility extension and cancel. So every guarantee of the one loop holds as it
did: a message is recorded ``sent`` (and the row written) before its delete is sent; a
delete is submitted only for what was sent; counts come from the one ledger.

- ``max_messages``: a receive reserves the messages it asks for before it is sent, so
  the receives in flight never ask for more than what is left.
- ``rate``: one ``Pacer`` shared by the pipelines books every send before it goes.
- cancel and a lost lease: the run's thread reports at least every ``TICK`` seconds and
  sets ``stop``, which pacing pipelines check every 0.2 s; what was sent is deleted and
  what was not is released, as in the one loop.
- the end of the pass: once a receive brings nothing new, no new receives start; when all
  calls are back, the one loop's end-of-pass rules decide (``Redrive._at_the_end``): the
  queue's depth says whether anything is left that the pass has not seen (a receive that
  came back empty while messages remain, as SQS's short polls may, is followed by more
  receives). It does not wait out a long poll on a queue that says it is empty.

What the one loop knows that pipelines cannot: a copy this run sent that comes back to
the DLQ is known by its new message ID only once its send's answer is handled, and a
receive in another pipeline may bring it first. It is then known by its SentTimestamp
(after the pass's start), unless it was sent in the pass's very first millisecond: a copy
comes back only after its consumer failed it maxReceiveCount times, so in practice never.

A FIFO DLQ runs pipelines too: batches of different message groups are in flight at
once, and within a group the one loop's order holds.

- A batch holds at most one message of a group (``Lanes``), and a group with a batch in
  flight is busy: its next message goes in a batch only once that send's answer was
  handled (``Outbox.record_sent``), so a message that failed stops its group, and what
  waits behind it is held back, before anything later of the group is sent. Messages of
  a group arrive in order: SQS serves a group's later messages only once those the pass
  holds are deleted (or visible again), so a receive never brings a group's message
  before an earlier one of it.
- Batches are sent whole (10 groups, or full by size) while receives may still bring
  more groups, as the one loop gathers several receives before it sends; a batch that
  is not whole goes once no receive is in flight and none can start.
- A receive that brings nothing while the pass holds messages may have found every
  group it could serve held by the pass: that is not the end of the pass. Receives
  start again once a delete frees a group (the pass holds nothing of it any more), and
  once everything is back, one more receive decides, as the one loop's next step does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TYPE_CHECKING, Any

from operations.aws import sqs
from operations.aws.context import ContextThreadPoolExecutor
from operations.redrive_entries import Pending
from operations.redrive_mover import Done, Mover
from operations.redrive_pass import POOL_BYTES, POOL_MESSAGES

if TYPE_CHECKING:
    from operations.redrive_pass import Redrive

logger = logging.getLogger(__name__)

# The run's thread looks at the operation (cancel, lease, rate) at least this often.
TICK = 0.5


class Pipelines:
    def __init__(self, run: Redrive) -> None:
        self.run_ = run
        self.concurrency = run.concurrency
        self.stop = threading.Event()
        # What to do with each call's result, on the run's thread.
        self.calls: dict[Future[Any], Callable[[Any], None]] = {}
        self.receiving = 0
        # Messages asked for by the receives in flight (``max_messages``).
        self.reserved = 0
        # The last receive brought nothing new: start no more until all calls are back.
        self.quiet = False
        self.last_batch = False
        # FIFO: that receive came back empty while the pass held messages, which may hold
        # every group SQS could serve: receive again once a group is free (``_deleted``).
        self.blocked = False
        # Receives at once. FIFO: 1 after a receive that brought less than it asked (SQS
        # had no other group to serve), doubled after each full one; else ``concurrency``.
        self.window = 1 if run.fifo else self.concurrency
        # FIFO, once a receive came back empty while the pass held messages: SQS can serve
        # only the groups the pass frees since, so that many receives may start (None: no
        # such bound).
        self.credit: int | None = None
        self.moved = False
        self.kept = run.clock()
        # Batches being sent (their messages are in hand: kept hidden by ``keepalive``).
        self.sending: dict[int, list[Pending]] = {}
        # Pipelines' own mover: their entry retries call no keepalive (a database write)
        # from a pool thread; the run's thread keeps the lease meanwhile.
        self.mover = Mover(
            budget=run.lease, sleep=run.sleep, clock=run.clock, keepalive=lambda: None
        )

    def run(self) -> bool:
        """Run the pass to its end; True if it was cancelled."""
        with ContextThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix=f"redrive-{self.run_.op.pk}"
        ) as pool:
            self.pool = pool
            try:
                return self._loop()
            finally:
                self.stop.set()
                self._drain()

    def _loop(self) -> bool:
        r = self.run_
        while not r.lost_lease:
            if r.op.cancel_requested:
                return True
            self._start_calls()
            if not self.calls:
                if not self._next_round():
                    return False
                continue
            done, _ = wait(self.calls, timeout=TICK, return_when=FIRST_COMPLETED)
            for future in done:
                self.calls.pop(future)(future.result())
            # Progress once a batch is moved; at least every TICK the lease, the hiding of
            # the messages in hand (pacing may hold them long) and cancel are looked after.
            if self.moved:
                self.moved = False
                r._report(**r._fields())
            if r.clock() - self.kept >= TICK:
                self.kept = r.clock()
                r.keepalive()
        return False

    # --- starting calls ------------------------------------------------------------

    def _start_calls(self) -> None:
        """Fill the free pipelines: deletes first (they free messages), then sends, then
        receives while fewer than ``concurrency`` batches wait to be sent. FIFO: whole
        batches, receives, the batches that are not whole once no receive is in flight,
        then deletes."""
        r = self.run_
        if not r.fifo:
            self._start_deletes()
        # FIFO: whole batches only while receives may bring more groups; deletes once the
        # sends are started (they may wait for those, ``_deletes_due``).
        self._send_batches(whole=r.fifo)
        self._start_receives()
        if r.fifo:
            if not self.receiving:
                self._send_batches(whole=False)
            self._start_deletes()

    def _start_deletes(self) -> None:
        outbox = self.run_.outbox
        if not self._deletes_due():
            return
        for chunk in outbox.deletes():
            handles = outbox.handles_of(chunk)
            if handles:
                self._submit(self._delete_call, (chunk, handles), self._deleted)

    def _deletes_due(self) -> bool:
        """FIFO batches may hold a message or two (few groups): their deletes wait for a
        whole DeleteMessageBatch while sends are in flight (a group is served again only
        once all the pass holds of it is deleted, so little is lost by waiting)."""
        waiting = len(self.run_.outbox.to_delete)
        if not self.run_.fifo or not waiting:
            return bool(waiting)
        return waiting >= sqs.MAX_BATCH_ENTRIES or not self.sending

    def _send_batches(self, *, whole: bool) -> None:
        lanes = self.run_.outbox.lanes
        while len(self.calls) < self.concurrency and lanes:
            batch = lanes.next_batch(busy=self._busy(), whole=whole)
            if not batch:
                return
            self._send(batch)

    def _busy(self) -> set[str]:
        """Lanes with a batch in flight (FIFO groups; on a standard queue, message IDs)."""
        return {item.lane for batch in self.sending.values() for item in batch}

    def _start_receives(self) -> None:
        r = self.run_
        if self.quiet or r._all_named_found():
            return
        while (
            len(self.calls) < self.concurrency
            and self.receiving < (self.window if self.credit is None else self.concurrency)
            and (self.credit is None or self.credit > 0)
            and not self._pool_full()
        ):
            asked = self._askable()
            if asked <= 0:
                return
            if self.credit is not None:
                self.credit -= 1
            self._receive(asked, r.params.wait_seconds if self._idle() else 0)

    def _pool_full(self) -> bool:
        lanes = self.run_.outbox.lanes
        batches = self.concurrency * sqs.MAX_BATCH_ENTRIES
        if not self.run_.fifo:
            return len(lanes) >= batches
        # FIFO: a batch takes one message of a group, and a receive brings up to 10 of one
        # group, so ``concurrency`` whole batches need that many times 10 groups in hand;
        # bounded in messages and bytes as the one loop's pool is, once per pipeline.
        return (
            lanes.lane_count >= batches
            or len(lanes) >= self.concurrency * POOL_MESSAGES
            or lanes.bytes >= self.concurrency * POOL_BYTES
        )

    def _askable(self) -> int:
        r = self.run_
        if r.params.max_messages is None:
            return sqs.MAX_BATCH_ENTRIES
        return min(sqs.MAX_BATCH_ENTRIES, r._remaining() - self.reserved)

    def _idle(self) -> bool:
        return not self.calls and not self.run_.outbox

    def _submit(
        self, call: Callable[..., Any], args: tuple[Any, ...], then: Callable[[Any], None]
    ) -> None:
        future = self.pool.submit(call, *args)
        self.calls[future] = then

    def _receive(self, asked: int, wait_seconds: int) -> None:
        self.receiving += 1
        self.reserved += asked if self.run_.params.max_messages is not None else 0
        r = self.run_
        holding = self._holding()
        future = self.pool.submit(
            sqs.receive_messages,
            r.url,
            max_messages=asked,
            visibility_timeout=r.visibility,
            wait_seconds=wait_seconds,
        )
        self.calls[future] = lambda batch: self._received(asked, batch, holding)

    def _holding(self) -> bool:
        """The pass has messages in hand (waiting, being sent or being deleted)."""
        return bool(self.run_.outbox) or bool(self.sending)

    def _send(self, batch: list[Pending]) -> None:
        items, entries = self.run_.outbox.prepare(batch)
        key = id(batch)
        self.sending[key] = batch
        self._sync_sending()
        self._submit(
            self._send_call,
            (batch[0].url, entries),
            lambda done: self._sent(key, items, done),
        )

    # --- on the pool's threads: AWS calls only ---------------------------------------

    def _send_call(self, url: str, entries: dict[str, dict[str, object]]) -> Done | None:
        if not self.run_.pacer.wait(len(entries), self.stop):
            return None  # stopped while pacing: not sent, released at the end
        return self.mover.send(url, entries)

    def _delete_call(self, chunk: dict[str, str], handles: dict[str, str]) -> tuple[Any, Done]:
        return chunk, self.mover.delete(self.run_.url, handles)

    # --- results, on the run's thread ------------------------------------------------

    def _received(self, asked: int, batch: list[sqs.SqsMessage], holding: bool) -> None:
        r = self.run_
        self.receiving -= 1
        if r.params.max_messages is not None:
            self.reserved -= asked
        r.receives += 1
        fresh = r.take_all(batch)
        if r.fifo:
            full = fresh and len(batch) >= asked
            self.window = min(self.concurrency, self.window * 2) if full else 1
        if fresh:
            self.quiet = False
            r.stale_receives = 0
        else:
            self.quiet = True
            self.last_batch = bool(batch)
            # Empty while the pass held messages (when it was asked, or now). One that
            # brought only messages the pass met is bounded as in the one loop (``stale``).
            if r.fifo and not batch and (holding or self._holding()):
                self.blocked = True
                self.credit = 0

    def _sent(self, key: int, items: dict[str, Pending], done: Done | None) -> None:
        self.sending.pop(key, None)
        self._sync_sending()
        if done is not None:
            self.run_.outbox.record_sent(items, done)

    def _deleted(self, result: tuple[dict[str, str], Done]) -> None:
        chunk, done = result
        outbox = self.run_.outbox
        groups = outbox.groups_deleting(chunk) if self.run_.fifo else set()
        outbox.record_deleted(chunk, done)
        self.moved = True
        if not outbox:
            outbox.since = None
        freed = self._freed(groups) if groups else 0
        if freed:
            self.blocked = self.quiet = False
            if self.credit is not None:
                self.credit += freed

    def _freed(self, groups: set[str]) -> int:
        """FIFO: how many of ``groups`` have nothing left in hand and did not stop (a
        stopped group's held messages keep it from SQS's receives): the groups that the
        next receives may serve again."""
        stopped = self.run_.groups.stopped
        left = self.run_.outbox.groups_in_hand()
        return sum(1 for g in groups if g and g not in left and g not in stopped)

    def _sync_sending(self) -> None:
        self.run_.outbox.sending = [item for batch in self.sending.values() for item in batch]

    # --- the end of the pass ---------------------------------------------------------

    def _next_round(self) -> bool:
        """Nothing in flight and nothing to send: go on, or end the pass (False)."""
        r = self.run_
        if r._remaining() <= 0:
            # A part given more of ``max_messages`` by its ended siblings receives again.
            return not r._limit_reached() and r._report()
        if r._all_named_found():
            return False
        if self.blocked or (r.fifo and not self.quiet):
            # FIFO: the last receive may have met only groups the pass held (or it brought
            # something), and the pass now holds nothing: receive again before deciding,
            # as the one loop's next step does.
            self.blocked = self.quiet = False
            self.credit, self.window = None, 1
            return r._report()
        if not self.quiet:
            # Nothing could start (a receive is all that is left): treat as an empty one.
            self.quiet = True
            self.last_batch = False
        if self.last_batch and r._read_on_after_stale():
            self.quiet = False
            return r._report()
        r.stale_receives = 0
        if r._at_the_end():
            self.quiet = False
            self.credit, self.window = None, 1
            return True
        return False

    def _drain(self) -> None:
        """Wait for the calls in flight and record what they did (a sent message must be
        recorded sent, so that it is deleted, not released and not sent again); then
        delete what was sent, unless the lease is lost (the next worker does it)."""
        r = self.run_
        for future in list(self.calls):
            then = self.calls.pop(future)
            try:
                then(future.result())
            except Exception as exc:  # the pass is over; one failed call changes nothing
                logger.warning(
                    "operation %s: call failed while stopping: %s", r.op.pk, exc, exc_info=True
                )
        if not r.lost_lease:
            r.outbox._delete()
