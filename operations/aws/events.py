"""EventBridge adapter: buses, rules, targets and archives, as dataclasses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from operations.aws.client import client
from operations.aws.errors import AwsError, translate


@dataclass(frozen=True)
class EventBus:
    name: str
    arn: str


@dataclass(frozen=True)
class Rule:
    name: str
    arn: str
    bus_name: str
    state: str
    event_pattern: str  # raw JSON text as AWS returns it, or ""
    schedule: str
    description: str


@dataclass(frozen=True)
class Target:
    id: str
    arn: str
    dead_letter_arn: str = ""
    input_path: str = ""
    has_input_transformer: bool = False

    @property
    def service(self) -> str:
        """The ARN's service ("sqs", "logs", "lambda", ...)."""
        parts = self.arn.split(":")
        return parts[2] if len(parts) > 2 else ""

    @property
    def queue_name(self) -> str:
        """The queue's name when the target is an SQS queue, else ""."""
        return self.arn.rsplit(":", 1)[-1] if self.service == "sqs" else ""


@dataclass(frozen=True)
class Archive:
    name: str
    arn: str
    source_arn: str
    state: str
    retention_days: int  # 0 = indefinitely
    event_count: int
    size_bytes: int
    created: datetime | None


def _next_token_pages(call: Any, operation: str, **kwargs: Any) -> list[dict]:
    """Follow NextToken for APIs that boto3 has no paginator for."""
    pages = []
    token = None
    while True:
        args = dict(kwargs)
        if token:
            args["NextToken"] = token
        try:
            page = call(**args)
        except Exception as exc:
            raise translate(exc, operation) from exc
        pages.append(page)
        token = page.get("NextToken")
        if not token:
            return pages


def list_event_buses(prefix: str = "") -> list[EventBus]:
    """Every event bus (names starting with ``prefix``, plus "default" if it matches)."""
    # https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_ListEventBuses.html
    kwargs: dict[str, Any] = {"Limit": 100}
    if prefix:
        kwargs["NamePrefix"] = prefix
    pages = _next_token_pages(client("events").list_event_buses, "ListEventBuses", **kwargs)
    return [
        EventBus(name=b["Name"], arn=b["Arn"]) for page in pages for b in page.get("EventBuses", [])
    ]


def list_rules(bus_name: str) -> list[Rule]:
    """Every rule on ``bus_name``, all pages."""
    # https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_ListRules.html
    rules: list[Rule] = []
    try:
        for page in client("events").get_paginator("list_rules").paginate(EventBusName=bus_name):
            for raw in page.get("Rules", []):
                rules.append(
                    Rule(
                        name=raw["Name"],
                        arn=raw.get("Arn", ""),
                        bus_name=raw.get("EventBusName", bus_name),
                        state=raw.get("State", ""),
                        event_pattern=raw.get("EventPattern", ""),
                        schedule=raw.get("ScheduleExpression", ""),
                        description=raw.get("Description", ""),
                    )
                )
    except Exception as exc:
        raise translate(exc, "ListRules") from exc
    return rules


def list_targets(rule_name: str, bus_name: str) -> list[Target]:
    """Every target of one rule, all pages."""
    # https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_ListTargetsByRule.html
    targets: list[Target] = []
    try:
        paginator = client("events").get_paginator("list_targets_by_rule")
        for page in paginator.paginate(Rule=rule_name, EventBusName=bus_name):
            for raw in page.get("Targets", []):
                targets.append(
                    Target(
                        id=raw["Id"],
                        arn=raw["Arn"],
                        dead_letter_arn=raw.get("DeadLetterConfig", {}).get("Arn", ""),
                        input_path=raw.get("InputPath", ""),
                        has_input_transformer="InputTransformer" in raw,
                    )
                )
    except Exception as exc:
        raise translate(exc, "ListTargetsByRule") from exc
    return targets


