"""CloudWatch Logs adapter, as dataclasses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from operations.aws.client import client
from operations.aws.errors import translate


@dataclass(frozen=True)
class LogGroup:
    name: str
    arn: str
    retention_days: int  # 0 = never expire
    stored_bytes: int


def describe_log_groups(prefix: str = "") -> list[LogGroup]:
    """Every log group whose name starts with ``prefix``, all pages."""
    # https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_DescribeLogGroups.html
    kwargs: dict[str, object] = {}
    if prefix:
        kwargs["logGroupNamePrefix"] = prefix
    groups: list[LogGroup] = []
    try:
        for page in client("logs").get_paginator("describe_log_groups").paginate(**kwargs):
            for raw in page.get("logGroups", []):
                groups.append(
                    LogGroup(
                        name=raw["logGroupName"],
                        arn=raw.get("arn", ""),
                        retention_days=int(raw.get("retentionInDays", 0) or 0),
                        stored_bytes=int(raw.get("storedBytes", 0) or 0),
                    )
                )
    except Exception as exc:
        raise translate(exc, "DescribeLogGroups") from exc
    return groups


# --- reading the event log (H7) -------------------------------------------------------


@dataclass(frozen=True)
class LogEvent:
    """One log event: epoch-millisecond timestamp and the raw message text."""

    timestamp_ms: int
    message: str
    event_id: str = ""


@dataclass(frozen=True)
class LogEventPage:
    events: list[LogEvent]
    next_token: str


@dataclass(frozen=True)
class QueryResults:
    """A Logs Insights query's status ("Scheduled", "Running", "Complete", ...) and rows."""

    status: str
    rows: list[dict[str, str]]


# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_FilterLogEvents.html
def filter_log_events(
    group: str,
    *,
    start_ms: int,
    end_ms: int,
    filter_pattern: str = "",
    next_token: str = "",
    limit: int = 100,
) -> LogEventPage:
    """One page of events in ``[start_ms, end_ms]``; the token continues where it stopped."""
    params: dict[str, Any] = {
        "logGroupName": group,
        "startTime": start_ms,
        "endTime": end_ms,
        "limit": max(1, min(limit, 10_000)),
    }
    if filter_pattern:
        params["filterPattern"] = filter_pattern
    if next_token:
        params["nextToken"] = next_token
    try:
        page = client("logs").filter_log_events(**params)
    except Exception as exc:
        raise translate(exc, "FilterLogEvents") from exc
    events = [
        LogEvent(
            timestamp_ms=int(raw.get("timestamp", 0)),
            message=raw.get("message", ""),
            event_id=raw.get("eventId", ""),
        )
        for raw in page.get("events", [])
    ]
    return LogEventPage(events=events, next_token=page.get("nextToken", "") or "")


# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_StartQuery.html
def start_query(
    group: str | Sequence[str], *, start_s: int, end_s: int, query: str, limit: int
) -> str:
    """Start a Logs Insights query over one log group or several (at most 50); returns its
    query ID."""
    params: dict[str, Any] = {
        "startTime": start_s,
        "endTime": end_s,
        "queryString": query,
        "limit": limit,
    }
    if isinstance(group, str):
        params["logGroupName"] = group
    else:
        params["logGroupNames"] = list(group)
    try:
        response = client("logs").start_query(**params)
    except Exception as exc:
        raise translate(exc, "StartQuery") from exc
    return str(response["queryId"])


# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetQueryResults.html
def get_query_results(query_id: str) -> QueryResults:
    try:
        response = client("logs").get_query_results(queryId=query_id)
    except Exception as exc:
        raise translate(exc, "GetQueryResults") from exc
    rows = [
        {cell["field"]: cell.get("value", "") for cell in row if "field" in cell}
        for row in response.get("results", [])
    ]
    return QueryResults(status=str(response.get("status", "")), rows=rows)


# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_StopQuery.html
def stop_query(query_id: str) -> None:
    """Stop a query we gave up waiting for (it would keep costing scanned bytes)."""
    try:
        client("logs").stop_query(queryId=query_id)
    except Exception as exc:
        raise translate(exc, "StopQuery") from exc


def latest_event_ms(group: str) -> int | None:
    """When the newest event of ``group`` was written (epoch ms), from its most recently
    written stream; None when it holds none. AWS updates this within an hour at most."""
    # https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_DescribeLogStreams.html
    try:
        response = client("logs").describe_log_streams(
            logGroupName=group, orderBy="LastEventTime", descending=True, limit=1
        )
    except Exception as exc:
        raise translate(exc, "DescribeLogStreams") from exc
    streams = response.get("logStreams", [])
    stamp = streams[0].get("lastEventTimestamp") if streams else None
    return int(stamp) if stamp else None
