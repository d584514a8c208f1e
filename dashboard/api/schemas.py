"""Request and response bodies of API v1 (pydantic, through ninja: they make the
OpenAPI document). Responses are built as plain dicts by the routers; these describe them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Field, Schema


class ProblemOut(Schema):
    """An RFC 9457 problem document (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str


class PageOut(Schema):
    count: int
    next: str | None
    previous: str | None
    results: list[Any]


class ScanPageOut(PageOut):
    """A page of the latest scan's rows, with that scan (operation, state, when)."""

    scan: dict[str, Any]


class EnvironmentOut(Schema):
    name: str
    label: str
    region: str
    url: str


class ConsumerOut(Schema):
    queue: str
    visible: int
    in_flight: int
    dlq: str | None
    dlq_depth: int
    dlq_age_seconds: float | None
    expires_in_seconds: float | None
    alarm_state: str | None
    alarms: list[dict[str, Any]]
    rules: list[dict[str, str]]
    functions: list[str]


class OverviewOut(Schema):
    environment: str
    alarms_firing: int
    dlq_messages: int
    data_time: datetime | None
    errors: list[dict[str, Any]]
    consumers: list[ConsumerOut]


class QueueOut(Schema):
    name: str
    arn: str
    url: str
    fifo: bool
    visible: int
    in_flight: int
    delayed: int
    retention_seconds: int


class DlqOut(QueueOut):
    depth: int
    sources: list[dict[str, str]]
    page: str


class MessageOut(Schema):
    message_id: str
    event_type: str
    correlation_id: str
    error: str
    receive_count: int
    sent_at: datetime | None
    source_arn: str
    body: str | None = Field(None, description="Null without the view-bodies permission.")
    body_masked: bool
    attributes: dict[str, Any]
    system_attributes: dict[str, str]


class PeekOut(Schema):
    queue: str
    visibility_seconds: int
    note: str
    messages: list[MessageOut]


class FiltersIn(Schema):
    event_type: str = Field("", max_length=128)
    correlation_id: str = Field("", max_length=256)
    attribute_name: str = Field("", max_length=256)
    attribute_value: str = Field("", max_length=1024)
    contains: str = Field("", max_length=1024)
    sent_after: datetime | None = None
    sent_before: datetime | None = None
    message_ids: list[str] = Field(default_factory=list, max_length=200)


class RedriveIn(Schema):
    filters: FiltersIn = Field(default_factory=FiltersIn)  # type: ignore[arg-type]
    max_messages: int | None = Field(None, ge=1, le=1_000_000)
    rate: float | None = Field(None, ge=0.1, le=500, description="Messages per second.")
    concurrency: int | None = Field(
        None, ge=1, le=32, description="Pipelines at once (default EVENTOPS_REDRIVE_CONCURRENCY)."
    )
    workers: int | None = Field(
        None,
        ge=1,
        le=16,
        description="Celery workers the redrive is split across (standard DLQs; default 1).",
    )
    destination: str = Field(
        "",
        max_length=1024,
        description="ARN of one of the DLQ's source queues, for messages that lack "
        "DeadLetterQueueSourceArn (required when the DLQ has several sources).",
    )
    reason: str = Field("", max_length=2000, description="Required unless dry_run.")
    dry_run: bool = Field(False, description="Preview only: count and sample, nothing moves.")


class RedrivePreviewOut(Schema):
    dry_run: Literal[True]
    examined: int
    matching: int
    estimate: int | None
    queue_depth: int
    native: bool
    by_event_type: list[dict[str, Any]]
    by_error: list[dict[str, Any]]
    sample: list[MessageOut]


class OperationOut(Schema):
    id: int
    kind: str
    environment: str
    state: str
    target: str
    target_label: str
    reason: str
    requested_by: str
    via: str
    via_token: str
    total: int | None
    moved: int
    failed: int
    skipped: int
    held_back: int
    processed: int
    cancel_requested: bool
    error: str
    parameters: dict[str, Any]
    progress: dict[str, Any]
    outcome: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    page: str
    # A redrive split across workers: its parts; a part names its parent (and number).
    parent: int | None = None
    part: int | None = None
    parts: list[dict[str, Any]] = Field(default_factory=list)


class CancelIn(Schema):
    reason: str = Field(..., min_length=1, max_length=2000)


class CancelOut(Schema):
    status: str
    message: str
    operation: OperationOut


class ArchiveOut(Schema):
    name: str
    arn: str
    bus: str
    state: str
    retention_days: int
    event_count: int
    size_bytes: int
    created_at: datetime | None


class ReplayIn(Schema):
    start: datetime
    end: datetime
    rules: list[str] = Field(default_factory=list, max_length=100)
    reason: str = Field("", max_length=2000, description="Required unless dry_run.")
    dry_run: bool = False


class ReplayPreviewOut(Schema):
    dry_run: Literal[True]
    total: int
    truncated: bool
    delivered: int
    by_detail_type: list[dict[str, Any]]
    by_rule: list[dict[str, Any]]
    warnings: list[str]


class TimelineEntryOut(Schema):
    at: datetime | None
    source: str
    title: str
    detail: str
    state: str


class CorrelationOut(Schema):
    query: str
    kind: str
    correlation_id: str
    since_seconds: int
    timeline: list[TimelineEntryOut]
    panels: dict[str, Any]


class AlarmOut(Schema):
    name: str
    arn: str
    kind: str
    state: str
    state_reason: str
    changed_at: datetime | None
    runbook: str
    page: str
