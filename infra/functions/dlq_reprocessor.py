"""DLQ reprocessor: one invocation moves a DLQ's messages back to their source queue.

Event: ``{"dlq_url": "<queue URL>", "max_messages": <optional int>,
"wait_seconds": <optional int, default 1>}``.

It never loses a message (ARCHITECTURE.md decision 5): it receives a batch with
all attributes, sends it to the destination with ``SendMessageBatch`` (body,
message attributes, the X-Ray trace header and, for FIFO queues, the group and
deduplication IDs are kept), and deletes from the DLQ only the entries whose send
succeeded. The destination is the message's ``DeadLetterQueueSourceArn``, or else
the DLQ's single source queue (``ListDeadLetterSourceQueues``); a message with no
known destination stays in the DLQ and is counted as skipped. It makes one pass:
messages it could not move become visible again when it returns.

Returns ``{"received", "moved", "failed", "skipped", "delete_failed"}`` counts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError

from infra.functions.config import new_client

logger = logging.getLogger(__name__)

BATCH_MAX_ENTRIES = 10
# SendMessageBatch caps the whole request at 256 KiB; keep a margin for the envelope.
BATCH_MAX_BYTES = 240 * 1024
# Long enough to send and delete a batch before another reader could see it again.
IN_FLIGHT_VISIBILITY_S = 60
# The fields of a received message attribute that SendMessage accepts back.
_ATTRIBUTE_FIELDS = ("DataType", "StringValue", "BinaryValue")


@dataclass
class ReprocessResult:
    received: int = 0
    moved: int = 0
    failed: int = 0
    skipped: int = 0
    delete_failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _queue_name(arn: str) -> tuple[str, str]:
    """``(account, name)`` of an SQS queue ARN ``arn:aws:sqs:<region>:<account>:<name>``."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise ValueError(f"not an SQS queue ARN: {arn!r}")
    return parts[4], parts[5]


def _message_size(message: dict[str, Any]) -> int:
    size = len(message.get("Body", "").encode())
    for name, value in message.get("MessageAttributes", {}).items():
        size += len(name.encode()) + len(value.get("DataType", "").encode())
        size += len(value.get("StringValue", "").encode()) + len(value.get("BinaryValue", b""))
    return size


