"""Send a batch, delete a batch: the redrive's two batch calls, with per-entry retries.

There is one retry layer for whole calls, botocore's (the bulk SQS client retries
throttling, 5xx and timeouts with backoff; the engine keeps its lease and its messages'
visibility while botocore waits, see ``sqs.while_retrying``). A call that still fails
fails all its entries. What botocore cannot retry is a call that succeeded while some
of its entries failed: those entries are retried here when SQS says the fault was not
the sender's, with backoff, for at most ``budget`` seconds (the lease), calling
``keepalive`` before each pause.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from operations.aws import sqs
from operations.aws.errors import AwsError

logger = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 0.2
BACKOFF_MAX_SECONDS = 5.0


@dataclass
class Done:
    """What a batch call did, entry by entry, once its retries are over."""

    # Entry ID -> the MessageId SQS gave the copy (SendMessageBatch), else "".
    succeeded: dict[str, str] = field(default_factory=dict)
    # Entry ID -> why it did not succeed ("refused by SQS: InvalidParameterValue").
    failed: dict[str, str] = field(default_factory=dict)


def refusal(exc: AwsError, doing: str) -> str:
    """A grouped reason for a call that failed: refused (the sender's fault: denied, no such
    queue, invalid) or failed (throttled or unavailable past botocore's retries)."""
    kind = "failed" if exc.transient else "refused by SQS"
    return f"{doing} {kind}: {exc.code or 'error'}"


def undeleted(code: str) -> str:
    return f"sent, but still in the DLQ: the delete failed ({code or 'error'})"


class Mover:
    def __init__(
        self,
        *,
        budget: float,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        keepalive: Callable[[], None],
    ) -> None:
        self.budget = budget
        self.sleep = sleep
        self.clock = clock
        self.keepalive = keepalive

    def send(self, url: str, entries: dict[str, dict[str, object]]) -> Done:
        """Send prepared entries (entry ID -> entry) to ``url``."""

        def why(code: str, sender_fault: bool) -> str:
            return f"refused by SQS: {code}" if sender_fault else f"send failed: {code}"

        return self._until_done(
            lambda pending: sqs.send_message_batch(url, list(pending.values())),
            entries,
            why,
            lambda exc: refusal(exc, "send"),
        )

    def delete(self, url: str, receipt_handles: dict[str, str]) -> Done:
        """Delete messages (entry ID -> receipt handle) from the DLQ ``url``."""
        return self._until_done(
            lambda pending: sqs.delete_message_batch(url, pending),
            receipt_handles,
            lambda code, sender_fault: undeleted(code),
            lambda exc: undeleted(exc.code),
        )

    def _until_done(
        self,
        call: Callable[[dict[str, Any]], sqs.BatchResult],
        entries: dict[str, Any],
        why: Callable[[str, bool], str],
        why_call: Callable[[AwsError], str],
    ) -> Done:
        """Call with the entries not done yet until each succeeded or failed for good: by
        the sender's fault, because the call itself failed, or when the budget ran out."""
        pending = dict(entries)
        done = Done()
        last: dict[str, str] = {}
        budget = self._budget()
        attempt = 0
        while pending:
            try:
                batch = call(pending)
            except AwsError as exc:
                logger.warning("%s", exc)
                done.failed.update(dict.fromkeys(pending, why_call(exc)))
                return done
            for key in batch.succeeded:
                if pending.pop(key, None) is not None:
                    done.succeeded[key] = batch.message_ids.get(key, "")
            for failure in batch.failed:
                if failure.entry_id not in pending:
                    continue
                last[failure.entry_id] = why(failure.code, failure.sender_fault)
                if failure.sender_fault:
                    done.failed[failure.entry_id] = last[failure.entry_id]
                    del pending[failure.entry_id]
            if pending and not self._pause(attempt, budget):
                done.failed.update({key: last.get(key, why("", False)) for key in pending})
                return done
            attempt += 1
        return done

    def _budget(self) -> _Budget:
        return _Budget(deadline=self.clock() + self.budget, pauses=self.budget)

    def _pause(self, attempt: int, budget: _Budget) -> bool:
        """Back off before retrying failed entries; False once the budget is spent."""
        pause = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)
        if self.clock() + pause > budget.deadline or pause > budget.pauses:
            return False
        budget.pauses -= pause
        self.keepalive()
        self.sleep(pause)
        return True


@dataclass
class _Budget:
    # Both bound the retries of one batch: the time on the clock, and the pauses taken
    # (so an injected sleep that does not advance the clock still ends them).
    deadline: float
    pauses: float
