"""Archive replays: validate a request, preview it, start it as an Operation, cancel it.

The replay itself runs in the Celery task ``operations.replay``
(``operations/replay_tasks.py``), which calls StartReplay and polls
DescribeReplay into the operation's progress. AWS limits surfaced here
(AWS_FACTS.md): at most 10 active replays per account and Region, a window
inside the archive's retention, and a warning when the window ends within the
last 10 minutes (events can reach the archive late).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction

from operations import archive as archive_reads
from operations import event_pattern, topology
from operations.archive import ArchiveView, EventFilters, LoggedEvent
from operations.aws import dynamodb, events
from operations.aws.context import ContextThreadPoolExecutor
from operations.aws.errors import AwsError
from operations.enqueue import enqueue as enqueue_task
from operations.models import Operation

logger = logging.getLogger(__name__)

ACTIVE_REPLAY_LIMIT = 10
LATE_ARRIVAL = timedelta(minutes=10)
PREVIEW_CAP = 5000
NAME_PREFIX = "eventops-op"


class ReplayRequestError(ValueError):
    """The replay request is invalid; the message says why, for the operator."""


@dataclass
class ReplayPlan:
    """A validated request: the archive, the window and the chosen rules."""

    view: ArchiveView
    start: datetime
    end: datetime
    rules: list[events.Rule] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def filter_arns(self) -> list[str]:
        return [rule.arn for rule in self.rules]


def plan_replay(
    view: ArchiveView,
    start: datetime,
    end: datetime,
    rule_names: list[str] | tuple[str, ...] = (),
    *,
    now: datetime | None = None,
) -> ReplayPlan:
    """Check the window and rules against the archive; raise ReplayRequestError."""
    now = now or datetime.now(tz=UTC)
    if start.tzinfo is None or end.tzinfo is None:
        raise ReplayRequestError(
            "Times must include a time zone (use UTC, e.g. 2024-05-01T12:00Z)."
        )
    if end <= start:
        raise ReplayRequestError("The end of the window must be after its start.")
    if end > now:
        raise ReplayRequestError("The window cannot end in the future.")
    oldest = view.retention_start(now)
    if oldest is not None and start < oldest:
        raise ReplayRequestError(
            f"The window starts before the archive's retention of {view.archive.retention_days} "
            f"days: the oldest replayable time is {oldest:%Y-%m-%d %H:%M} UTC."
        )
    rules = []
    for name in dict.fromkeys(n.strip() for n in rule_names if n.strip()):
        rule = view.rule(name)
        if rule is None:
            raise ReplayRequestError(f"Rule {name!r} is not on the archive's bus {view.bus_name}.")
        rules.append(rule)
    plan = ReplayPlan(view=view, start=start, end=end, rules=rules)
    if end > now - LATE_ARRIVAL:
        plan.warnings.append(
            "The window ends within the last 10 minutes: events can reach the archive late, "
            "so some may be missing from this replay. AWS advises waiting 10 minutes."
        )
    created = view.archive.created_at
    if created is not None and start < created:
        plan.warnings.append(
            f"The archive was created at {created:%Y-%m-%d %H:%M} UTC; it holds no earlier events."
        )
    return plan


def replay_name(operation: Operation) -> str:
    """A valid replay name (1-64 of ``[.\\-_A-Za-z0-9]``) that cannot collide.

    It contains the operation id, unique in this database, and the row's
    creation time, so another database (or a reset one) does not reuse it.
    """
    return f"{NAME_PREFIX}{operation.pk}-{operation.created_at:%Y%m%dT%H%M%S}"


def start_replay_operation(
    plan: ReplayPlan,
    *,
    reason: str,
    user: Any = None,
    requested_by_name: str = "",
    enqueue: bool = True,
) -> Operation:
    """Write the replay's Operation row and enqueue the task on commit.

    Refuses (ReplayRequestError) without a reason, at the 10-active-replay
    limit, when another operation is active on the archive, or when the
    generated replay name already exists. Nothing is written when it refuses.
    ``enqueue=False`` leaves running it to the caller (``manage.py replay --wait``).
    ``QueueUnavailable`` when the broker cannot take the task (the row is then failed).
    """
    reason = reason.strip()
    if not reason:
        raise ReplayRequestError("A reason is required: it goes into the audit trail.")
    active = events.count_active_replays()
    if active >= ACTIVE_REPLAY_LIMIT:
        raise ReplayRequestError(
            f"{active} replays are already active in this account and Region; AWS allows "
            f"{ACTIVE_REPLAY_LIMIT}. Wait for one to finish or cancel one."
        )
    archive = plan.view.archive
    try:
        with transaction.atomic():
            operation = Operation.objects.create(
                kind=Operation.Kind.REPLAY,
                target=archive.arn,
                target_label=archive.name,
                reason=reason,
                requested_by=user if getattr(user, "is_authenticated", False) else None,
                requested_by_name=requested_by_name or getattr(user, "username", "") or "unknown",
                parameters={
                    "archive_name": archive.name,
                    "archive_arn": archive.arn,
                    "bus_arn": archive.source_arn,
                    "start": plan.start.isoformat(),
                    "end": plan.end.isoformat(),
                    "rule_names": [rule.name for rule in plan.rules],
                    "filter_arns": plan.filter_arns,
                    "warnings": plan.warnings,
                },
            )
            name = replay_name(operation)
            if events.replay_exists(name):
                raise ReplayRequestError(f"A replay named {name} already exists in AWS.")
            operation.parameters["replay_name"] = name
            operation.save(update_fields=["parameters"])
    except IntegrityError:
        raise ReplayRequestError(
            f"Another operation is already active on archive {archive.name}."
        ) from None
    if enqueue:
        enqueue_task(operation)
    logger.info("Replay operation %s created for %s", operation.pk, archive.name)
    return operation


# --- preview ------------------------------------------------------------------------------


@dataclass
class Preview:
    """What a replay of the window would send, from the event log."""

    total: int
    truncated: bool
    by_detail_type: list[tuple[str, int]]
    by_rule: list[tuple[str, int]]
    delivered: int
    idempotency: IdempotencyReport
    warnings: list[str]


def archive_pattern(plan: ReplayPlan) -> tuple[dict[str, Any] | None, str]:
    """The archive's event pattern, parsed (None: it keeps every event), and a warning
    when the local matcher cannot read it (the preview then counts every event)."""
    pattern = plan.view.archive.event_pattern
    if not pattern:
        return None, ""
    try:
        return event_pattern.parse_pattern(pattern), ""
    except event_pattern.InvalidPattern as exc:
        name = plan.view.archive.name
        logger.warning("Archive %s has a pattern the local matcher rejects: %s", name, exc)
        return None, (
            f"The archive's event pattern cannot be checked here ({exc}): the counts include "
            "every event of the window, also those the archive did not keep."
        )


def archived_events(plan: ReplayPlan, *, cap: int = PREVIEW_CAP) -> tuple[list[LoggedEvent], bool]:
    """Events of the window that the archive holds (bounded by ``cap``).

    Events delivered by a replay are not archived again, and an archive with an
    event pattern keeps only the events that match it.
    """
    found, truncated = archive_reads.collect_events(
        plan.view.log_group, plan.start, plan.end, EventFilters(), cap=cap
    )
    pattern, _warning = archive_pattern(plan)
    kept = [
        event
        for event in found
        if not event.replay_name and (pattern is None or _kept_by(pattern, event))
    ]
    return kept, truncated


def _kept_by(pattern: dict[str, Any], event: LoggedEvent) -> bool:
    try:
        return event_pattern.matches(pattern, event.envelope)
    except event_pattern.InvalidPattern:
        return True


def preview(plan: ReplayPlan, *, cap: int = PREVIEW_CAP, now: datetime | None = None) -> Preview:
    """Counts by detail-type and by rule, and the idempotency warning."""
    found, truncated = archived_events(plan, cap=cap)
    rules = plan.rules or plan.view.consumer_rules
    by_rule: Counter[str] = Counter()
    delivered = []
    for event in found:
        matched = archive_reads.matching_rules(event, rules)
        by_rule.update(rule.name for rule in matched)
        if matched:
            delivered.append(event)
    report = idempotency_check(delivered, now=now)
    if plan.rules:
        report.skipped_by_consumer = {
            consumer: count
            for consumer, count in report.skipped_by_consumer.items()
            if fed_by(consumer, plan.rules, plan.view.consumer_rules)
        }
    return Preview(
        total=len(found),
        truncated=truncated,
        by_detail_type=Counter(e.detail_type for e in found).most_common(),
        by_rule=[(rule.name, by_rule.get(rule.name, 0)) for rule in rules],
        delivered=len(delivered),
        idempotency=report,
        warnings=[*plan.warnings, *filter(None, [archive_pattern(plan)[1]])],
    )


def _tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[-_.:/]+", name.lower()) if t]


def _names(consumer: str, rule: events.Rule) -> bool:
    """Whether ``rule``'s name holds ``consumer``'s name as whole words ("billing" in
    "eventops-demo-billing-rule")."""
    want, have = _tokens(consumer), _tokens(rule.name)
    return bool(want) and any(
        have[i : i + len(want)] == want for i in range(len(have) - len(want) + 1)
    )


def fed_by(consumer: str, chosen: list[events.Rule], every: list[events.Rule]) -> bool:
    """Whether a replay limited to ``chosen`` rules reaches ``consumer`` (an idempotency
    record's consumer name). Tied to rules by name; a consumer no rule names is kept,
    since nothing says the replay cannot reach it."""
    if any(_names(consumer, rule) for rule in chosen):
        return True
    return not any(_names(consumer, rule) for rule in every)


# --- idempotency warning ---------------------------------------------------------------------
#
# Consumers (infra/functions/consumer.py) use Powertools idempotency with
# ``event_key_jmespath="id"`` and ``key_prefix=<consumer name>``: the record key is
# ``<consumer>#<md5(json.dumps(event id))>``, and the record carries the extra
# attributes ``correlation_id``, ``consumer`` and ``event_type`` (COMMON.md). Other
# deployments may prefix differently, so records are found through the
# ``by-correlation-id`` index (one Query per correlation ID of the window, bounded,
# no Scan) and tied to an event by the hash part of the key. Records whose hash
# matches no event of the window (a consumer keyed on something else) are tied by
# correlation ID and event type instead.

MAX_CORRELATION_LOOKUPS = 200
LOOKUP_WORKERS = 8


@dataclass
class IdempotencyReport:
    """Events that consumers would skip, because they hold an unexpired COMPLETED record."""

    tables: list[str] = field(default_factory=list)
    skipped_by_consumer: dict[str, int] = field(default_factory=dict)
    events_checked: int = 0
    lookups: int = 0
    truncated: bool = False
    error: str = ""

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped_by_consumer.values())


def key_hashes(event_id: str) -> set[str]:
    """Hash parts of the Powertools keys an event ID can produce (the ID, or ``{"id": ID}``)."""
    return {
        hashlib.md5(json.dumps(data, sort_keys=True).encode(), usedforsecurity=False).hexdigest()
        for data in (event_id, {"id": event_id})
    }


def _is_live_completed(record: dynamodb.Item, now_s: float) -> bool:
    try:
        expiration = float(record.get("expiration", 0) or 0)
    except (TypeError, ValueError):
        return False
    return record.get("status") == "COMPLETED" and expiration > now_s


def idempotency_check(
    found: list[LoggedEvent], *, now: datetime | None = None
) -> IdempotencyReport:
    """Count, per consumer, the events of ``found`` that the consumer would skip."""
    now_s = (now or datetime.now(tz=UTC)).timestamp()
    report = IdempotencyReport(events_checked=len(found))
    by_correlation: dict[str, list[LoggedEvent]] = defaultdict(list)
    for event in found:
        if event.correlation_id:
            by_correlation[event.correlation_id].append(event)
    correlation_ids = sorted(by_correlation)
    if len(correlation_ids) > MAX_CORRELATION_LOOKUPS:
        report.truncated = True
        correlation_ids = correlation_ids[:MAX_CORRELATION_LOOKUPS]
    try:
        report.tables = topology.idempotency_tables()
        lookups = [(t, c) for t in report.tables for c in correlation_ids]
        with ContextThreadPoolExecutor(max_workers=LOOKUP_WORKERS) as pool:
            results = list(
                pool.map(lambda tc: dynamodb.query_index(tc[0], "correlation_id", tc[1]), lookups)
            )
    except AwsError as exc:
        report.error = f"Could not read the idempotency records: {exc}"
        return report
    report.lookups = len(lookups)
    skipped: dict[str, set[str]] = defaultdict(set)
    for (_table, correlation_id), records in zip(lookups, results, strict=True):
        candidates = by_correlation[correlation_id]
        for record in records:
            if not _is_live_completed(record, now_s):
                continue
            consumer = str(record.get("consumer") or str(record.get("id", "")).split("#")[0])
            key_hash = str(record.get("id", "")).rsplit("#", 1)[-1]
            hits = [e for e in candidates if key_hash in key_hashes(e.id)]
            if not hits:
                hits = [e for e in candidates if e.detail_type == record.get("event_type")]
            skipped[consumer].update(e.id for e in hits)
    report.skipped_by_consumer = {c: len(ids) for c, ids in sorted(skipped.items()) if ids}
    return report