class DlqReprocessor:
    """Moves messages of one DLQ back to their sources, using one SQS client."""

    def __init__(self, sqs: Any, dlq_url: str) -> None:
        self.sqs = sqs
        self.dlq_url = dlq_url
        self.fifo = dlq_url.endswith(".fifo")
        self._urls_by_arn: dict[str, str | None] = {}
        self._sources: list[str] | None = None

    def sources(self) -> list[str]:
        """URLs of the queues whose RedrivePolicy points at this DLQ."""
        if self._sources is None:
            urls: list[str] = []
            # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ListDeadLetterSourceQueues.html
            paginator = self.sqs.get_paginator("list_dead_letter_source_queues")
            for page in paginator.paginate(QueueUrl=self.dlq_url, MaxResults=1000):
                urls.extend(page.get("queueUrls", []))
            self._sources = urls
        return self._sources

    def _url_of(self, arn: str) -> str | None:
        if arn not in self._urls_by_arn:
            try:
                account, name = _queue_name(arn)
                # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueUrl.html
                url = self.sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)[
                    "QueueUrl"
                ]
            except (ClientError, ValueError) as exc:
                logger.warning("source queue %s not found: %s", arn, exc)
                url = None
            self._urls_by_arn[arn] = url
        return self._urls_by_arn[arn]

    def destination(self, message: dict[str, Any]) -> str | None:
        source_arn = message.get("Attributes", {}).get("DeadLetterQueueSourceArn")
        if source_arn:
            return self._url_of(source_arn)
        sources = self.sources()
        return sources[0] if len(sources) == 1 else None

    def run(self, max_messages: int | None = None, wait_seconds: int = 1) -> ReprocessResult:
        result = ReprocessResult()
        unmoved: list[dict[str, Any]] = []
        while max_messages is None or result.received < max_messages:
            wanted = BATCH_MAX_ENTRIES
            if max_messages is not None:
                wanted = min(wanted, max_messages - result.received)
            # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html
            messages = self.sqs.receive_message(
                QueueUrl=self.dlq_url,
                MaxNumberOfMessages=wanted,
                VisibilityTimeout=IN_FLIGHT_VISIBILITY_S,
                WaitTimeSeconds=wait_seconds,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                break
            result.received += len(messages)
            by_destination: dict[str, list[dict[str, Any]]] = {}
            for message in messages:
                url = self.destination(message)
                if url is None:
                    result.skipped += 1
                    unmoved.append(message)
                else:
                    by_destination.setdefault(url, []).append(message)
            for url, group in by_destination.items():
                for chunk in self._chunks(group):
                    unmoved.extend(self._move(url, chunk, result))
        self._release(unmoved)
        logger.info("reprocessed %s: %s", self.dlq_url, result.as_dict())
        return result

    @staticmethod
    def _chunks(messages: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        """Batches of at most 10 messages and BATCH_MAX_BYTES."""
        chunk: list[dict[str, Any]] = []
        size = 0
        for message in messages:
            message_size = _message_size(message)
            if chunk and (len(chunk) == BATCH_MAX_ENTRIES or size + message_size > BATCH_MAX_BYTES):
                yield chunk
                chunk, size = [], 0
            chunk.append(message)
            size += message_size
        if chunk:
            yield chunk

    def _entry(self, index: int, message: dict[str, Any]) -> dict[str, Any]:
        entry: dict[str, Any] = {"Id": f"m{index}", "MessageBody": message["Body"]}
        attributes = {
            name: {k: v for k, v in value.items() if k in _ATTRIBUTE_FIELDS}
            for name, value in message.get("MessageAttributes", {}).items()
        }
        if attributes:
            entry["MessageAttributes"] = attributes
        system = message.get("Attributes", {})
        if system.get("AWSTraceHeader"):
            entry["MessageSystemAttributes"] = {
                "AWSTraceHeader": {"DataType": "String", "StringValue": system["AWSTraceHeader"]}
            }
        if self.fifo:
            if system.get("MessageGroupId"):
                entry["MessageGroupId"] = system["MessageGroupId"]
            if system.get("MessageDeduplicationId"):
                entry["MessageDeduplicationId"] = system["MessageDeduplicationId"]
        return entry

    def _move(
        self, url: str, chunk: list[dict[str, Any]], result: ReprocessResult
    ) -> list[dict[str, Any]]:
        """Send ``chunk`` to ``url``, delete what was sent; returns the messages not moved."""
        entries = [self._entry(index, message) for index, message in enumerate(chunk)]
        try:
            # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html
            response = self.sqs.send_message_batch(QueueUrl=url, Entries=entries)
        except ClientError:
            logger.exception("SendMessageBatch to %s failed; %d messages stay", url, len(chunk))
            result.failed += len(chunk)
            return chunk
        sent = {entry["Id"] for entry in response.get("Successful", [])}
        for failure in response.get("Failed", []):
            logger.warning(
                "send to %s failed: %s %s", url, failure.get("Code"), failure.get("Message")
            )
        moved = [m for index, m in enumerate(chunk) if f"m{index}" in sent]
        not_moved = [m for index, m in enumerate(chunk) if f"m{index}" not in sent]
        result.failed += len(not_moved)
        if moved:
            self._delete(moved, result)
        return not_moved

    def _delete(self, messages: list[dict[str, Any]], result: ReprocessResult) -> None:
        entries = [
            {"Id": f"d{index}", "ReceiptHandle": m["ReceiptHandle"]}
            for index, m in enumerate(messages)
        ]
        try:
            # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteMessageBatch.html
            response = self.sqs.delete_message_batch(QueueUrl=self.dlq_url, Entries=entries)
        except ClientError:
            # Sent but not deleted: the message is now in both queues; consumers are idempotent.
            logger.exception("DeleteMessageBatch failed after a successful send")
            result.delete_failed += len(entries)
            result.moved += len(entries)
            return
        failed = len(response.get("Failed", []))
        result.delete_failed += failed
        result.moved += len(entries)

    def _release(self, messages: list[dict[str, Any]]) -> None:
        """Make the messages that were not moved visible again right away."""
        for start in range(0, len(messages), BATCH_MAX_ENTRIES):
            chunk = messages[start : start + BATCH_MAX_ENTRIES]
            entries = [
                {"Id": f"r{index}", "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for index, m in enumerate(chunk)
            ]
            try:
                # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibilityBatch.html
                self.sqs.change_message_visibility_batch(QueueUrl=self.dlq_url, Entries=entries)
            except ClientError:
                logger.warning("could not release %d messages; they reappear later", len(chunk))


def reprocess(
    dlq_url: str,
    *,
    max_messages: int | None = None,
    wait_seconds: int = 1,
    sqs: Any | None = None,
) -> dict[str, int]:
    """Move up to ``max_messages`` (default: all) messages of ``dlq_url`` back to their source."""
    if max_messages is not None and max_messages < 1:
        raise ValueError("max_messages must be at least 1")
    reprocessor = DlqReprocessor(sqs or new_client("sqs"), dlq_url)
    return reprocessor.run(max_messages=max_messages, wait_seconds=wait_seconds).as_dict()


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Lambda handler: ``{"dlq_url": ..., "max_messages": optional, "wait_seconds": optional}``."""
    dlq_url = event.get("dlq_url")
    if not isinstance(dlq_url, str) or not dlq_url:
        raise ValueError('the event needs "dlq_url": the URL of the DLQ to reprocess')
    max_messages = event.get("max_messages")
    return reprocess(
        dlq_url,
        max_messages=int(max_messages) if max_messages is not None else None,
        wait_seconds=int(event.get("wait_seconds", 1)),
    )
