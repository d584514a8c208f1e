"""One shared peek per DLQ per cache period.

SQS has no read-only peek: receiving hides a message and raises its receive count. So every
viewer of a DLQ page, every correlation lookup and the alarm drill-down share one peek per
DLQ per ``EVENTOPS_CACHE_TTL`` (a cached read, stale on error), and that peek releases what it
received at once (ChangeMessageVisibilityBatch 0): nothing it read stays hidden from a second
viewer, a consumer or a redrive. What it read is kept, not read again.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.cache import cache

from operations import dlq
from operations.aws import sqs
from operations.aws.errors import AwsError
from operations.cache import Cached, cache_key, cached, forget

# Messages one shared peek reads (at most ``EVENTOPS_PEEK_MAX_RECEIVES`` receives of 10).
SHARED_PEEK_LIMIT = 100
# One peek of a DLQ at a time: how long the lock lasts at most (a crashed peek frees it),
# and how long another viewer waits for the running peek before it peeks itself.
LOCK_SECONDS = 30
LOCK_WAIT_SECONDS = 10.0
LOCK_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class SharedPeek:
    """What one peek of a DLQ received (already released)."""

    raw: tuple[sqs.SqsMessage, ...]
    receives: int
    peeked_at: datetime
    limit: int

    def messages(self) -> list[dlq.DlqMessage]:
        """The messages, described (parsed) afresh: the cached entry keeps only what SQS gave."""
        return [dlq.describe(message) for message in self.raw]


def _name(dlq_url: str) -> str:
    return f"dlq-peek:{hashlib.sha256(dlq_url.encode()).hexdigest()[:32]}"


def _peek_and_release(dlq_url: str, limit: int) -> SharedPeek:
    sample = dlq.peek(dlq_url, limit=limit)
    dlq.release(dlq_url, (m.raw for m in sample.messages))
    # What this peek saw feeds the redrive-loop warnings of the queue and operation pages.
    loops = dlq.redrive_loops(dlq_url, (m.correlation_id for m in sample.messages))
    dlq.remember_peek(dlq_url, len(sample.messages), loops)
    return SharedPeek(
        raw=tuple(m.raw for m in sample.messages),
        receives=sample.receives,
        peeked_at=datetime.now(UTC),
        limit=limit,
    )


def _wait_released(lock: str) -> None:
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while cache.get(lock) is not None and time.monotonic() < deadline:
        time.sleep(LOCK_POLL_SECONDS)


def shared_peek(dlq_url: str) -> Cached[SharedPeek]:
    """The DLQ's messages from the peek every viewer shares (see the module doc).

    Viewers who arrive while another one's peek of the DLQ is running wait for it (at most
    ``LOCK_WAIT_SECONDS``) and share its result, rather than peek again."""
    name = _name(dlq_url)
    lock = cache_key(f"{name}:peeking")
    owner = cache.add(lock, 1, timeout=LOCK_SECONDS)
    if not owner:
        _wait_released(lock)
    try:
        return cached(name, lambda: _peek_and_release(dlq_url, SHARED_PEEK_LIMIT))
    finally:
        if owner:
            cache.delete(lock)


def shared_messages(dlq_url: str) -> list[dlq.DlqMessage]:
    """The shared peek's messages; ``AwsError`` if the DLQ was never read successfully."""
    found = shared_peek(dlq_url)
    if found.value is None:
        raise AwsError(found.error, code=found.error_code, operation="ReceiveMessage")
    return found.value.messages()


def forget_peek(dlq_url: str) -> None:
    """The next view peeks again (after a delete or an edit changed the DLQ)."""
    forget(_name(dlq_url))
