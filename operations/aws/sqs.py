"""SQS adapter: plain functions around the shared client, returning dataclasses.

Discovery and attributes (queues, their dead-letter queues and sources) come
first; message functions (receive, send, delete) follow below.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from operations.aws.client import client
from operations.aws.context import ContextThreadPoolExecutor
from operations.aws.errors import AwsError, translate

logger = logging.getLogger(__name__)

# GetQueueAttributes has no batch form: one call per queue, run concurrently on
# the shared (thread-safe) client, bounded so a 1,000-queue account does not
# open 1,000 connections.
ATTRIBUTE_WORKERS = 16


@dataclass(frozen=True)
class RedrivePolicy:
    """Where a queue sends messages that failed ``max_receive_count`` receives."""

    dead_letter_arn: str
    max_receive_count: int


@dataclass(frozen=True)
class QueueAttributes:
    """The attributes the dashboard shows for one queue."""

    url: str
    name: str
    arn: str
    visible: int
    in_flight: int
    delayed: int
    retention_seconds: int
    visibility_timeout_seconds: int
    fifo: bool
    redrive: RedrivePolicy | None


def queue_name_from_url(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def queue_name_from_arn(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


def list_queue_urls(prefix: str = "") -> list[str]:
    """Every queue URL (optionally only names starting with ``prefix``), all pages."""
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ListQueues.html
    kwargs: dict[str, object] = {"PaginationConfig": {"PageSize": 1000}}
    if prefix:
        kwargs["QueueNamePrefix"] = prefix
    urls: list[str] = []
    try:
        for page in client("sqs").get_paginator("list_queues").paginate(**kwargs):
            urls.extend(page.get("QueueUrls", []))
    except Exception as exc:
        raise translate(exc, "ListQueues") from exc
    return urls


def _int(attrs: dict[str, str], name: str, default: int = 0) -> int:
    try:
        return int(attrs.get(name, default))
    except (TypeError, ValueError):
        return default


def _redrive(raw: str | None) -> RedrivePolicy | None:
    if not raw:
        return None
    try:
        policy = json.loads(raw)
        return RedrivePolicy(
            dead_letter_arn=str(policy["deadLetterTargetArn"]),
            max_receive_count=int(policy.get("maxReceiveCount", 0)),
        )
    except (ValueError, KeyError, TypeError):
        logger.warning("unreadable RedrivePolicy %r", raw)
        return None


def queue_attributes(url: str) -> QueueAttributes:
    """Depths, retention and redrive policy of one queue."""
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueAttributes.html
    try:
        response = client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    except Exception as exc:
        raise translate(exc, "GetQueueAttributes") from exc
    attrs = response.get("Attributes", {})
    name = queue_name_from_url(url)
    return QueueAttributes(
        url=url,
        name=name,
        arn=attrs.get("QueueArn", ""),
        visible=_int(attrs, "ApproximateNumberOfMessages"),
        in_flight=_int(attrs, "ApproximateNumberOfMessagesNotVisible"),
        delayed=_int(attrs, "ApproximateNumberOfMessagesDelayed"),
        retention_seconds=_int(attrs, "MessageRetentionPeriod", 345600),
        visibility_timeout_seconds=_int(attrs, "VisibilityTimeout", 30),
        fifo=attrs.get("FifoQueue", "false").lower() == "true" or name.endswith(".fifo"),
        redrive=_redrive(attrs.get("RedrivePolicy")),
    )


def queue_attributes_many(urls: Iterable[str]) -> dict[str, QueueAttributes | AwsError]:
    """``queue_attributes`` for many queues, concurrently.

    A queue that fails (deleted meanwhile, denied) maps to its ``AwsError`` so
    one bad queue does not hide the others.
    """
    url_list = list(urls)
    results: dict[str, QueueAttributes | AwsError] = {}
    if not url_list:
        return results

    def fetch(url: str) -> QueueAttributes | AwsError:
        try:
            return queue_attributes(url)
        except AwsError as exc:
            return exc

    with ContextThreadPoolExecutor(max_workers=min(ATTRIBUTE_WORKERS, len(url_list))) as pool:
        for url, result in zip(url_list, pool.map(fetch, url_list), strict=True):
            results[url] = result
    return results


def dead_letter_source_queue_urls(dlq_url: str) -> list[str]:
    """URLs of the queues whose RedrivePolicy points at ``dlq_url``, all pages."""
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ListDeadLetterSourceQueues.html
    urls: list[str] = []
    try:
        paginator = client("sqs").get_paginator("list_dead_letter_source_queues")
        for page in paginator.paginate(QueueUrl=dlq_url, PaginationConfig={"PageSize": 1000}):
            urls.extend(page.get("queueUrls", []))
    except Exception as exc:
        raise translate(exc, "ListDeadLetterSourceQueues") from exc
    return urls


def queue_url(name: str) -> str:
    """The URL of the queue called ``name`` (``AwsError`` with ``not_found`` if none)."""
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueUrl.html
    try:
        return str(client("sqs").get_queue_url(QueueName=name)["QueueUrl"])
    except Exception as exc:
        raise translate(exc, "GetQueueUrl") from exc


# --- messages (receive, send, delete, visibility, native move tasks) -----------------
# The batch calls and receive use the bulk client: a redrive makes thousands of them.

# SendMessageBatch and DeleteMessageBatch take at most 10 entries, and a batch's
# payload (bodies plus message attributes) at most 256 KiB.
MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 256 * 1024


_retrying = threading.local()


def _on_attempt(response: Any = None, caught_exception: Exception | None = None, **_: Any) -> None:
    """botocore's ``needs-retry`` event, after every attempt of a bulk call: tell this
    thread's listener when the attempt failed (botocore then sleeps and tries again)."""
    callback = getattr(_retrying, "callback", None)
    if callback is None:
        return
    failed = caught_exception is not None or (
        response is not None and response[0].status_code >= 400
    )
    if failed:
        callback()