def list_archives(prefix: str = "") -> list[Archive]:
    """Every archive in the account (names starting with ``prefix``), all pages."""
    # https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_ListArchives.html
    kwargs: dict[str, Any] = {"Limit": 100}
    if prefix:
        kwargs["NamePrefix"] = prefix
    pages = _next_token_pages(client("events").list_archives, "ListArchives", **kwargs)
    archives = []
    for page in pages:
        for raw in page.get("Archives", []):
            archives.append(
                Archive(
                    name=raw["ArchiveName"],
                    arn=raw.get("ArchiveArn", ""),
                    source_arn=raw.get("EventSourceArn", ""),
                    state=raw.get("State", ""),
                    retention_days=int(raw.get("RetentionDays", 0) or 0),
                    event_count=int(raw.get("EventCount", 0) or 0),
                    size_bytes=int(raw.get("SizeBytes", 0) or 0),
                    created=raw.get("CreationTime"),
                )
            )
    return archives


# --- archives, replays, rules and publishing (H7) ----------------------------------


@dataclass(frozen=True)
class ArchiveDetail:
    """One archive as DescribeArchive gives it (with its event pattern).

    ``event_count`` and ``size_bytes`` lag by up to 24 h."""

    name: str
    arn: str
    source_arn: str
    state: str
    retention_days: int
    event_count: int
    size_bytes: int
    event_pattern: str
    description: str
    created_at: datetime | None

    @property
    def bus_name(self) -> str:
        return self.source_arn.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ReplayInfo:
    """One replay as ListReplays / DescribeReplay return it."""

    name: str
    arn: str
    source_arn: str
    state: str
    state_reason: str
    event_start: datetime | None
    event_end: datetime | None
    last_replayed: datetime | None
    replay_start: datetime | None
    replay_end: datetime | None
    filter_arns: tuple[str, ...]


@dataclass(frozen=True)
class PutResult:
    """The outcome of one PutEvents entry: an event ID, or an error code."""

    event_id: str
    error_code: str
    error_message: str

    @property
    def ok(self) -> bool:
        return not self.error_code


REPLAY_NAME_RE = re.compile(r"^[.\-_A-Za-z0-9]{1,64}$")
ACTIVE_REPLAY_STATES = ("STARTING", "RUNNING", "CANCELLING")
FINAL_REPLAY_STATES = ("COMPLETED", "CANCELLED", "FAILED")
PUT_EVENTS_BATCH = 10


def _archive_detail(raw: dict[str, Any], arn: str = "") -> ArchiveDetail:
    return ArchiveDetail(
        name=raw.get("ArchiveName", ""),
        arn=raw.get("ArchiveArn", arn),
        source_arn=raw.get("EventSourceArn", ""),
        state=raw.get("State", ""),
        retention_days=int(raw.get("RetentionDays") or 0),
        event_count=int(raw.get("EventCount") or 0),
        size_bytes=int(raw.get("SizeBytes") or 0),
        event_pattern=raw.get("EventPattern") or "",
        description=raw.get("Description") or "",
        created_at=raw.get("CreationTime"),
    )


# https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_DescribeArchive.html
def describe_archive(name: str) -> ArchiveDetail:
    """One archive; raises AwsError with ``not_found`` for an unknown name."""
    try:
        raw = client("events").describe_archive(ArchiveName=name)
    except Exception as exc:
        raise translate(exc, "DescribeArchive") from exc
    return _archive_detail(raw)


def _replay(raw: dict[str, Any]) -> ReplayInfo:
    destination = raw.get("Destination") or {}
    return ReplayInfo(
        name=raw.get("ReplayName", ""),
        arn=raw.get("ReplayArn", ""),
        source_arn=raw.get("EventSourceArn", ""),
        state=raw.get("State", ""),
        state_reason=raw.get("StateReason") or "",
        event_start=_as_datetime(raw.get("EventStartTime")),
        event_end=_as_datetime(raw.get("EventEndTime")),
        last_replayed=_as_datetime(raw.get("EventLastReplayedTime")),
        replay_start=_as_datetime(raw.get("ReplayStartTime")),
        replay_end=_as_datetime(raw.get("ReplayEndTime")),
        filter_arns=tuple(destination.get("FilterArns") or ()),
    )


def _as_datetime(value: Any) -> datetime | None:
    # botocore parses timestamps; moto can send epoch numbers that arrive as datetimes too.
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    return None


