"""What a redrive sends: one SendMessageBatch entry per DLQ message, and the batches.

A FIFO message is sent with a deduplication ID derived from its own message ID in the
DLQ, not with the one it was first sent with: SQS drops (while acknowledging) a second
message with an ID it accepted in the last 5 minutes, so copying the original ID would
silently lose a message that failed quickly, and two different messages that share an
ID (a reused business key, content-based deduplication) would arrive as one. The
derived ID is the same for every retry of one message, so a retry, or a resumed pass
that sends a message again after a crash between send and delete, is dropped by SQS
as the duplicate it is.

Batches keep FIFO group order: a batch holds at most one message of each group (a
"lane"), so an entry that fails can never be overtaken by a later message of its
group in the same call (SQS keeps a group's order inside one SendMessageBatch, but a
failed entry does not stop the later entries of its group in it); the next message of
a group is sent only once the previous one was accepted. With several pipelines
(redrive_pipelines) a lane whose batch is in flight is ``busy``: no batch takes its next
message until that send's answer was handled. ``Lanes`` gathers messages from several
receives, so a DLQ with many groups still sends full batches (bench/redrive_fifo.py
measures what it costs).
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from operations import dlq
from operations.aws import sqs

DEDUPLICATION_PREFIX = "redrive-"
# MessageDeduplicationId: 1-128 characters, alphanumeric or punctuation (printable ASCII
# without the space).
_DEDUPLICATION_ID = re.compile(r"[\x21-\x7e]{1,128}")


def deduplication_id(message_id: str) -> str:
    """The MessageDeduplicationId a redriven copy of DLQ message ``message_id`` is sent
    with: the ID itself behind a prefix, or its SHA-256 if that would not be valid."""
    candidate = DEDUPLICATION_PREFIX + message_id
    if _DEDUPLICATION_ID.fullmatch(candidate):
        return candidate
    return DEDUPLICATION_PREFIX + hashlib.sha256(message_id.encode("utf-8")).hexdigest()


def send_entry(message: sqs.SqsMessage, entry_id: str, *, fifo: bool) -> dict[str, Any]:
    """The SendMessageBatch entry that re-sends ``message``: body, message attributes,
    X-Ray trace header and group ID as received; on a FIFO queue a derived
    deduplication ID (see the module docstring)."""
    entry: dict[str, Any] = {"Id": entry_id, "MessageBody": message.body}
    attributes = message.sendable_attributes()
    if attributes:
        entry["MessageAttributes"] = attributes
    if message.attributes.get("MessageGroupId"):
        entry["MessageGroupId"] = message.attributes["MessageGroupId"]
    if fifo:
        entry["MessageDeduplicationId"] = deduplication_id(message.message_id)
    if message.attributes.get("AWSTraceHeader"):
        entry["MessageSystemAttributes"] = {
            "AWSTraceHeader": {
                "DataType": "String",
                "StringValue": message.attributes["AWSTraceHeader"],
            }
        }
    return entry


def entry_size(entry: dict[str, Any]) -> int:
    """Bytes an entry counts towards the batch payload limit (body plus attributes)."""
    size = len(str(entry["MessageBody"]).encode("utf-8"))
    for name, value in entry.get("MessageAttributes", {}).items():
        size += len(name.encode()) + len(str(value.get("DataType", "")).encode())
        payload = value.get("StringValue", value.get("BinaryValue", b""))
        size += len(payload.encode("utf-8") if isinstance(payload, str) else payload)
    return size


@dataclass
class Pending:
    """A message waiting to be sent to ``url``."""

    message: dlq.DlqMessage
    url: str
    entry: dict[str, Any]
    size: int
    # Its FIFO message group; on a standard queue the message's own ID (no order to keep).
    lane: str
    # Already counted as taken on by an earlier run of the operation (``max_messages``).
    counted: bool = False

    @property
    def message_id(self) -> str:
        return self.message.message_id


class Lanes:
    """Messages waiting to be sent, in lanes that keep their order (a FIFO group each)."""

    def __init__(self) -> None:
        self._lanes: dict[str, deque[Pending]] = {}
        self.size = 0
        self.bytes = 0
        # How many of them count towards ``max_messages`` (not counted by an earlier run).
        self.fresh = 0

    def __len__(self) -> int:
        return self.size

    @property
    def lane_count(self) -> int:
        return len(self._lanes)

    def add(self, item: Pending) -> None:
        self._lanes.setdefault(item.lane, deque()).append(item)
        self.size += 1
        self.bytes += item.size
        self.fresh += not item.counted

    def items(self) -> list[Pending]:
        return [item for lane in self._lanes.values() for item in lane]

    def names(self) -> list[str]:
        """The lanes that hold messages (FIFO: their groups)."""
        return list(self._lanes)

    def next_batch(
        self,
        max_entries: int = sqs.MAX_BATCH_ENTRIES,
        max_bytes: int = sqs.MAX_BATCH_BYTES,
        *,
        busy: Collection[str] = (),
        whole: bool = False,
    ) -> list[Pending]:
        """Take the next batch: the heads of up to ``max_entries`` lanes bound for one
        queue, within ``max_bytes`` (a head larger than that goes alone), leaving out the
        ``busy`` lanes (a batch of theirs is in flight). With ``whole``, take it only if it
        is full (by count or by size), else take nothing (empty: nothing to send now)."""
        batch: list[Pending] = []
        size = 0
        full = False
        for name, lane in self._lanes.items():
            if name in busy:
                continue
            head = lane[0]
            if batch and head.url != batch[0].url:
                continue
            if batch and size + head.size > max_bytes:
                full = True
                continue
            batch.append(head)
            size += head.size
            if len(batch) >= max_entries:
                full = True
                break
        if whole and not full:
            return []
        for item in batch:
            self._pop(item.lane)
        return batch

    def drop(self, lane: str) -> list[Pending]:
        """Remove and return what is left of ``lane`` (its group stopped moving)."""
        rest = list(self._lanes.pop(lane, ()))
        for item in rest:
            self._forget(item)
        return rest

    def _pop(self, lane: str) -> None:
        queue = self._lanes[lane]
        self._forget(queue.popleft())
        if not queue:
            del self._lanes[lane]

    def _forget(self, item: Pending) -> None:
        self.size -= 1
        self.bytes -= item.size
        self.fresh -= not item.counted
