"""Outbox publisher: DynamoDB stream records -> EventBridge ``PutEvents``.

At-least-once, never a silent drop:

- only ``INSERT`` records of ``OUTBOX#`` items are published (every other record
  is acknowledged untouched: business items, status updates, TTL deletes);
- an outbox item already marked PUBLISHED (a stream retry after a partial
  failure) is not published again;
- entries go out in ``PutEvents`` calls of at most 10; the response's
  ``FailedEntryCount`` and every entry's ``ErrorCode`` are checked;
- each published item is marked PUBLISHED with a conditional update;
- every record that could not be published is returned in
  ``{"batchItemFailures": [{"itemIdentifier": <SequenceNumber>}]}``, so the stream
  (with ``ReportBatchItemFailures``) retries it.

Entry: ``Source="eventops.orders"``, ``DetailType=eventType``, ``Detail=payload``
(which carries ``correlationId``), ``EventBusName`` from the configuration and, in
Lambda, ``TraceHeader`` from ``_X_AMZN_TRACE_ID`` so the consumers' traces join the
publisher's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from infra.functions.config import env, new_client
from infra.functions.outbox import OUTBOX_PREFIX, STATUS_PENDING, STATUS_PUBLISHED
from infra.topology import ORDERS_SOURCE

logger = logging.getLogger(__name__)

PUT_EVENTS_MAX_ENTRIES = 10
BATCH_GET_MAX_KEYS = 100
_deserializer = TypeDeserializer()

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class _Pending:
    """One outbox stream record waiting to be published."""

    sequence_number: str
    key: dict[str, Any]
    event_type: str
    payload: str
    correlation_id: str


@dataclass
class PublishResult:
    """What one invocation did; ``failed`` holds the stream sequence numbers to retry."""

    published: int = 0
    skipped: int = 0
    already_published: int = 0
    failed: list[str] = field(default_factory=list)

    def response(self) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": seq} for seq in self.failed]}


class OutboxPublisher:
    """Publishes outbox stream records to one bus; clients are created on first use."""

    def __init__(
        self,
        bus_name: str,
        table_name: str,
        *,
        events_client: Any | None = None,
        dynamodb_client: Any | None = None,
    ) -> None:
        self.bus_name = bus_name
        self.table_name = table_name
        self._events = events_client
        self._dynamodb = dynamodb_client

    @property
    def events(self) -> Any:
        if self._events is None:
            self._events = new_client("events")
        return self._events

    @property
    def dynamodb(self) -> Any:
        if self._dynamodb is None:
            self._dynamodb = new_client("dynamodb")
        return self._dynamodb

    def __call__(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """Lambda entry point for a DynamoDB stream batch."""
        return self.publish(event.get("Records", [])).response()

    def publish(self, records: Iterable[dict[str, Any]]) -> PublishResult:
        result = PublishResult()
        pending: list[_Pending] = []
        for record in records:
            item = self._outbox_record(record, result)
            if item is not None:
                pending.append(item)
        if not pending:
            return result
        try:
            pending = self._drop_already_published(pending, result)
        except ClientError:
            # Without the status check we could publish twice, but never lose an event:
            # retry the whole batch later.
            logger.exception("outbox status check failed; retrying %d records", len(pending))
            result.failed.extend(p.sequence_number for p in pending)
            return result
        trace_header = os.environ.get("_X_AMZN_TRACE_ID")
        for start in range(0, len(pending), PUT_EVENTS_MAX_ENTRIES):
            self._put_chunk(pending[start : start + PUT_EVENTS_MAX_ENTRIES], trace_header, result)
        if result.failed:
            logger.warning(
                "outbox publish: %d published, %d failed (will be retried)",
                result.published,
                len(result.failed),
            )
        return result

    def _outbox_record(self, record: dict[str, Any], result: PublishResult) -> _Pending | None:
        """The publishable outbox item of a stream record, None if it is not one."""
        stream = record.get("dynamodb", {})
        keys = stream.get("Keys", {})
        if record.get("eventName") != "INSERT" or not keys.get("pk", {}).get("S", "").startswith(
            OUTBOX_PREFIX
        ):
            result.skipped += 1
            return None
        sequence = str(stream.get("SequenceNumber", ""))
        image = {k: _deserializer.deserialize(v) for k, v in stream.get("NewImage", {}).items()}
        if not image.get("eventType") or not isinstance(image.get("payload"), str):
            # A malformed outbox item is still reported, never dropped: an operator must see it.
            logger.error("outbox record %s has no eventType or payload: %s", sequence, keys)
            result.failed.append(sequence)
            return None
        return _Pending(
            sequence_number=sequence,
            key={"pk": keys["pk"], "sk": keys["sk"]},
            event_type=str(image["eventType"]),
            payload=image["payload"],
            correlation_id=str(image.get("correlationId", "")),
        )

    def _drop_already_published(
        self, pending: list[_Pending], result: PublishResult
    ) -> list[_Pending]:
        """Leave out items whose status is already PUBLISHED (a retried stream batch)."""
        published: set[tuple[str, str]] = set()
        for start in range(0, len(pending), BATCH_GET_MAX_KEYS):
            keys = [p.key for p in pending[start : start + BATCH_GET_MAX_KEYS]]
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": keys,
                    "ConsistentRead": True,
                    "ProjectionExpression": "pk, sk, #s",
                    "ExpressionAttributeNames": {"#s": "status"},
                }
            }
            while request:
                # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html
                response = self.dynamodb.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    if item.get("status", {}).get("S") == STATUS_PUBLISHED:
                        published.add((item["pk"]["S"], item["sk"]["S"]))
                request = response.get("UnprocessedKeys") or {}
        remaining = [p for p in pending if (p.key["pk"]["S"], p.key["sk"]["S"]) not in published]
        result.already_published += len(pending) - len(remaining)
        return remaining

    def _put_chunk(
        self, chunk: list[_Pending], trace_header: str | None, result: PublishResult
    ) -> None:
        entries = []
        for item in chunk:
            entry = {
                "Source": ORDERS_SOURCE,
                "DetailType": item.event_type,
                "Detail": item.payload,
                "EventBusName": self.bus_name,
            }
            if trace_header:
                entry["TraceHeader"] = trace_header
            entries.append(entry)
        try:
            # https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html
            response = self.events.put_events(Entries=entries)
        except ClientError:
            logger.exception("PutEvents failed for %d entries", len(chunk))
            result.failed.extend(item.sequence_number for item in chunk)
            return
        outcomes = response.get("Entries", [])
        for index, item in enumerate(chunk):
            outcome = outcomes[index] if index < len(outcomes) else {}
            if outcome.get("ErrorCode") or not outcome.get("EventId"):
                logger.warning(
                    "PutEvents rejected %s (correlation %s): %s %s",
                    item.event_type,
                    item.correlation_id,
                    outcome.get("ErrorCode", "no entry"),
                    outcome.get("ErrorMessage", ""),
                )
                result.failed.append(item.sequence_number)
                continue
            result.published += 1
            self._mark_published(item, outcome["EventId"])
        reported = int(response.get("FailedEntryCount", 0))
        counted = sum(1 for o in outcomes if o.get("ErrorCode"))
        if reported != counted:
            logger.warning("PutEvents FailedEntryCount %d but %d entries failed", reported, counted)

    def _mark_published(self, item: _Pending, event_id: str) -> None:
        """PENDING -> PUBLISHED. A failure here is logged, not retried: the event is out,
        and re-publishing it would only create a duplicate with a new event ID."""
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        try:
            # https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateItem.html
            self.dynamodb.update_item(
                TableName=self.table_name,
                Key=item.key,
                UpdateExpression="SET #s = :published, publishedAt = :now, eventId = :id",
                ConditionExpression="#s = :pending",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":published": {"S": STATUS_PUBLISHED},
                    ":pending": {"S": STATUS_PENDING},
                    ":now": {"S": now},
                    ":id": {"S": event_id},
                },
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code != "ConditionalCheckFailedException":
                logger.error("could not mark outbox item %s published: %s", item.key, code)


def build_publisher(
    bus_name: str,
    table_name: str,
    *,
    events_client: Any | None = None,
    dynamodb_client: Any | None = None,
) -> OutboxPublisher:
    """A publisher for ``bus_name`` marking items in ``table_name``.

    The result is a Lambda-style callable ``(event, context) -> {"batchItemFailures": [...]}``
    where ``event`` is ``{"Records": [<DynamoDB stream records>]}``.
    """
    return OutboxPublisher(
        bus_name, table_name, events_client=events_client, dynamodb_client=dynamodb_client
    )


_handler: OutboxPublisher | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler; reads EVENT_BUS_NAME and ORDERS_TABLE on the first invocation."""
    global _handler
    if _handler is None:
        _handler = build_publisher(env("EVENT_BUS_NAME"), env("ORDERS_TABLE"))
    return _handler(event, context)


def reset() -> None:
    """Forget the handler built from the environment (tests)."""
    global _handler
    _handler = None
