"""Runs the Lambda handlers in-process against the emulator, as Lambda's pollers would.

- :class:`StreamPoller` reads the orders table's DynamoDB stream and calls the outbox publisher
  with Lambda-shaped stream events. With ``ReportBatchItemFailures`` it resumes from the lowest
  failed sequence number; after ``max_retries`` failed attempts it sends the batch description
  to the on-failure queue (if any) and moves on, as Lambda's stream mappings do.
- :class:`QueuePoller` (one per consumer) receives up to 10 messages with all attributes, calls
  the consumer handler with a Lambda SQS event and deletes only the messages that succeeded.
  Failed ones become visible again after the visibility timeout; after ``maxReceiveCount``
  receives moto moves them to the DLQ.
- :class:`Faults` injects transient errors: a share of invocations fails as a whole, deleting
  nothing.

Each invocation is written to X-Ray (:mod:`infra.devstack.tracing`) and reported to an optional
observer (the emulator's Lambda metrics).
"""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from infra.devstack.clients import Clients
from infra.devstack.tracing import Hop, Invocation, SegmentWriter, TraceIds, trace_root_from_header

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]
InvocationObserver = Callable[[Invocation], None]

SQS_MAX_BATCH = 10


class InjectedTransientError(RuntimeError):
    """A fault injected by the devstack (a throttle or timeout on AWS)."""


class LambdaContext:
    """The parts of Lambda's context object that handlers and Powertools use."""

    def __init__(self, function_name: str, function_arn: str, timeout_s: int = 30) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn
        self.memory_limit_in_mb = 256
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "devstack"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class Faults:
    """Decides, deterministically for a seed, which invocations fail as a whole."""

    def __init__(self, transient_share: float = 0.0, seed: int | None = None) -> None:
        if not 0.0 <= transient_share <= 1.0:
            raise ValueError("transient_share must be between 0 and 1")
        self.transient_share = transient_share
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def transient(self) -> bool:
        if self.transient_share <= 0:
            return False
        with self._lock:
            return self._random.random() < self.transient_share


@dataclass
class PollerStats:
    invocations: int = 0
    failed_invocations: int = 0
    processed: int = 0
    failed_records: int = 0
    errors: int = 0


def failed_identifiers(result: Any) -> set[str]:
    """The ``itemIdentifier`` values of a handler's ``batchItemFailures`` response."""
    if not isinstance(result, dict):
        return set()
    failures = result.get("batchItemFailures") or []
    return {str(f["itemIdentifier"]) for f in failures if isinstance(f, dict)}


def _correlation_from_body(body: str) -> tuple[str | None, str | None]:
    """(correlationId, detail-type) from an EventBridge envelope, without validating it."""
    try:
        envelope = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(envelope, dict):
        return None, None
    detail = envelope.get("detail")
    correlation = detail.get("correlationId") if isinstance(detail, dict) else None
    detail_type = envelope.get("detail-type")
    return (
        correlation if isinstance(correlation, str) else None,
        detail_type if isinstance(detail_type, str) else None,
    )


def _hops(items: Iterable[tuple[str | None, str | None, bool, str | None]]) -> list[Hop]:
    """Group (correlation ID, event type, failed, cause) by correlation ID."""
    hops: dict[str, Hop] = {}
    for correlation_id, event_type, failed, cause in items:
        if not correlation_id:
            continue
        hop = hops.setdefault(correlation_id, Hop(correlation_id))
        if event_type:
            hop.event_types.append(event_type)
        if failed:
            hop.failed = True
            hop.cause = cause
    return list(hops.values())


class Poller(ABC):
    """A thread that calls ``poll_once`` until stopped; subclasses do one batch per call."""

    name = "poller"

    def __init__(
        self,
        clients: Clients,
        handler: Handler,
        function_name: str,
        function_arn: str,
        *,
        faults: Faults | None = None,
        segments: SegmentWriter | None = None,
        observer: InvocationObserver | None = None,
        idle_sleep_s: float = 0.2,
    ) -> None:
        self.clients = clients
        self.handler = handler
        self.function_name = function_name
        self.function_arn = function_arn
        self.faults = faults or Faults()
        self.segments = segments
        self.observer = observer
        self.idle_sleep_s = idle_sleep_s
        self.stats = PollerStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _invocation(
        self,
        items: Iterable[tuple[str | None, str | None, bool, str | None]],
        error: str | None,
        start: float,
        end: float,
    ) -> Invocation:
        """One invocation of this poller's function, for its X-Ray segment."""
        return Invocation(
            function_name=self.function_name,
            function_arn=self.function_arn,
            request_id=str(uuid.uuid4()),
            start=start,
            end=end,
            fault=error is not None,
            cause=error,
            hops=_hops(items),
        )

    @abstractmethod
    def poll_once(self) -> int:
        """Handle one batch; returns how many records it handled (0 = idle)."""

    def invoke(self, event: dict[str, Any]) -> tuple[Any, str | None, bool, float, float]:
        """Call the handler; returns (result, error, fault_injected, start, end)."""
        context = LambdaContext(self.function_name, self.function_arn)
        start = time.time()
        self.stats.invocations += 1
        if self.faults.transient():
            self.stats.failed_invocations += 1
            return (
                None,
                "InjectedTransientError: devstack fault injection",
                True,
                start,
                time.time(),
            )
        try:
            result = self.handler(event, context)
        except Exception as exc:
            # An unhandled exception fails the whole batch, as on Lambda.
            self.stats.failed_invocations += 1
            log.warning("%s failed: %s: %s", self.function_name, type(exc).__name__, exc)
            return None, f"{type(exc).__name__}: {exc}", False, start, time.time()
        return result, None, False, start, time.time()

    def report(self, invocation: Invocation) -> None:
        if self.segments is not None:
            self.segments.send(invocation)
        if self.observer is not None:
            try:
                self.observer(invocation)
            except Exception:
                log.exception("invocation observer failed for %s", self.function_name)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                handled = self.poll_once()
            except Exception:
                # The emulator may be restarting or busy; keep polling like Lambda would.
                self.stats.errors += 1
                log.exception("%s poll failed", self.name)
                handled = 0
            if not handled:
                self._stop.wait(self.idle_sleep_s)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


