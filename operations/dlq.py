"""Reading a dead-letter queue: peek, describe, group, filter and preview messages.

Message bodies and attributes are untrusted: this module parses and
pretty-prints them on the server, and templates escape the text.

Receiving a message changes state (it is hidden for the visibility timeout and
its receive count rises), so peeks use a short visibility timeout, and the
preview and the find-one helpers release what they received at once.
"""

from __future__ import annotations

import base64
import dataclasses
import difflib
import functools
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache

from operations import masking
from operations.aws import sqs
from operations.aws.errors import AwsError
from operations.models import Operation, TouchedCorrelation

logger = logging.getLogger(__name__)

# The system attributes shown for each message.
SHOWN_SYSTEM_ATTRIBUTES = (
    "DeadLetterQueueSourceArn",
    "ApproximateReceiveCount",
    "SentTimestamp",
    "ApproximateFirstReceiveTimestamp",
    "AWSTraceHeader",
)
# Message attributes that carry an error (Lambda's asynchronous DLQ sets ErrorMessage/ErrorCode).
ERROR_ATTRIBUTES = ("ErrorMessage", "error_message", "error", "ErrorCode")
# Bodies longer than this are shown truncated on the page (the export has them whole).
MAX_SHOWN_BODY = 64 * 1024
# How long what a peek found about redrive loops is kept for the operation and queue pages.
LOOP_CACHE_SECONDS = 24 * 3600
# At most this many looping correlation IDs are kept per DLQ and per operation.
MAX_KEPT_LOOPS = 200


def peek_visibility_seconds() -> int:
    """How long a peek hides the messages it receives (EVENTOPS_PEEK_VISIBILITY_SECONDS)."""
    return int(getattr(settings, "EVENTOPS_PEEK_VISIBILITY_SECONDS", 5))


def peek_max_receives() -> int:
    """How many ReceiveMessage calls one peek may make (EVENTOPS_PEEK_MAX_RECEIVES)."""
    return int(getattr(settings, "EVENTOPS_PEEK_MAX_RECEIVES", 10))


