"""The failure a consumer logged for a message: Powertools' structured log lines.

Powertools' Logger writes one JSON object a line: ``level``, ``location``, ``message``,
``timestamp``, the appended keys (here ``message_id`` and ``correlation_id``) and, for
``logger.exception``, ``exception_name`` and ``exception`` (the traceback).

One Logs Insights query per batch of at most ``BATCH_SIZE`` message IDs, over all the
consumers' log groups; when Insights is unavailable (refused, failed or too slow) or its
answer was cut at its limit, ``FilterLogEvents`` with a JSON filter pattern, a bounded
number of pages. Lines are parsed and filtered here again (the emulator's Insights ignores
``filter``), and the newest ERROR line of each message wins.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from operations.archive import QueryTimedOut, insights_string, insights_timestamp, run_query
from operations.aws import logs
from operations.aws.errors import AwsError

logger = logging.getLogger(__name__)

# Message IDs per Logs Insights query.
BATCH_SIZE = 50
# Lines per message the query may return (each failed receive logs one).
LINES_PER_MESSAGE = 10
# How long a page waits for Insights before it falls back to FilterLogEvents.
QUERY_TIMEOUT_S = 10.0
QUERY_POLL_S = 0.5
# FilterLogEvents: message IDs per filter pattern (patterns are limited to 1,024 characters)
# and pages per pattern and log group.
FILTER_IDS = 20
FILTER_PAGES = 5
ERROR_LEVELS = ("ERROR", "CRITICAL")
# What a message ID may be to go into a query (SQS gives UUIDs).
MESSAGE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


@dataclass(frozen=True)
class LoggedFailure:
    """One ERROR line of a consumer about one message."""

    message_id: str
    log_group: str
    timestamp_ms: int
    exception_name: str
    message: str
    location: str
    correlation_id: str
    traceback: str
    log_message: str


def top_frame(traceback: str) -> str:
    """``file.py:N in f`` of the innermost frame of a traceback, or ""."""
    frames = _FRAME.findall(traceback or "")
    if not frames:
        return ""
    path, line, function = frames[-1]
    return f"{path.rsplit('/', 1)[-1]}:{line} in {function}"


def exception_text(traceback: str, name: str) -> str:
    """What follows ``Name:`` on the traceback's last line for that exception, or ""."""
    if not traceback or not name:
        return ""
    head = re.compile(rf"^(?:[\w.]+\.)?{re.escape(name)}(?::\s?(.*))?$")
    lines = traceback.rstrip().splitlines()
    for index in range(len(lines) - 1, -1, -1):
        match = head.match(lines[index])
        if match:
            rest = [match.group(1) or "", *lines[index + 1 :]]
            return "\n".join(rest).strip()
    return ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def parse_line(text: str, timestamp_ms: int = 0, log_group: str = "") -> LoggedFailure | None:
    """A Powertools ERROR line that names a ``message_id``, else None."""
    try:
        line = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(line, dict) or _text(line.get("level")).upper() not in ERROR_LEVELS:
        return None
    message_id = _text(line.get("message_id"))
    if not message_id:
        return None
    traceback = _text(line.get("exception"))
    name = _text(line.get("exception_name"))
    log_message = _text(line.get("message"))
    detail = (
        exception_text(traceback, name)
        or _text(line.get("validation_error"))
        or _text(line.get("rule_error"))
        or _text(line.get("error"))
        or log_message
    )
    return LoggedFailure(
        message_id=message_id,
        log_group=log_group,
        timestamp_ms=timestamp_ms,
        exception_name=name,
        message=detail[:2000],
        location=top_frame(traceback) or _text(line.get("location")),
        correlation_id=_text(line.get("correlation_id")),
        traceback=traceback[:20000],
        log_message=log_message,
    )


def insights_query(message_ids: Sequence[str], limit: int) -> str:
    ids = ", ".join(insights_string(i) for i in message_ids)
    levels = ", ".join(insights_string(level) for level in ERROR_LEVELS)
    return (
        "fields @timestamp, @message, @log"
        f" | filter message_id in [{ids}] and level in [{levels}]"
        " | sort @timestamp desc"
        f" | limit {int(limit)}"
    )