@contextlib.contextmanager
def while_retrying(callback: Callable[[], None]) -> Iterator[None]:
    """Within this block, call ``callback`` in this thread each time an attempt of a bulk
    call (receive, send, delete, change visibility) fails, before botocore backs off and
    retries it: a long-running caller extends its lease and its messages' visibility
    there, since those waits can outlast them. Returns nothing to botocore, so botocore's
    own retry decision stands; errors the callback raises are its own to handle."""
    client("sqs", bulk=True).meta.events.register(
        "needs-retry.sqs", _on_attempt, unique_id="eventops-sqs-retry-listener"
    )
    previous = getattr(_retrying, "callback", None)
    _retrying.callback = callback
    try:
        yield
    finally:
        _retrying.callback = previous


@dataclass(frozen=True)
class SqsMessage:
    """One received message, as SQS returned it (body and attributes untrusted)."""

    message_id: str
    receipt_handle: str
    body: str
    # System attributes: DeadLetterQueueSourceArn, ApproximateReceiveCount, SentTimestamp,
    # ApproximateFirstReceiveTimestamp, AWSTraceHeader, MessageGroupId, ...
    attributes: dict[str, str]
    # Message attributes as SQS returns them: {name: {"DataType", "StringValue" | "BinaryValue"}}.
    message_attributes: dict[str, dict[str, object]]

    def sendable_attributes(self) -> dict[str, dict[str, object]]:
        """The message attributes as SendMessage takes them (ReceiveMessage adds list fields
        that a send refuses)."""
        kept = ("DataType", "StringValue", "BinaryValue")
        return {
            name: {k: v for k, v in value.items() if k in kept}
            for name, value in self.message_attributes.items()
        }


@dataclass(frozen=True)
class BatchFailure:
    entry_id: str
    code: str
    message: str
    sender_fault: bool


@dataclass(frozen=True)
class BatchResult:
    """Which entries of a batch call succeeded and which failed (the call itself did not)."""

    succeeded: list[str]
    failed: list[BatchFailure]
    # SendMessageBatch: the new message ID of each entry sent (entry id -> MessageId).
    message_ids: dict[str, str] = field(default_factory=dict)


def _message(raw: dict[str, object]) -> SqsMessage:
    attrs = raw.get("Attributes") or {}
    message_attrs = raw.get("MessageAttributes") or {}
    return SqsMessage(
        message_id=str(raw.get("MessageId", "")),
        receipt_handle=str(raw.get("ReceiptHandle", "")),
        body=str(raw.get("Body", "")),
        attributes={str(k): str(v) for k, v in dict(attrs).items()},  # type: ignore[call-overload]
        message_attributes=dict(message_attrs),  # type: ignore[call-overload]
    )


def receive_messages(
    url: str, *, max_messages: int = 10, visibility_timeout: int = 30, wait_seconds: int = 0
) -> list[SqsMessage]:
    """Receive up to ``max_messages`` (1-10) with every system and message attribute.

    Receiving hides the messages for ``visibility_timeout`` seconds and raises
    their receive count."""
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html
    try:
        response = client("sqs", bulk=True).receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=max(1, min(MAX_BATCH_ENTRIES, max_messages)),
            VisibilityTimeout=visibility_timeout,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
    except Exception as exc:
        raise translate(exc, "ReceiveMessage") from exc
    return [_message(raw) for raw in response.get("Messages", [])]


def _batch_result(response: dict[str, object]) -> BatchResult:
    successful = response.get("Successful", [])
    succeeded = [str(entry["Id"]) for entry in successful]  # type: ignore[attr-defined]
    message_ids = {
        str(entry["Id"]): str(entry["MessageId"])
        for entry in successful  # type: ignore[attr-defined]
        if "MessageId" in entry
    }
    failed = [
        BatchFailure(
            entry_id=str(entry.get("Id", "")),
            code=str(entry.get("Code", "")),
            message=str(entry.get("Message", "")),
            sender_fault=bool(entry.get("SenderFault", False)),
        )
        for entry in response.get("Failed", [])  # type: ignore[attr-defined]
    ]
    return BatchResult(succeeded=succeeded, failed=failed, message_ids=message_ids)