def _epoch_ms(value: str | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value or "") / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def printable(text: str) -> str:
    """``text`` that can be encoded as UTF-8: JSON escapes such as ``\\ud800`` parse to lone
    surrogates, which would fail the response; they are shown as that escape again."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def export_attribute(attribute: dict[str, object]) -> dict[str, str]:
    """A message attribute for the JSON export, in SQS's own shape (DataType plus
    StringValue or BinaryValue), the bytes of a binary one as base64 (``BinaryEncoding``
    says so): what SendMessage takes back once decoded."""
    exported = {"DataType": str(attribute.get("DataType", ""))}
    if "StringValue" in attribute:
        exported["StringValue"] = str(attribute["StringValue"])
    elif "BinaryValue" in attribute:
        value = attribute["BinaryValue"]
        raw = value if isinstance(value, bytes | bytearray) else str(value).encode()
        exported["BinaryValue"] = base64.b64encode(raw).decode("ascii")
        exported["BinaryEncoding"] = "base64"
    return exported


def _attribute_text(attribute: dict[str, object]) -> str:
    if "StringValue" in attribute:
        return str(attribute["StringValue"])
    if "BinaryValue" in attribute:
        return f"<binary, {len(attribute['BinaryValue'])} bytes>"  # type: ignore[arg-type]
    return ""


@dataclass
class DlqMessage:
    """A DLQ message prepared for display, filtering and export."""

    # What filtering and moving need is parsed by ``describe``; what only the pages show is
    # computed on first use (a redrive describes every message it moves, bench/redrive.py).
    raw: sqs.SqsMessage
    body_json: Any = None
    is_json: bool = False
    event_type: str = ""
    correlation_id: str = ""
    source_arn: str = ""
    sent_at: datetime | None = None
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def message_id(self) -> str:
        return self.raw.message_id

    @functools.cached_property
    def error(self) -> str:
        body = self.body_json if isinstance(self.body_json, dict) else {}
        return _error(self.attributes, body)

    @functools.cached_property
    def receive_count(self) -> int:
        try:
            return int(self.raw.attributes.get("ApproximateReceiveCount", "0") or 0)
        except ValueError:
            return 0

    @functools.cached_property
    def first_received_at(self) -> datetime | None:
        return _epoch_ms(self.raw.attributes.get("ApproximateFirstReceiveTimestamp"))

    @property
    def trace_header(self) -> str:
        return self.raw.attributes.get("AWSTraceHeader", "")

    @functools.cached_property
    def system_attributes(self) -> dict[str, str]:
        attrs = self.raw.attributes
        return {k: attrs[k] for k in SHOWN_SYSTEM_ATTRIBUTES if k in attrs}

    @functools.cached_property
    def _pretty(self) -> tuple[str, bool]:
        # Computed on first use (a redrive never shows it). A body nested about a thousand
        # levels deep parses, yet fails to print: it is then shown as received.
        if not self.is_json:
            return self.raw.body, False
        try:
            text = json.dumps(self.body_json, indent=2, ensure_ascii=False, sort_keys=True)
        except (ValueError, RecursionError):
            return self.raw.body, False
        return printable(text), True

    @property
    def pretty_body(self) -> str:
        """The body pretty-printed when it is JSON and printable, else as received."""
        return self._pretty[0]

    @property
    def pretty_failed(self) -> bool:
        """JSON that could not be pretty-printed (too deeply nested): shown as received."""
        return self.is_json and not self._pretty[1]

    @property
    def body_truncated(self) -> bool:
        return len(self.pretty_body) > MAX_SHOWN_BODY

    @property
    def shown_body(self) -> str:
        return self.pretty_body[:MAX_SHOWN_BODY]

    def export(self) -> dict[str, Any]:
        """A JSON-serialisable record of the message (the body as received, as text)."""
        return {
            "MessageId": self.raw.message_id,
            "Body": self.raw.body,
            "Attributes": self.raw.attributes,
            "MessageAttributes": {k: export_attribute(v) for k, v in self.attributes_raw.items()},
            "EventType": self.event_type,
            "CorrelationId": self.correlation_id,
            "Error": self.error,
        }

    @property
    def attributes_raw(self) -> dict[str, dict[str, object]]:
        return self.raw.message_attributes

    @functools.cached_property
    def masked(self) -> DlqMessage:
        """The message as someone who may not see secrets sees it: body and message
        attributes masked (operations/masking.py), everything shown derived from them.
        Only for showing and for their searches: what moves is always ``raw`` of the
        original. Itself when nothing is masked."""
        raw = self.raw
        body = masking.mask_text(raw.body)
        attributes = masking.mask_attributes(raw.message_attributes)
        if body == raw.body and attributes == raw.message_attributes:
            return self
        return describe(dataclasses.replace(raw, body=body, message_attributes=attributes))


def describe(message: sqs.SqsMessage) -> DlqMessage:
    """Parse a received message: JSON body, event type, correlation ID, error, system attributes."""
    result = DlqMessage(raw=message)
    try:
        result.body_json = json.loads(message.body)
        result.is_json = True
    except (ValueError, RecursionError):
        result.is_json = False
    body = result.body_json if isinstance(result.body_json, dict) else {}
    detail = body.get("detail")
    if not isinstance(detail, dict):
        detail = {}
    result.attributes = {k: _attribute_text(v) for k, v in message.message_attributes.items()}
    result.event_type = _text(body.get("detail-type")) or result.attributes.get("event_type", "")
    result.correlation_id = result.attributes.get("correlation_id") or _text(
        detail.get("correlationId")
    )
    attrs = message.attributes
    result.source_arn = attrs.get("DeadLetterQueueSourceArn", "")
    result.sent_at = _epoch_ms(attrs.get("SentTimestamp"))
    return result


def _text(value: object) -> str:
    return printable(value) if isinstance(value, str) else ""


def _error(attributes: dict[str, str], body: dict[str, Any]) -> str:
    for name in ERROR_ATTRIBUTES:
        if attributes.get(name):
            return attributes[name][:300]
    # Lambda on-failure destinations wrap the error in responsePayload.
    payload = body.get("responsePayload")
    if isinstance(payload, dict) and isinstance(payload.get("errorMessage"), str):
        return _text(payload["errorMessage"][:300])
    return ""


@dataclass
class Peek:
    messages: list[DlqMessage]
    receives: int
    visibility_seconds: int


def peek(url: str, *, limit: int = 50, visibility_seconds: int | None = None) -> Peek:
    """Receive up to ``limit`` distinct messages by repeated receives, at most
    ``peek_max_receives()`` calls. The messages stay hidden for ``visibility_seconds``."""
    visibility = peek_visibility_seconds() if visibility_seconds is None else visibility_seconds
    seen: dict[str, DlqMessage] = {}
    receives = 0
    while len(seen) < limit and receives < peek_max_receives():
        batch = sqs.receive_messages(
            url, max_messages=min(10, limit - len(seen)), visibility_timeout=visibility
        )
        receives += 1
        if not batch:
            break
        for message in batch:
            seen.setdefault(message.message_id, describe(message))
    return Peek(messages=list(seen.values()), receives=receives, visibility_seconds=visibility)


def release(url: str, messages: Iterable[sqs.SqsMessage]) -> None:
    """Make received messages visible again at once (ChangeMessageVisibility 0), in batches."""
    handles = {f"m{i}": m.receipt_handle for i, m in enumerate(messages)}
    items = list(handles.items())
    for start in range(0, len(items), sqs.MAX_BATCH_ENTRIES):
        chunk = dict(items[start : start + sqs.MAX_BATCH_ENTRIES])
        try:
            result = sqs.change_visibility_batch(url, chunk, 0)
        except AwsError as exc:
            # They become visible on their own when the visibility timeout ends.
            logger.warning("could not release %d messages of %s: %s", len(chunk), url, exc)
            continue
        for failure in result.failed:
            logger.warning("could not release a message of %s: %s", url, failure.code)


@dataclass
class Group:
    key: str
    count: int


def group_by(messages: Iterable[DlqMessage], attribute: str) -> list[Group]:
    """Counts of messages per ``event_type`` or ``error`` (messages without one are left out)."""
    counts = Counter(getattr(m, attribute) for m in messages if getattr(m, attribute))
    return [Group(key, count) for key, count in counts.most_common()]


@dataclass(frozen=True)
class Filters:
    """Which DLQ messages a redrive moves. Empty fields match everything."""

    event_type: str = ""
    correlation_id: str = ""
    attribute_name: str = ""
    attribute_value: str = ""
    contains: str = ""
    sent_after: datetime | None = None
    sent_before: datetime | None = None
    # Exactly these messages (for example the ones an alarm's window showed); SQS keeps a
    # message's id across receives, so this is exact where a time window is not.
    message_ids: frozenset[str] = frozenset()
    # Set for someone who may not see bodies unmasked: what they filter on is the masked
    # message, so no filter can find a secret they are not shown (a card number, a
    # password). The moved bytes are the original's all the same.
    masked: bool = False

    @property
    def is_empty(self) -> bool:
        return not any(v for k, v in self.to_dict().items() if k != "masked")

    def matches(self, message: DlqMessage) -> bool:
        """Whether the message is one to move. Masked (``masked``): a value must be found in
        the original and still be there once masked, so nothing masking hides ever matches;
        a value holding the mask itself (``••••1111``) is looked for in the masked message
        only. The original is checked first: most messages fail there, without masking."""
        if self.message_ids and message.message_id not in self.message_ids:
            return False
        if not self._content_matches(message, lenient=self.masked):
            return False
        looks_at_content = any(
            (self.event_type, self.correlation_id, self.attribute_name, self.contains)
        )
        if self.masked and looks_at_content and not self._content_matches(message.masked):
            return False
        sent = message.sent_at
        if self.sent_after and (sent is None or sent < self.sent_after):
            return False
        return not (self.sent_before and (sent is None or sent >= self.sent_before))

    def _content_matches(self, message: DlqMessage, *, lenient: bool = False) -> bool:
        """The text filters; ``lenient`` passes over values that hold the mask."""

        def wanted(value: str) -> bool:
            return bool(value) and not (lenient and masking.MASK in value)

        if wanted(self.event_type) and message.event_type != self.event_type:
            return False
        if wanted(self.correlation_id) and message.correlation_id != self.correlation_id:
            return False
        if (
            self.attribute_name
            and wanted(self.attribute_value or self.attribute_name)
            and message.attributes.get(self.attribute_name) != self.attribute_value
        ):
            return False
        return not (wanted(self.contains) and self.contains not in message.raw.body)

    def to_dict(self) -> dict[str, Any]:
        """For ``Operation.parameters`` (JSON)."""
        data = asdict(self)
        for key in ("sent_after", "sent_before"):
            data[key] = data[key].isoformat() if data[key] else ""
        data["message_ids"] = sorted(self.message_ids)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Filters:
        def when(value: object) -> datetime | None:
            if not value:
                return None
            parsed = datetime.fromisoformat(str(value))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

        return cls(
            event_type=str(data.get("event_type") or ""),
            correlation_id=str(data.get("correlation_id") or ""),
            attribute_name=str(data.get("attribute_name") or ""),
            attribute_value=str(data.get("attribute_value") or ""),
            contains=str(data.get("contains") or ""),
            sent_after=when(data.get("sent_after")),
            sent_before=when(data.get("sent_before")),
            message_ids=frozenset(str(i) for i in data.get("message_ids") or ()),
            masked=bool(data.get("masked")),
        )


@dataclass
class Preview:
    examined: int
    matching: list[DlqMessage]
    by_event_type: list[Group]
    by_error: list[Group]
    queue_depth: int
    # When the filters name message IDs, no more than that many can match.
    id_limit: int | None = None

    @property
    def sample(self) -> list[DlqMessage]:
        return self.matching[:10]

    @property
    def estimate(self) -> int | None:
        """How many of the whole queue would match, scaled from the sample
        (matching / examined x depth); None when the sample is the whole queue or
        says nothing. An estimate, not a count."""
        found = len(self.matching)
        if not self.examined or self.queue_depth <= self.examined:
            return None
        if self.id_limit is not None and found >= self.id_limit:
            return None
        value = max(found, round(found * self.queue_depth / self.examined))
        return min(value, self.id_limit) if self.id_limit is not None else value


def preview(url: str, filters: Filters, *, limit: int = 100) -> Preview:
    """What a redrive with ``filters`` would move, from a bounded sample of the queue.

    The sampled messages are released at once, so the redrive can start right away."""
    sample = peek(url, limit=limit, visibility_seconds=peek_visibility_seconds())
    release(url, (m.raw for m in sample.messages))
    matching = [m for m in sample.messages if filters.matches(m)]
    depth = sqs.queue_attributes(url).visible
    return Preview(
        examined=len(sample.messages),
        matching=matching,
        by_event_type=group_by(matching, "event_type"),
        by_error=group_by(matching, "error"),
        queue_depth=depth,
        id_limit=len(filters.message_ids) or None,
    )


def find_messages(
    url: str, message_ids: set[str], *, max_receives: int | None = None
) -> dict[str, sqs.SqsMessage]:
    """Receive until the messages with these ids are found or the bound is reached.

    SQS cannot look a message up by id, so this receives (bounded) and returns the
    found ones still hidden (their receipt handles are fresh); every other
    received message is released at once."""
    bound = max_receives or peek_max_receives()
    found: dict[str, sqs.SqsMessage] = {}
    others: list[sqs.SqsMessage] = []
    seen: set[str] = set()
    try:
        for _ in range(bound):
            batch = sqs.receive_messages(url, visibility_timeout=max(30, peek_visibility_seconds()))
            fresh = [m for m in batch if m.message_id not in seen]
            if not fresh:
                break
            for message in fresh:
                seen.add(message.message_id)
                if message.message_id in message_ids:
                    found[message.message_id] = message
                else:
                    others.append(message)
            if len(found) == len(message_ids):
                break
    finally:
        release(url, others)
    return found


def redrive_loops(dlq_url: str, correlation_ids: Iterable[str]) -> dict[str, list[int]]:
    """Correlation IDs seen in this DLQ that a finished redrive of the same DLQ already
    moved: the message came back (a redrive loop). Maps ID -> operation ids."""
    ids = {c for c in correlation_ids if c}
    if not ids:
        return {}
    rows = TouchedCorrelation.objects.filter(
        correlation_id__in=ids,
        operation__target=dlq_url,
        operation__kind__in=[Operation.Kind.REDRIVE, Operation.Kind.EDIT_RESEND],
        operation__state__in=Operation.FINAL_STATES,
    ).values_list("correlation_id", "operation_id")
    loops: dict[str, list[int]] = {}
    for correlation_id, operation_id in rows:
        loops.setdefault(correlation_id, []).append(operation_id)
    return loops


@dataclass(frozen=True)
class PeekRecord:
    """What the most recent peek of a DLQ found about redrive loops."""

    peeked_at: datetime
    examined: int
    loops: list[tuple[str, list[int]]]  # (correlation ID, ids of the redrives that moved it)


def _peek_key(dlq_url: str) -> str:
    digest = hashlib.sha256(dlq_url.encode()).hexdigest()[:32]
    return f"eventops:dlq-peek:{digest}"


def _operation_loops_key(operation_id: int) -> str:
    return f"eventops:redrive-loop:{operation_id}"


def remember_peek(
    dlq_url: str, examined: int, loops: dict[str, list[int]], *, at: datetime | None = None
) -> None:
    """Keep what a peek of ``dlq_url`` found (``redrive_loops``) for a day: per DLQ (the
    queue pages show the latest) and per redrive (its page lists its IDs that came back)."""
    kept = sorted(loops.items())[:MAX_KEPT_LOOPS]
    record = {
        "at": (at or datetime.now(UTC)).isoformat(),
        "examined": examined,
        "loops": [[cid, sorted(set(ops))] for cid, ops in kept],
    }
    cache.set(_peek_key(dlq_url), record, LOOP_CACHE_SECONDS)
    by_operation: dict[int, set[str]] = {}
    for correlation_id, operation_ids in kept:
        for operation_id in operation_ids:
            by_operation.setdefault(operation_id, set()).add(correlation_id)
    for operation_id, ids in by_operation.items():
        key = _operation_loops_key(operation_id)
        merged = sorted(set(cache.get(key, [])) | ids)[:MAX_KEPT_LOOPS]
        cache.set(key, merged, LOOP_CACHE_SECONDS)


def last_peek(dlq_url: str) -> PeekRecord | None:
    """What the most recent peek of ``dlq_url`` within a day found, or None."""
    record = cache.get(_peek_key(dlq_url))
    if not isinstance(record, dict):
        return None
    try:
        return PeekRecord(
            peeked_at=datetime.fromisoformat(record["at"]),
            examined=int(record["examined"]),
            loops=[(str(cid), [int(o) for o in ops]) for cid, ops in record["loops"]],
        )
    except (KeyError, TypeError, ValueError):
        return None


def loops_of_operation(operation_id: int) -> list[str]:
    """Correlation IDs this redrive moved that a peek within a day found back in the DLQ."""
    return list(cache.get(_operation_loops_key(operation_id), []))


def fetch_message(url: str, message_id: str) -> DlqMessage | None:
    """One message by id (bounded receives), released again at once; None if not found."""
    found = find_messages(url, {message_id})
    release(url, found.values())
    return describe(found[message_id]) if message_id in found else None


# --- editing a message (the actions themselves: operations/dlq_actions.py) ---------------


def normalise_json(text: str) -> tuple[Any, str]:
    """Parse an edited body; returns (value, pretty text). ValueError if it is not JSON."""
    value = json.loads(text)
    return value, json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def body_diff(original: DlqMessage, edited_pretty: str) -> str:
    """A unified diff of the pretty-printed original body and the edited one."""
    return "\n".join(
        difflib.unified_diff(
            original.pretty_body.splitlines(),
            edited_pretty.splitlines(),
            "original",
            "edited",
            lineterm="",
        )
    )