def _group_of(log_field: str, groups: Sequence[str]) -> str:
    # AWS gives "<account>:<group>"; the emulator gives the group name.
    for group in groups:
        if log_field == group or log_field.endswith(":" + group):
            return group
    return groups[0] if len(groups) == 1 else ""


def _newest(found: dict[str, LoggedFailure], failure: LoggedFailure | None, ids: set[str]) -> None:
    if failure is None or failure.message_id not in ids:
        return
    known = found.get(failure.message_id)
    if known is None or failure.timestamp_ms > known.timestamp_ms:
        found[failure.message_id] = failure


@dataclass
class Search:
    """Failures found, by message ID, and what the reader should know about how."""

    found: dict[str, LoggedFailure]
    notes: list[str]


def find_failures(
    groups: Sequence[str],
    message_ids: Iterable[str],
    *,
    start_ms: int,
    end_ms: int,
    sleep: Callable[[float], None] | None = None,
) -> Search:
    """The newest failure each message's consumer logged in ``[start_ms, end_ms]``.

    At most ``BATCH_SIZE`` IDs; ``AwsError`` only if FilterLogEvents fails as well."""
    wanted = [i for i in dict.fromkeys(message_ids) if MESSAGE_ID.match(i)][:BATCH_SIZE]
    search = Search(found={}, notes=[])
    if not wanted or not groups:
        return search
    ids = set(wanted)
    limit = min(10_000, len(wanted) * LINES_PER_MESSAGE)
    truncated = False
    try:
        rows = run_query(
            list(groups),
            start_s=start_ms // 1000,
            end_s=-(-end_ms // 1000),
            query=insights_query(wanted, limit),
            limit=limit,
            timeout_s=QUERY_TIMEOUT_S,
            poll_s=QUERY_POLL_S,
            sleep=sleep or time.sleep,
        )
    except (AwsError, QueryTimedOut) as exc:
        logger.info("Logs Insights unavailable for %s: %s", ", ".join(groups), exc)
        search.notes.append(f"Logs Insights was unavailable ({exc}); read with FilterLogEvents.")
        rows = None
    if rows is not None:
        for row in rows:
            stamp = insights_timestamp(row.get("@timestamp", ""))
            group = _group_of(row.get("@log", ""), groups)
            _newest(search.found, parse_line(row.get("@message", ""), stamp, group), ids)
        truncated = len(rows) >= limit
    missing = [i for i in wanted if i not in search.found]
    if rows is None or (truncated and missing):
        _filter_events(groups, missing, start_ms, end_ms, search)
    return search


def filter_pattern(message_ids: Sequence[str]) -> str:
    """A JSON filter pattern matching ERROR lines of these message IDs."""
    alternatives = " || ".join(f"$.message_id = {insights_string(i)}" for i in message_ids)
    return f'{{ ($.level = "ERROR" || $.level = "CRITICAL") && ({alternatives}) }}'


def _filter_events(
    groups: Sequence[str], message_ids: list[str], start_ms: int, end_ms: int, search: Search
) -> None:
    ids = set(message_ids)
    for start in range(0, len(message_ids), FILTER_IDS):
        chunk = message_ids[start : start + FILTER_IDS]
        pattern = filter_pattern(chunk)
        for group in groups:
            token = ""
            for _ in range(FILTER_PAGES):
                page = logs.filter_log_events(
                    group,
                    start_ms=start_ms,
                    end_ms=end_ms,
                    filter_pattern=pattern,
                    next_token=token,
                    limit=1000,
                )
                for event in page.events:
                    _newest(search.found, parse_line(event.message, event.timestamp_ms, group), ids)
                token = page.next_token
                if not token or ids <= set(search.found):
                    break


def logged_at(failure: LoggedFailure) -> datetime | None:
    if not failure.timestamp_ms:
        return None
    return datetime.fromtimestamp(failure.timestamp_ms / 1000, tz=UTC)
