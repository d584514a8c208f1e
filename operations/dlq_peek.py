"""One shared peek per DLQ per cache period.

SQS has no read-only peek: receiving hides a message and raises its receive count. So every
viewer of a DLQ page, every correlation lookup and the alarm drill-down share one peek per
DLQ per ``EVENTOPS_CACHE_TTL`` (a cached read, stale on error), and that peek releases what it
received at once (ChangeMessageVisibilityBatch 0): nothing it read stays hidden from a second
viewer, a consumer or a redrive. What it read is kept, not read again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from operations import dlq
from operations.aws import sqs
from operations.aws.errors import AwsError
from operations.cache import Cached, cached, forget

# Messages one shared peek reads (at most ``EVENTOPS_PEEK_MAX_RECEIVES`` receives of 10).
SHARED_PEEK_LIMIT = 100


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


def shared_peek(dlq_url: str) -> Cached[SharedPeek]:
    """The DLQ's messages from the peek every viewer shares (see the module doc). Viewers who
    arrive while it runs wait for it and share its result (``operations.cache``'s one
    refresh per key)."""
    return cached(_name(dlq_url), lambda: _peek_and_release(dlq_url, SHARED_PEEK_LIMIT))


def shared_messages(dlq_url: str) -> list[dlq.DlqMessage]:
    """The shared peek's messages; ``AwsError`` if the DLQ was never read successfully."""
    found = shared_peek(dlq_url)
    if found.value is None:
        raise AwsError(found.error, code=found.error_code, operation="ReceiveMessage")
    return found.value.messages()


def forget_peek(dlq_url: str) -> None:
    """The next view peeks again (after a delete or an edit changed the DLQ)."""
    forget(_name(dlq_url))