class QueuePoller(Poller):
    """Lambda's SQS event source for one consumer queue."""

    def __init__(
        self,
        clients: Clients,
        handler: Handler,
        function_name: str,
        function_arn: str,
        queue_url: str,
        queue_arn: str,
        *,
        batch_size: int = SQS_MAX_BATCH,
        wait_time_s: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(clients, handler, function_name, function_arn, **kwargs)
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.batch_size = min(batch_size, SQS_MAX_BATCH)
        self.wait_time_s = wait_time_s
        self.name = f"sqs:{queue_arn.rsplit(':', 1)[-1]}"

    def sqs_event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The event Lambda passes for an SQS batch."""
        records = []
        for message in messages:
            attributes = {
                name: value
                for name, value in message.get("Attributes", {}).items()
                if isinstance(value, str)
            }
            message_attributes = {
                name: {
                    "stringValue": value.get("StringValue"),
                    "binaryValue": value.get("BinaryValue"),
                    "stringListValues": value.get("StringListValues", []),
                    "binaryListValues": value.get("BinaryListValues", []),
                    "dataType": value.get("DataType", "String"),
                }
                for name, value in message.get("MessageAttributes", {}).items()
            }
            records.append(
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": attributes,
                    "messageAttributes": message_attributes,
                    "md5OfBody": message.get("MD5OfBody", ""),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": self.clients.region,
                }
            )
        return {"Records": records}

    def poll_once(self) -> int:
        sqs = self.clients("sqs")
        response = sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_time_s,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return 0
        result, error, injected, start, end = self.invoke(self.sqs_event(messages))
        if error is None:
            failed = failed_identifiers(result)
            done = [m for m in messages if m["MessageId"] not in failed]
            self.delete(done)
        else:
            failed = {m["MessageId"] for m in messages}
        self.stats.processed += len(messages) - len(failed)
        self.stats.failed_records += len(failed)
        self.report(self.invocation(messages, failed, error, start, end))
        return len(messages)

    def delete(self, messages: list[dict[str, Any]]) -> None:
        """Delete processed messages in batches of 10; a failed delete means a redelivery."""
        sqs = self.clients("sqs")
        for start in range(0, len(messages), SQS_MAX_BATCH):
            chunk = messages[start : start + SQS_MAX_BATCH]
            response = sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
                ],
            )
            for failure in response.get("Failed", []):
                log.warning("%s: delete failed: %s", self.name, failure)

    def invocation(
        self,
        messages: list[dict[str, Any]],
        failed: set[str],
        error: str | None,
        start: float,
        end: float,
    ) -> Invocation:
        items = []
        for message in messages:
            correlation_id, event_type = _correlation_from_body(message["Body"])
            attribute = message.get("MessageAttributes", {}).get("correlation_id", {})
            correlation_id = correlation_id or attribute.get("StringValue")
            root = trace_root_from_header(message.get("Attributes", {}).get("AWSTraceHeader"))
            if correlation_id and root and self.segments is not None:
                self.segments.trace_ids.adopt(correlation_id, root)
            is_failed = message["MessageId"] in failed
            items.append((correlation_id, event_type, is_failed, "rejected by handler"))
        return self._invocation(items, error, start, end)


def _plain(value: Any) -> Any:
    """Stream records as Lambda delivers them: JSON types only (datetimes as epoch seconds)."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass
class _StreamPosition:
    shard_id: str | None = None
    iterator: str | None = None
    # The sequence number to resume at after a failure, and how often it failed.
    retry_at: str | None = None
    attempts: int = 0


class StreamPoller(Poller):
    """Lambda's DynamoDB stream event source for the outbox publisher."""

    def __init__(
        self,
        clients: Clients,
        handler: Handler,
        function_name: str,
        function_arn: str,
        stream_arn: str,
        *,
        batch_size: int = 100,
        max_retries: int = 10,
        on_failure_queue_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(clients, handler, function_name, function_arn, **kwargs)
        self.stream_arn = stream_arn
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.on_failure_queue_url = on_failure_queue_url
        self.position = _StreamPosition()
        self.name = "ddb-stream:outbox"

    def _iterator(self, kind: str, sequence_number: str | None = None) -> str:
        streams = self.clients("dynamodbstreams")
        if self.position.shard_id is None:
            shards = streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"][
                "Shards"
            ]
            self.position.shard_id = shards[0]["ShardId"]
        kwargs: dict[str, Any] = {
            "StreamArn": self.stream_arn,
            "ShardId": self.position.shard_id,
            "ShardIteratorType": kind,
        }
        if sequence_number is not None:
            kwargs["SequenceNumber"] = sequence_number
        return str(streams.get_shard_iterator(**kwargs)["ShardIterator"])

    def stream_event(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "Records": [
                {
                    "eventID": r["eventID"],
                    "eventName": r["eventName"],
                    "eventVersion": r.get("eventVersion", "1.1"),
                    "eventSource": "aws:dynamodb",
                    "awsRegion": self.clients.region,
                    "dynamodb": _plain(r["dynamodb"]),
                    "eventSourceARN": self.stream_arn,
                }
                for r in records
            ]
        }

    def poll_once(self) -> int:
        if self.position.iterator is None:
            self.position.iterator = self._iterator("TRIM_HORIZON")
        response = self.clients("dynamodbstreams").get_records(
            ShardIterator=self.position.iterator, Limit=self.batch_size
        )
        records = response.get("Records", [])
        if not records:
            self.position.iterator = response.get("NextShardIterator") or self.position.iterator
            return 0
        result, error, _injected, start, end = self.invoke(self.stream_event(records))
        sequence = [r["dynamodb"]["SequenceNumber"] for r in records]
        failed = set(sequence) if error is not None else failed_identifiers(result)
        if failed:
            # Lambda checkpoints everything before the lowest failed record and retries from it.
            first_failed = min(failed, key=int)
            self.stats.processed += sum(1 for s in sequence if int(s) < int(first_failed))
            self.stats.failed_records += len(failed)
            self._retry_from(first_failed, records)
        else:
            self.stats.processed += len(records)
            self.position.iterator = response.get("NextShardIterator")
            self.position.retry_at, self.position.attempts = None, 0
        self.report(self.invocation(records, failed, error, start, end))
        return len(records)

    def _retry_from(self, sequence_number: str, records: list[dict[str, Any]]) -> None:
        if self.position.retry_at == sequence_number:
            self.position.attempts += 1
        else:
            self.position.retry_at, self.position.attempts = sequence_number, 1
        if self.position.attempts > self.max_retries:
            self._send_to_on_failure(sequence_number, records)
            self.position.iterator = self._iterator("AFTER_SEQUENCE_NUMBER", sequence_number)
            self.position.retry_at, self.position.attempts = None, 0
        else:
            self.position.iterator = self._iterator("AT_SEQUENCE_NUMBER", sequence_number)

    def _send_to_on_failure(self, sequence_number: str, records: list[dict[str, Any]]) -> None:
        """Lambda's on-failure destination record for a stream batch whose retries ran out."""
        log.error("outbox record %s dropped after %d attempts", sequence_number, self.max_retries)
        if not self.on_failure_queue_url:
            return
        record = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.function_arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": self.position.attempts,
            },
            "responseContext": {"statusCode": 200, "functionError": "BatchItemFailure"},
            "version": "1.0",
            "timestamp": datetime.now().astimezone().isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": self.position.shard_id,
                "startSequenceNumber": sequence_number,
                "endSequenceNumber": sequence_number,
                "batchSize": 1,
                "streamArn": self.stream_arn,
            },
        }
        self.clients("sqs").send_message(
            QueueUrl=self.on_failure_queue_url, MessageBody=json.dumps(record)
        )

    def invocation(
        self,
        records: list[dict[str, Any]],
        failed: set[str],
        error: str | None,
        start: float,
        end: float,
    ) -> Invocation:
        items = []
        for record in records:
            image = record["dynamodb"].get("NewImage", {})
            correlation_id = image.get("correlationId", {}).get("S")
            event_type = image.get("eventType", {}).get("S")
            if record.get("eventName") != "INSERT" or not event_type:
                continue  # only new outbox records are publications
            is_failed = record["dynamodb"]["SequenceNumber"] in failed
            items.append((correlation_id, event_type, is_failed, "publish failed"))
        return self._invocation(items, error, start, end)


class Runner:
    """Starts and stops a set of pollers together."""

    def __init__(self, pollers: list[Poller]) -> None:
        self.pollers = pollers

    def start(self) -> None:
        for poller in self.pollers:
            poller.start()

    def request_stop(self) -> None:
        """Tell every poller to stop after its current batch (returns at once)."""
        for poller in self.pollers:
            poller.stop()

    def stop(self, timeout: float = 5.0) -> None:
        self.request_stop()
        deadline = time.monotonic() + timeout
        for poller in self.pollers:
            poller.join(max(0.0, deadline - time.monotonic()))


def make_segment_writer(clients: Clients, trace_ids: TraceIds | None = None) -> SegmentWriter:
    return SegmentWriter(clients, trace_ids or TraceIds())
