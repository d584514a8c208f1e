"""One run of a client-side redrive: a pass over the DLQ by the worker holding the lease.

ARCHITECTURE.md decision 5. Receive with all attributes; for each message new to the
pass decide: it arrived after the pass began (``returned``), it does not match the
filters (``not_matching``), it is behind a FIFO message that did not move (``held_back``,
see redrive_groups), or it is sent to its source queue (redrive_entries). What was sent
is recorded (redrive_ledger) before it is deleted from the DLQ; only what was sent is
deleted. A run that resumes the operation after its worker died counts from the
recorded outcomes and deletes what was recorded sent without sending it again.

The pass ends when a receive brings nothing new and the queue holds nothing it has
not seen (it waits, within a bound, for messages hidden by another consumer, and
releases held FIFO groups to read behind them); what it could not examine is reported.
Messages it did not move stay hidden until the end of the pass, then are released.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from operations import dlq, redrive_parts
from operations.aws import sqs
from operations.aws.errors import AwsError
from operations.models import Operation
from operations.redrive_entries import Pending, entry_size, send_entry
from operations.redrive_groups import GroupOrder
from operations.redrive_ledger import TAKEN, Ledger, Outcome
from operations.redrive_mover import Mover, refusal
from operations.redrive_outbox import FIFO_ORDER, Outbox
from operations.redrive_outcome import Shortfall, counters, final_state, outcome
from operations.redrive_params import RedriveParams, lease_seconds
from operations.redrive_rate import LiveRate, Pacer, current_parameters

logger = logging.getLogger(__name__)

# FIFO: messages (and bytes) gathered from several receives before they are sent, so that
# batches of one message per group fill up when the DLQ has many groups.
POOL_MESSAGES = 100
POOL_BYTES = 4 * sqs.MAX_BATCH_BYTES

# How long after the pass's start its copies are remembered by ID (5 minutes of clock
# skew, the most SigV4 accepts, and a margin).
COPIES_WINDOW_SECONDS = 360
# Seconds between the progress lines of ``manage.py redrive --wait``.
PROGRESS_EVERY = 2.0

RETURNED = "arrived after the pass began"
NOT_MATCHING = "did not match the filters"


class Redrive:
    """One run of a redrive operation by the worker that holds its lease."""

    def __init__(
        self,
        op: Operation,
        token: uuid.UUID,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_progress: Callable[[Operation], None] | None = None,
    ) -> None:
        self.op = op
        self.on_progress = on_progress
        self.token = token
        self.params = RedriveParams.from_parameters(op.parameters)
        self.sleep = sleep
        self.clock = clock
        self.url = op.target
        self.lease = lease_seconds()
        self.visibility = self.params.visibility_timeout or self.lease
        # FIFO queue names end in ".fifo", and a DLQ has the type of its sources.
        self.fifo = self.url.endswith(".fifo")
        # Pipelines at once (redrive_pipelines; a FIFO DLQ's keep its group order).
        self.concurrency = self.params.pipelines
        self.pacer = Pacer(self.params.rate, clock)
        self.live = LiveRate(clock)
        self._rate_read_at = clock()
        self._paced = 0
        self._shown_at = clock()
        self.ledger = Ledger(op.pk)
        self.mover = Mover(budget=self.lease, sleep=sleep, clock=clock, keepalive=self.keepalive)
        self.groups = GroupOrder()
        # The messages it holds in the DLQ: id -> latest receipt handle (the ledger knows
        # which ones this run met: all of them, kept packed for the whole pass).
        self.handles: dict[str, str] = {}
        # Held messages made visible again (releasing FIFO groups), not received since.
        self.released: set[str] = set()
        self.outbox = Outbox(
            operation_id=op.pk,
            url=self.url,
            fifo=self.fifo,
            ledger=self.ledger,
            groups=self.groups,
            mover=self.mover,
            handles=self.handles,
            clock=clock,
        )
        self.destinations: dict[str, str | None] = {}
        self.destination_errors: dict[str, str] = {}
        # Messages sent after this are copies an earlier run of the operation sent, or new
        # failures: not this pass's either way. SentTimestamp has millisecond resolution, so
        # the start is compared at that resolution, and a message sent in the very millisecond
        # the pass began counts as one from before it (``copies`` catches this run's own).
        # A part of a redrive split across workers (redrive_parts): its siblings' IDs, and
        # the messages they recorded that this part met (ID -> their outcome).
        self.siblings = redrive_parts.sibling_ids(op) if op.parent_id else []
        self.foreign: dict[str, str] = {}
        started = (
            redrive_parts.pass_started(op) if op.parent_id else op.started_at
        ) or datetime.now(UTC)
        self.pass_started = started.replace(microsecond=started.microsecond // 1000 * 1000)
        # This worker's clock signs its requests, and AWS refuses a signature more than 5
        # minutes off (RequestTimeTooSkewed): a copy sent later than this has a SentTimestamp
        # after the pass's start, and needs no entry in ``copies``.
        self.outbox.copies_until = self.pass_started.timestamp() + COPIES_WINDOW_SECONDS
        self.receives = 0
        self.started = clock()
        self.stale_receives = 0
        # Seconds the end of the pass may wait for messages hidden by someone else.
        self.hidden_budget = float(dlq.peek_visibility_seconds() + 10)
        self.shortfall = Shortfall()
        # The pass ended having seen every message in the DLQ.
        self.saw_everything = False
        self.lost_lease = False
        self._keeping_alive = False
        self._last = False

    # --- the pass ------------------------------------------------------------------

    def run(self) -> str:
        """Run to the end of the pass (or cancel); returns the final state."""
        cancelled = False
        try:
            if self.op.total is None:
                self._report(total=self._initial_total())
            with sqs.while_retrying(self.keepalive):
                if self.concurrency > 1:
                    from operations.redrive_pipelines import Pipelines

                    cancelled = Pipelines(self).run()
                else:
                    cancelled = self._loop()
        except AwsError as exc:
            logger.warning("operation %s stopped: %s", self.op.pk, exc)
            self.shortfall.error = str(exc)
        finally:
            if self.saw_everything and not self.lost_lease:
                self.ledger.settle()
            # Written before what it held is released: a sibling part that receives one
            # of them must find this part's row (redrive_parts).
            self.ledger.flush()
            self._release_all()
            self.outbox.record_correlations(flush=True)
        if self.lost_lease:
            logger.warning("operation %s: lease lost, another worker resumes it", self.op.pk)
            return str(self.op.state)
        self.shortfall.not_found = self._not_found()
        state = final_state(self.ledger, self.shortfall, cancelled=cancelled)
        destinations = sorted(arn for arn, url in self.destinations.items() if url)
        result = outcome(self.ledger, self.groups, self.shortfall, destinations)
        if self.op.parent_id:
            # This part said what the DLQ still held (redrive_parts.merged_outcome).
            result["end_checked"] = self._last
        self.op.finish(
            self.token, state, error=self.shortfall.error, outcome=result, **self._fields()
        )
        return state

    def _loop(self) -> bool:
        """One receive -> send -> delete loop to the end of the pass; True if cancelled."""
        while not self.lost_lease:
            if self.op.cancel_requested:
                return True
            if not self._step():
                break
        return False

    def _step(self) -> bool:
        """One receive, and the sends and deletes it makes due. False when the pass is over."""
        if self._limit_reached():
            self._flush()
            return False
        remaining = self._remaining()
        # What waits keeps its FIFO groups from being served: once it is sent and deleted,
        # an empty receive no longer means that the queue is done.
        had_in_hand = bool(self.outbox)
        batch = sqs.receive_messages(
            self.url,
            max_messages=min(sqs.MAX_BATCH_ENTRIES, remaining),
            visibility_timeout=self.visibility,
            # While messages wait to be sent, look for more without waiting.
            wait_seconds=0 if self.outbox.lanes else self.params.wait_seconds,
        )
        self.receives += 1
        fresh = self.take_all(batch)
        if not self.fifo or not fresh or self._pool_full():
            self._flush()
        if self._all_named_found():
            self._flush()
            return False
        if fresh or had_in_hand:
            self.stale_receives = 0
            return self._report(**self._fields())
        if batch and self._read_on_after_stale():
            return self._report()
        return self._at_the_end()

    def take_all(self, batch: list[sqs.SqsMessage]) -> int:
        """``_take`` each received message; how many the pass had not met. A part looks up
        first what its siblings recorded for those it has no row for (one query)."""
        if self.siblings:
            new = [m.message_id for m in batch if m.message_id not in self.ledger]
            self.foreign.update(redrive_parts.sibling_outcomes(self.siblings, new))
        return sum(self._take(message) for message in batch)

    def _take(self, raw: sqs.SqsMessage) -> bool:
        """Decide what to do with a received message; True if the pass had not met it."""
        message_id = raw.message_id
        self.handles[message_id] = raw.receipt_handle
        self.released.discard(message_id)
        if not self.ledger.meet(message_id):
            # Its hiding lapsed. If it was sent and its delete failed, try the delete again.
            if self.ledger.outcome(message_id) == Outcome.SENT or message_id in self.outbox.foreign:
                self.outbox.add_sent(message_id, None)
            return False
        prior = self.ledger.outcome(message_id)
        if prior is None and message_id in self.foreign:
            # A sibling part's message (redrive_parts): one it sent is deleted, not sent
            # again and not counted here; any other it counted, and it stays hidden.
            if self.foreign[message_id] in redrive_parts.SENT_ALREADY:
                self.outbox.add_foreign(message_id)
            return True
        message = dlq.describe(raw)
        if prior in (Outcome.SENT, Outcome.MOVED):
            # An earlier run sent it and died before deleting it: delete, do not send again.
            self.outbox.add_sent(message_id, message)
            return True
        group = raw.attributes.get("MessageGroupId", "") if self.fifo else ""
        if self.fifo:
            self.groups.met(group)
        if self._returned(message):
            self._leave(message_id, group, Outcome.RETURNED, RETURNED)
        elif not self.params.filters.matches(message):
            self._leave(message_id, group, Outcome.NOT_MATCHING, NOT_MATCHING)
        elif self.fifo and group in self.groups:
            self._leave(message_id, group, Outcome.HELD_BACK, FIFO_ORDER)
        else:
            arn = message.source_arn or self.params.destination_arn
            url = self._destination(arn)
            if url is None:
                self._leave(message_id, group, Outcome.FAILED, self._no_destination(arn))
                return True
            entry = send_entry(raw, "", fifo=self.fifo)
            counted = prior in TAKEN
            item = Pending(message, url, entry, entry_size(entry), group or message_id, counted)
            self.outbox.add(item)
        return True

    def _returned(self, message: dlq.DlqMessage) -> bool:
        """Sent after the pass began: a copy this operation moved that failed again (its
        consumer sent it back), or a new failure. Not this pass's to move."""
        sent_at = message.sent_at
        return message.message_id in self.outbox.copies or bool(
            sent_at and sent_at > self.pass_started
        )

    def _leave(self, message_id: str, group: str, outcome: str, reason: str) -> None:
        """The message stays in the DLQ (hidden until the pass ends); in a FIFO queue its
        group stops moving."""
        shown = reason if outcome in (Outcome.FAILED, Outcome.HELD_BACK) else ""
        self.ledger.note(message_id, outcome, shown)
        if self.fifo:
            self.groups.stop(group, reason)
            self.groups.hold(group, message_id, held_back=outcome == Outcome.HELD_BACK)

    def _pool_full(self) -> bool:
        lanes = self.outbox.lanes
        return (
            lanes.lane_count >= sqs.MAX_BATCH_ENTRIES
            or len(lanes) >= POOL_MESSAGES
            or lanes.bytes >= POOL_BYTES
            or (self.params.max_messages is not None and self._remaining() <= 0)
        )

    def _remaining(self) -> int:
        """How many more messages the pass may take on (``max_messages``)."""
        if self.params.max_messages is None:
            return sqs.MAX_BATCH_ENTRIES
        sending = sum(not item.counted for item in self.outbox.sending)
        taken = self.ledger.counts().taken + self.outbox.lanes.fresh + sending
        return int(self.params.max_messages) - taken

    def _limit_reached(self) -> bool:
        """``max_messages`` is taken on. A part of a split redrive reads its limit again
        first: its siblings that ended may have left it their unused share."""
        if self._remaining() > 0:
            return False
        if self.op.parent_id and self.params.max_messages is not None:
            self._read_parameters(now=True)
        return self._remaining() <= 0

    def _all_named_found(self) -> bool:
        """A redrive of named messages ends once it has met them all."""
        wanted = self.params.filters.message_ids
        return bool(wanted) and not self._not_found()

    def _not_found(self) -> int:
        wanted = self.params.filters.message_ids
        return sum(1 for i in wanted if not self.ledger.met(i) and i not in self.ledger)

    def _read_on_after_stale(self) -> bool:
        """A receive brought only messages this pass has met: ones it holds whose hiding
        lapsed (a long or rate-limited pass outlives it). The receive hid them again;
        read on, until as many such receives as there are held messages (plus one)."""
        self.stale_receives += 1
        return self.stale_receives * sqs.MAX_BATCH_ENTRIES <= len(self.handles) + 10

    def _at_the_end(self) -> bool:
        """Nothing new, nothing in hand: end the pass unless the queue holds messages it has
        not met that it can still reach. False when the pass is over."""
        self.stale_receives = 0
        if self.op.parent_id and not self._last_in_pass():
            return False  # the last part still in its pass says what is left
        try:
            attrs = sqs.queue_attributes(self.url)
        except AwsError as exc:
            logger.warning("operation %s: no queue depth: %s", self.op.pk, exc)
            return False
        ours = len(self.handles)
        unseen = attrs.visible + attrs.in_flight + attrs.delayed - ours
        if unseen <= 0:
            self.saw_everything = True
            return False
        hidden_by_others = attrs.in_flight - (ours - len(self.released))
        if self.fifo and self._release_held_groups():
            return self._report()
        if self.hidden_budget > 0 and (hidden_by_others > 0 or attrs.delayed or not self.fifo):
            pause = min(self.hidden_budget, 2.0)
            self.hidden_budget -= pause
            self.keepalive()
            self.sleep(pause)
            return self._report()
        self.shortfall.unexamined = unseen
        if self.fifo and self.groups.stopped:
            why = "behind a held-back FIFO group"
        elif hidden_by_others > 0:
            why = "hidden by another consumer"
        else:
            why = "not received in time"
        self.shortfall.unexamined_why = f"not examined: {why}"
        return False

    def _last_in_pass(self) -> bool:
        # Once the last, it stays the last: the others have ended their passes.
        self._last = self._last or redrive_parts.last_in_pass(self.op)
        return self._last

    def _release_held_groups(self) -> bool:
        ids = self.groups.to_release()
        if not ids:
            return False
        held = [i for i in ids if i in self.handles and i not in self.released]
        dlq.release(self.url, (_handle_only(i, self.handles[i]) for i in held))
        self.released.update(held)
        return True

    def _initial_total(self) -> int:
        try:
            depth = sqs.queue_attributes(self.url).visible
        except AwsError as exc:
            logger.warning("operation %s: no queue depth: %s", self.op.pk, exc)
            depth = 0
        if self.op.parent_id:
            return redrive_parts.share_total(self.op, depth)
        if self.params.max_messages is not None:
            depth = min(depth, int(self.params.max_messages))
        return depth

    def _flush(self) -> None:
        self.outbox.flush(pace=self._throttle, stop=lambda: self.lost_lease)

    def _destination(self, arn: str) -> str | None:
        if not arn:
            return None
        if arn not in self.destinations:
            try:
                self.destinations[arn] = sqs.queue_url_for_arn(arn)
            except AwsError as exc:
                logger.warning("operation %s: destination %s: %s", self.op.pk, arn, exc)
                self.destinations[arn] = None
                self.destination_errors[arn] = refusal(exc, "destination")
        return self.destinations[arn]

    def _no_destination(self, arn: str) -> str:
        return self.destination_errors.get(arn, "no destination queue")

    def _release_all(self) -> None:
        """Make visible again what the pass holds and did not move (not what it sent)."""
        keep = Outcome.SENT
        held = [
            _handle_only(message_id, handle)
            for message_id, handle in self.handles.items()
            if message_id not in self.released and self.ledger.outcome(message_id) != keep
        ]
        dlq.release(self.url, held)

    # --- pacing, lease, reporting ----------------------------------------------------

    def keepalive(self) -> None:
        """While the run waits (retry backoff, botocore's too, the rate limit, hidden
        messages): extend the lease, and the visibility of the messages in hand before it
        lapses, so that no other worker or consumer takes over what this run is doing."""
        if self._keeping_alive:  # the calls below may be retried by botocore too
            return
        self._keeping_alive = True
        try:
            self._report()
            since = self.outbox.since
            if since is None or self.clock() - since < self.visibility / 2:
                return
            handles = [self.handles[i] for i in self.outbox.in_hand() if i in self.handles]
            for start in range(0, len(handles), sqs.MAX_BATCH_ENTRIES):
                chunk = {f"v{n}": h for n, h in enumerate(handles[start : start + 10])}
                try:
                    sqs.change_visibility_batch(self.url, chunk, self.visibility)
                except AwsError as exc:
                    logger.warning("operation %s: messages not kept hidden: %s", self.op.pk, exc)
            self.outbox.since = self.clock()
        finally:
            self._keeping_alive = False

    def _throttle(self) -> None:
        """Sleep so the run stays under ``rate`` messages per second, keeping the lease and
        the messages in hand meanwhile."""
        due = self.pacer.book(self.outbox.sent - self._paced, before=False)
        self._paced = self.outbox.sent
        while due > 0 and not self.lost_lease and not self.op.cancel_requested:
            pause = min(due, 1.0)  # a cancel or a new rate is seen within a second
            self.sleep(pause)
            due -= pause
            if due > 0:
                self.keepalive()

    def _fields(self) -> dict[str, Any]:
        return counters(
            self.ledger,
            {
                "receives": self.receives,
                "batches": self.outbox.batches,
                "held": len(self.handles),
                "release_rounds": self.groups.rounds,
                "concurrency": self.concurrency,
                "rate_limit": self.pacer.rate,
                "live_rate": self.live.update(self.outbox.sent),
            },
        )

    def _report(self, **fields: Any) -> bool:
        if not self.op.report(self.token, lease_seconds=self.lease, **fields):
            self.lost_lease = True
        self._read_parameters()
        if self.on_progress and self.clock() - self._shown_at >= PROGRESS_EVERY and fields:
            self._shown_at = self.clock()
            self.on_progress(self.op)
        return not self.lost_lease

    def _read_parameters(self, *, now: bool = False) -> None:
        """Apply a rate an operator set while the run goes on, and for a part of a split
        redrive the share of ``max_messages`` its ended siblings left it (read at most once
        a second)."""
        if not now and self.clock() - self._rate_read_at < 1.0:
            return
        self._rate_read_at = self.clock()
        parameters = current_parameters(self.op.pk)
        self.pacer.set_rate(parameters.get("rate") or None)
        limit = parameters.get("max_messages")
        if self.op.parent_id and self.params.max_messages is not None and limit is not None:
            self.params = dataclasses.replace(self.params, max_messages=int(limit))


def _handle_only(message_id: str, receipt_handle: str) -> sqs.SqsMessage:
    return sqs.SqsMessage(message_id, receipt_handle, "", {}, {})
