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

A FIFO DLQ runs one loop (``Redrive.concurrency`` is 1): its group order is the one loop's.
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
        receives while fewer than ``concurrency`` batches wait to be sent."""
        r = self.run_
        outbox = r.outbox
        if outbox.to_delete:
            for chunk in outbox.deletes():
                handles = outbox.handles_of(chunk)
                if handles:
                    self._submit(self._delete_call, (chunk, handles), self._deleted)
        while len(self.calls) < self.concurrency and outbox.lanes:
            self._send(outbox.lanes.next_batch())
        if self.quiet or r._all_named_found():
            return
        while len(self.calls) < self.concurrency and len(outbox.lanes) < self._pool_limit():
            asked = self._askable()
            if asked <= 0:
                return
            self._receive(asked, r.params.wait_seconds if self._idle() else 0)

    def _pool_limit(self) -> int:
        return self.concurrency * sqs.MAX_BATCH_ENTRIES

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
        future = self.pool.submit(
            sqs.receive_messages,
            r.url,
            max_messages=asked,
            visibility_timeout=r.visibility,
            wait_seconds=wait_seconds,
        )
        self.calls[future] = lambda batch: self._received(asked, batch)

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

    def _received(self, asked: int, batch: list[sqs.SqsMessage]) -> None:
        r = self.run_
        self.receiving -= 1
        if r.params.max_messages is not None:
            self.reserved -= asked
        r.receives += 1
        fresh = r.take_all(batch)
        if fresh:
            self.quiet = False
            r.stale_receives = 0
        else:
            self.quiet = True
            self.last_batch = bool(batch)

    def _sent(self, key: int, items: dict[str, Pending], done: Done | None) -> None:
        self.sending.pop(key, None)
        self._sync_sending()
        if done is not None:
            self.run_.outbox.record_sent(items, done)

    def _deleted(self, result: tuple[dict[str, str], Done]) -> None:
        chunk, done = result
        self.run_.outbox.record_deleted(chunk, done)
        self.moved = True
        if not self.run_.outbox:
            self.run_.outbox.since = None

    def _sync_sending(self) -> None:
        self.run_.outbox.sending = [item for batch in self.sending.values() for item in batch]

    # --- the end of the pass ---------------------------------------------------------

    def _next_round(self) -> bool:
        """Nothing in flight and nothing to send: go on, or end the pass (False)."""
        r = self.run_
        if r._remaining() <= 0 or r._all_named_found():
            return False
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