def send_message_batch(url: str, entries: list[dict[str, object]]) -> BatchResult:
    """Send up to 10 prepared entries; a call can succeed while entries fail: check ``failed``."""
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html
    try:
        response = client("sqs", bulk=True).send_message_batch(QueueUrl=url, Entries=entries)
    except Exception as exc:
        raise translate(exc, "SendMessageBatch") from exc
    return _batch_result(response)


def delete_message_batch(url: str, receipt_handles: dict[str, str]) -> BatchResult:
    """Delete messages by receipt handle; ``receipt_handles`` maps entry id -> handle."""
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteMessageBatch.html
    entries = [{"Id": key, "ReceiptHandle": handle} for key, handle in receipt_handles.items()]
    try:
        response = client("sqs", bulk=True).delete_message_batch(QueueUrl=url, Entries=entries)
    except Exception as exc:
        raise translate(exc, "DeleteMessageBatch") from exc
    return _batch_result(response)


def change_visibility_batch(
    url: str, receipt_handles: dict[str, str], timeout: int = 0
) -> BatchResult:
    """Set the visibility timeout of received messages (0 makes them visible again)."""
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibilityBatch.html
    entries = [
        {"Id": key, "ReceiptHandle": handle, "VisibilityTimeout": timeout}
        for key, handle in receipt_handles.items()
    ]
    try:
        response = client("sqs", bulk=True).change_message_visibility_batch(
            QueueUrl=url, Entries=entries
        )
    except Exception as exc:
        raise translate(exc, "ChangeMessageVisibilityBatch") from exc
    return _batch_result(response)


def send_message(url: str, entry: dict[str, object]) -> str:
    """Send one prepared entry (the SendMessageBatch entry shape without ``Id``); the new id."""
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
    try:
        response = client("sqs").send_message(QueueUrl=url, **entry)
    except Exception as exc:
        raise translate(exc, "SendMessage") from exc
    return str(response.get("MessageId", ""))


def queue_url_for_arn(arn: str) -> str:
    """The URL of the queue with this ARN (``arn:aws:sqs:<region>:<account>:<name>``)."""
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueUrl.html
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise AwsError(f"not an SQS queue ARN: {arn!r}", code="InvalidArn", operation="GetQueueUrl")
    try:
        response = client("sqs").get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])
    except Exception as exc:
        raise translate(exc, "GetQueueUrl") from exc
    return str(response["QueueUrl"])


@dataclass(frozen=True)
class MoveTask:
    """One native message move task (``ListMessageMoveTasks`` result)."""

    task_handle: str
    status: str
    source_arn: str
    destination_arn: str
    moved: int
    to_move: int | None
    failure_reason: str
    # StartedTimestamp: when SQS started it (tells a restarted operation's own task).
    started_at: datetime | None = None


def start_message_move_task(
    source_arn: str, *, destination_arn: str = "", rate: int | None = None
) -> str:
    """Start a native redrive of a whole DLQ; returns the task handle.

    Without ``destination_arn`` each message goes back to its original source queue."""
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html
    kwargs: dict[str, object] = {"SourceArn": source_arn}
    if destination_arn:
        kwargs["DestinationArn"] = destination_arn
    if rate:
        kwargs["MaxNumberOfMessagesPerSecond"] = rate
    try:
        return str(client("sqs").start_message_move_task(**kwargs)["TaskHandle"])
    except Exception as exc:
        raise translate(exc, "StartMessageMoveTask") from exc


def list_message_move_tasks(source_arn: str, max_results: int = 10) -> list[MoveTask]:
    """The most recent move tasks of a DLQ (AWS keeps only the last 10), newest first."""
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ListMessageMoveTasks.html
    try:
        response = client("sqs").list_message_move_tasks(
            SourceArn=source_arn, MaxResults=max_results
        )
    except Exception as exc:
        raise translate(exc, "ListMessageMoveTasks") from exc
    return [
        MoveTask(
            task_handle=str(item.get("TaskHandle", "")),
            status=str(item.get("Status", "")),
            source_arn=str(item.get("SourceArn", "")),
            destination_arn=str(item.get("DestinationArn", "")),
            moved=int(item.get("ApproximateNumberOfMessagesMoved", 0)),
            to_move=(
                int(item["ApproximateNumberOfMessagesToMove"])
                if "ApproximateNumberOfMessagesToMove" in item
                else None
            ),
            failure_reason=str(item.get("FailureReason", "")),
            started_at=_epoch_ms(item.get("StartedTimestamp")),
        )
        for item in response.get("Results", [])
    ]


def _epoch_ms(value: object) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(str(value)) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def cancel_message_move_task(task_handle: str) -> int:
    """Cancel a RUNNING move task; returns how many messages it had moved."""
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CancelMessageMoveTask.html
    try:
        response = client("sqs").cancel_message_move_task(TaskHandle=task_handle)
    except Exception as exc:
        raise translate(exc, "CancelMessageMoveTask") from exc
    return int(response.get("ApproximateNumberOfMessagesMoved", 0))