# https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_ListReplays.html
def list_replays(*, source_arn: str = "", state: str = "", limit: int = 500) -> list[ReplayInfo]:
    """Replays, filtered by archive ARN *or* state (the API accepts one filter at most)."""
    if source_arn and state:
        raise ValueError("ListReplays accepts only one filter")
    params: dict[str, Any] = {"Limit": 50}
    if source_arn:
        params["EventSourceArn"] = source_arn
    if state:
        params["State"] = state
    replays: list[ReplayInfo] = []
    try:
        while len(replays) < limit:
            page = client("events").list_replays(**params)
            replays.extend(_replay(r) for r in page.get("Replays", []))
            token = page.get("NextToken")
            if not token:
                break
            params["NextToken"] = token
    except Exception as exc:
        raise translate(exc, "ListReplays") from exc
    return replays[:limit]


def count_active_replays() -> int:
    """Replays counting against the account's limit of 10 (one ListReplays per state)."""
    return sum(len(list_replays(state=state)) for state in ACTIVE_REPLAY_STATES)


# https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_DescribeReplay.html
def describe_replay(name: str) -> ReplayInfo:
    try:
        raw = client("events").describe_replay(ReplayName=name)
    except Exception as exc:
        raise translate(exc, "DescribeReplay") from exc
    return _replay(raw)


def replay_exists(name: str) -> bool:
    try:
        describe_replay(name)
    except AwsError as exc:
        if exc.not_found:
            return False
        raise
    return True


# https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_StartReplay.html
def start_replay(
    *,
    name: str,
    archive_arn: str,
    bus_arn: str,
    start: datetime,
    end: datetime,
    filter_arns: list[str] | tuple[str, ...] = (),
    description: str = "",
) -> str:
    """Start a replay of ``archive_arn`` onto its own bus; returns the replay state."""
    if not REPLAY_NAME_RE.match(name):
        raise ValueError(f"Invalid replay name {name!r}")
    destination: dict[str, Any] = {"Arn": bus_arn}
    if filter_arns:
        destination["FilterArns"] = list(filter_arns)
    try:
        response = client("events").start_replay(
            ReplayName=name,
            Description=description[:512],
            EventSourceArn=archive_arn,
            EventStartTime=start,
            EventEndTime=end,
            Destination=destination,
        )
    except Exception as exc:
        raise translate(exc, "StartReplay") from exc
    return str(response.get("State", ""))


# https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_CancelReplay.html
def cancel_replay(name: str) -> str:
    try:
        response = client("events").cancel_replay(ReplayName=name)
    except Exception as exc:
        raise translate(exc, "CancelReplay") from exc
    return str(response.get("State", ""))


# https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html
def put_events(entries: list[dict[str, Any]]) -> list[PutResult]:
    """Publish ``entries`` (PutEvents request entries) in calls of at most 10.

    Returns one result per entry, in order: a call can succeed while some of its
    entries fail, so each entry's ``ErrorCode`` is checked.
    """
    results: list[PutResult] = []
    events = client("events")
    for start in range(0, len(entries), PUT_EVENTS_BATCH):
        batch = entries[start : start + PUT_EVENTS_BATCH]
        try:
            response = events.put_events(Entries=batch)
        except Exception as exc:
            raise translate(exc, "PutEvents") from exc
        returned = response.get("Entries", [])
        for index in range(len(batch)):
            raw = returned[index] if index < len(returned) else {"ErrorCode": "MissingEntry"}
            results.append(
                PutResult(
                    event_id=raw.get("EventId", "") or "",
                    error_code=raw.get("ErrorCode", "") or "",
                    error_message=raw.get("ErrorMessage", "") or "",
                )
            )
    return results


# https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_TestEventPattern.html
def test_event_pattern(pattern: str, event: str) -> bool:
    """Ask EventBridge whether ``event`` (JSON envelope) matches ``pattern``."""
    try:
        response = client("events").test_event_pattern(EventPattern=pattern, Event=event)
    except Exception as exc:
        raise translate(exc, "TestEventPattern") from exc
    if "Result" not in response:
        raise AwsError(
            "The response has no Result", code="MissingResult", operation="TestEventPattern"
        )
    return bool(response["Result"])


test_event_pattern.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
