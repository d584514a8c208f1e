"""Topology discovery from AWS APIs, and the read models of the overview pages.

Nothing here reads ``infra/topology.py``: the dashboard must work on any
account. What it finds:

- event buses, their rules and each rule's targets; archives per bus;
- queues with their dead-letter queue (``RedrivePolicy``), and each DLQ's
  sources (inverted from the policies; the queue page asks
  ``ListDeadLetterSourceQueues`` for the authoritative list);
- metric and composite alarms, mapped to the queues they watch (namespace
  ``AWS/SQS``, dimension ``QueueName``; composites through their children);
- event-log groups (``/aws/events/...`` and rules' CloudWatch Logs targets);
- consumer Lambdas through event source mappings.

``EVENTOPS_RESOURCE_PREFIX`` narrows every listing that has a name filter.
Each source is cached separately (``operations.cache``) so one failing or
denied API leaves the other panels intact.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from django.conf import settings

from operations import cache as read_cache
from operations import queue_counts
from operations.aws import cloudwatch, dynamodb, events, lambda_, logs, sqs
from operations.aws.cloudwatch import Alarm, MetricQuery, MetricSeries
from operations.aws.context import ContextThreadPoolExecutor
from operations.aws.errors import AwsError
from operations.aws.events import Archive, EventBus, Rule, Target
from operations.aws.lambda_ import EventSourceMapping
from operations.aws.logs import LogGroup
from operations.aws.sqs import QueueAttributes
from operations.cache import Cached, cached, fresh_until
from operations.cache import ttl as cache_ttl
from operations.queue_counts import QueueCounts

EVENT_LOG_PREFIX = "/aws/events/"
# Rules' targets are listed concurrently: there is no batch API.
TARGET_WORKERS = 8
ALARM_STATE_RANK = {"ALARM": 0, "INSUFFICIENT_DATA": 1, "OK": 2}


def resource_prefix() -> str:
    """The current environment's ``resource_prefix``, else ``EVENTOPS_RESOURCE_PREFIX``."""
    from operations import environments

    return environments.current().resource_prefix or str(
        getattr(settings, "EVENTOPS_RESOURCE_PREFIX", "") or ""
    )


def structure_ttl() -> int:
    """Cache lifetime of what changes only on deploys (rules, targets, archives,
    event logs, event source mappings): at least EVENTOPS_CACHE_TTL, 300 s by
    default, so a refresh after the TTL re-reads depths and alarm states but not
    one ListTargetsByRule per rule. EVENTOPS_TOPOLOGY_TTL overrides it."""
    return max(cache_ttl(), int(getattr(settings, "EVENTOPS_TOPOLOGY_TTL", 300)))


# --- discovered inventories --------------------------------------------------------------


@dataclass(frozen=True)
class RuleTargets:
    rule: Rule
    targets: tuple[Target, ...]


@dataclass
class BusTopology:
    bus: EventBus
    rules: list[RuleTargets] = field(default_factory=list)
    archives: list[Archive] = field(default_factory=list)

    @property
    def log_group_names(self) -> list[str]:
        """CloudWatch Logs groups that rules on this bus deliver events to."""
        names = []
        for entry in self.rules:
            for target in entry.targets:
                if target.service == "logs" and ":log-group:" in target.arn:
                    names.append(target.arn.split(":log-group:", 1)[1].removesuffix(":*"))
        return sorted(set(names))


@dataclass
class QueueInventory:
    """Every discovered queue by name, and the queues that failed to describe."""

    queues: dict[str, QueueAttributes] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # url -> error
    # Queue name (DLQ or source) -> ApproximateAgeOfOldestMessage (seconds), when CloudWatch
    # has a datapoint (``queue_counts``).
    ages: dict[str, float] = field(default_factory=dict)

    def by_arn(self, arn: str) -> QueueAttributes | None:
        return self.queues.get(sqs.queue_name_from_arn(arn)) if arn else None

    def dlq_of(self, queue: QueueAttributes) -> QueueAttributes | None:
        return self.by_arn(queue.redrive.dead_letter_arn) if queue.redrive else None

    @property
    def first_failure(self) -> str:
        return next(iter(self.failed.values()), "")

    @property
    def dlq_names(self) -> set[str]:
        names = set()
        for queue in self.queues.values():
            if queue.redrive:
                names.add(sqs.queue_name_from_arn(queue.redrive.dead_letter_arn))
        return names

    def sources_of(self, dlq_name: str) -> list[QueueAttributes]:
        """Discovered queues whose RedrivePolicy points at ``dlq_name``."""
        return sorted(
            (
                q
                for q in self.queues.values()
                if q.redrive and sqs.queue_name_from_arn(q.redrive.dead_letter_arn) == dlq_name
            ),
            key=lambda q: q.name,
        )


def discover_queues(prefix: str = "") -> QueueInventory:
    """All queues (names starting with ``prefix``) with their attributes."""
    urls = sqs.list_queue_urls(prefix)
    inventory = QueueInventory()
    errors: list[AwsError] = []
    for url, result in sqs.queue_attributes_many(urls).items():
        if isinstance(result, AwsError):
            # A queue deleted between the listing and the describe is no error.
            if not result.not_found:
                inventory.failed[url] = str(result)
                errors.append(result)
            continue
        inventory.queues[result.name] = result
    if errors and not inventory.queues:
        # Nothing could be described (typically sqs:GetQueueAttributes denied):
        # fail the panel, so it names the error and keeps the last good value.
        raise errors[0]
    return inventory


def discover_buses(prefix: str = "") -> list[BusTopology]:
    """Buses (names starting with ``prefix``), their rules, targets and archives."""
    buses = [BusTopology(bus=bus) for bus in events.list_event_buses(prefix)]
    rules = [(topo, rule) for topo in buses for rule in events.list_rules(topo.bus.name)]
    if rules:
        with ContextThreadPoolExecutor(max_workers=min(TARGET_WORKERS, len(rules))) as pool:
            targets = list(
                pool.map(lambda pair: events.list_targets(pair[1].name, pair[0].bus.name), rules)
            )
        for (topo, rule), rule_targets in zip(rules, targets, strict=True):
            topo.rules.append(RuleTargets(rule=rule, targets=tuple(rule_targets)))
    if buses:
        by_arn = {topo.bus.arn: topo for topo in buses}
        # Archive names need not share the buses' prefix: match on the source bus.
        for archive in events.list_archives():
            owner = by_arn.get(archive.source_arn)
            if owner is not None:
                owner.archives.append(archive)
    return buses


def discover_alarms(prefix: str = "") -> list[Alarm]:
    return cloudwatch.describe_alarms(prefix)


def discover_event_logs(prefix: str = "") -> list[LogGroup]:
    return logs.describe_log_groups(EVENT_LOG_PREFIX + prefix)


def _configured_names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def tables_ending_with(suffix: str, configured: str = "") -> list[str]:
    """DynamoDB tables for one role: the configured comma list, else discovered by name.

    Discovery keeps tables whose name ends with ``suffix`` (case-insensitive) and
    starts with ``EVENTOPS_RESOURCE_PREFIX``.
    """
    names = _configured_names(configured)
    if names:
        return names
    prefix = resource_prefix()
    return [
        name
        for name in dynamodb.list_table_names()
        if name.lower().endswith(suffix) and name.startswith(prefix)
    ]


def idempotency_tables() -> list[str]:
    """Powertools idempotency tables (``EVENTOPS_IDEMPOTENCY_TABLES``, else ``*idempotency``)."""
    return tables_ending_with("idempotency", settings.EVENTOPS_IDEMPOTENCY_TABLES)


def outbox_tables() -> list[str]:
    """Tables that hold the transactional outbox (``EVENTOPS_OUTBOX_TABLES``, else ``*orders``)."""
    return tables_ending_with("orders", settings.EVENTOPS_OUTBOX_TABLES)


def discover_mappings() -> list[EventSourceMapping]:
    return lambda_.list_event_source_mappings()


# --- cached sources ----------------------------------------------------------------------


def queue_structure() -> Cached[QueueInventory]:
    """Every queue with all its attributes (one GetQueueAttributes each), re-read once per
    topology TTL; ``queue_depths`` keeps its depths and its list of queues current."""
    prefix = resource_prefix()
    return cached(
        "queues", lambda: discover_queues(prefix), max_age=structure_ttl(), stale=structure_ttl()
    )


def queue_depths(structure: Cached[QueueInventory]) -> Cached[QueueCounts] | None:
    """Depths and ages of the queues, every TTL, from CloudWatch (``operations.queue_counts``)."""
    inventory = structure.value
    if inventory is None:
        return None
    prefix = resource_prefix()
    read_at = structure.fetched_at
    # A structure read within the TTL has current depths: only the ages are missing.
    ages_only = not structure.error and read_at is not None and time.time() - read_at < cache_ttl()
    return cached(
        "queue-depths",
        lambda: queue_counts.read_counts(
            inventory.queues, inventory.dlq_names, prefix, ages_only=ages_only
        ),
    )


def with_depths(
    structure: Cached[QueueInventory], depths: Cached[QueueCounts] | None
) -> Cached[QueueInventory]:
    """The structure read with the current depths and queue list: one source for the pages.

    Its ``fetched_at`` is the older of the two reads, its ``fresh_until`` the sooner, and
    an error of either is its error (the structure's first)."""
    if depths is None or depths.value is None or structure.value is None:
        if depths is None or not depths.error:
            return structure
        return replace(
            structure,
            error=structure.error or depths.error,
            error_code=structure.error_code or depths.error_code,
            access_denied=structure.access_denied or depths.access_denied,
            failed_at=structure.failed_at or depths.failed_at,
        )
    counts, base = depths.value, structure.value
    merged = QueueInventory(failed=dict(base.failed))
    for name, queue in base.queues.items():
        if name in counts.gone:
            continue
        depth = counts.depths.get(name)
        if depth is not None and (depth.visible, depth.in_flight) != (
            queue.visible,
            queue.in_flight,
        ):
            queue = replace(queue, visible=depth.visible, in_flight=depth.in_flight)
        merged.queues[name] = queue
    merged.queues.update(counts.added)
    merged.ages = counts.ages
    sources: list[Cached[Any]] = [structure, depths]
    times = [s.fetched_at for s in sources if s.fetched_at is not None]
    until = fresh_until(sources)
    fetched_at = min(times) if times else None
    failing = next((s for s in sources if s.error), None)
    return Cached(
        value=merged,
        fetched_at=fetched_at,
        max_age=int(until - fetched_at) if until is not None and fetched_at is not None else 0,
        error=failing.error if failing else "",
        error_code=failing.error_code if failing else "",
        access_denied=failing.access_denied if failing else False,
        failed_at=failing.failed_at if failing else None,
    )


def queues() -> Cached[QueueInventory]:
    """Every queue, its attributes from the structure read and its current depths."""
    structure = queue_structure()
    return with_depths(structure, queue_depths(structure))


def buses() -> Cached[list[BusTopology]]:
    prefix = resource_prefix()
    return cached(
        "buses", lambda: discover_buses(prefix), max_age=structure_ttl(), stale=structure_ttl()
    )


def alarms() -> Cached[list[Alarm]]:
    prefix = resource_prefix()
    return cached("alarms", lambda: discover_alarms(prefix))


def event_logs() -> Cached[list[LogGroup]]:
    prefix = resource_prefix()
    return cached(
        "event-logs",
        lambda: discover_event_logs(prefix),
        max_age=structure_ttl(),
        stale=structure_ttl(),
    )


def mappings() -> Cached[list[EventSourceMapping]]:
    return cached(
        "event-source-mappings", discover_mappings, max_age=structure_ttl(), stale=structure_ttl()
    )


def dead_letter_sources(dlq: QueueAttributes) -> Cached[list[str]]:
    """Names of the queues feeding ``dlq``, from ListDeadLetterSourceQueues."""
    return cached(
        f"dlq-sources:{dlq.name}",
        lambda: sorted(
            sqs.queue_name_from_url(u) for u in sqs.dead_letter_source_queue_urls(dlq.url)
        ),
    )


def metrics_end() -> datetime:
    """The end of metric windows: the start of the next minute, so the datapoint
    of the current minute is included."""
    return datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)


def metrics(
    name: str, queries: list[MetricQuery], window: timedelta
) -> Cached[dict[str, MetricSeries]]:
    """Series for ``queries`` over the last ``window``, cached under ``name``.

    The key includes a digest of the queries, so a changed set of queues is a
    new entry rather than a stale one.
    """
    digest = hashlib.sha1(repr(queries).encode(), usedforsecurity=False).hexdigest()[:12]

    def fetch() -> dict[str, MetricSeries]:
        end = metrics_end()
        return cloudwatch.get_metric_data(queries, end - window, end)

    return cached(f"metrics:{name}:{digest}", fetch)


# --- alarm mapping -------------------------------------------------------------------------


def alarms_by_queue(all_alarms: Iterable[Alarm]) -> dict[str, list[Alarm]]:
    """Queue name -> alarms watching it (metric alarms on AWS/SQS QueueName, and
    composite alarms whose children watch it)."""
    alarm_list = list(all_alarms)
    direct: dict[str, set[str]] = {}
    for alarm in alarm_list:
        names = {
            m.dimension("QueueName") or ""
            for m in alarm.metrics
            if m.namespace == "AWS/SQS" and m.dimension("QueueName")
        }
        if names:
            direct[alarm.name] = names
    by_name = {a.name: a for a in alarm_list}

    def watched(name: str, seen: frozenset[str]) -> set[str]:
        if name in direct:
            return direct[name]
        alarm = by_name.get(name)
        if alarm is None or alarm.kind != "composite" or name in seen:
            return set()
        found: set[str] = set()
        for child in alarm.children:
            found |= watched(child, seen | {name})
        return found

    result: dict[str, list[Alarm]] = defaultdict(list)
    for alarm in alarm_list:
        for queue_name in watched(alarm.name, frozenset()):
            result[queue_name].append(alarm)
    return dict(result)


def worst_state(states: Iterable[str]) -> str | None:
    ranked = sorted(states, key=lambda s: ALARM_STATE_RANK.get(s, 1))
    return ranked[0] if ranked else None


# --- overview --------------------------------------------------------------------------------


@dataclass
class Consumer:
    """One row of the overview: a source queue and what surrounds it."""

    queue: QueueAttributes
    dlq: QueueAttributes | None
    rules: list[tuple[str, str]]  # (bus name, rule name)
    functions: list[str]
    alarms: list[Alarm]
    dlq_age_seconds: float | None = None
    # ApproximateAgeOfOldestMessage of the source queue itself (None: no datapoint).
    oldest_age_seconds: float | None = None

    @property
    def alarm_state(self) -> str | None:
        return worst_state(a.state for a in self.alarms)

    @property
    def dlq_depth(self) -> int:
        return self.dlq.visible + self.dlq.in_flight if self.dlq else 0

    @property
    def expires_in_seconds(self) -> float | None:
        """Upper bound of the time before the oldest DLQ message expires.

        On standard queues expiry counts from the ORIGINAL enqueue, but
        ApproximateAgeOfOldestMessage on a DLQ measures time since the move,
        so the true time left is at most this much.
        """
        if self.dlq is None or self.dlq_depth == 0 or self.dlq_age_seconds is None:
            return None
        return max(0.0, self.dlq.retention_seconds - self.dlq_age_seconds)

    @property
    def dlq_age_display(self) -> str:
        return format_duration(self.dlq_age_seconds)

    @property
    def oldest_age_display(self) -> str:
        return format_duration(self.oldest_age_seconds)

    @property
    def expires_display(self) -> str:
        return format_duration(self.expires_in_seconds)

    def sort_key(self) -> tuple:
        expires = self.expires_in_seconds
        return (
            0 if self.alarm_state == "ALARM" else 1,
            0 if self.dlq_depth > 0 else 1,
            expires if expires is not None else math.inf,
            self.queue.name,
        )


@dataclass
class Overview:
    consumers: list[Consumer]
    queues: Cached[QueueInventory]
    buses: Cached[list[BusTopology]]
    alarms: Cached[list[Alarm]]
    mappings: Cached[list[EventSourceMapping]]
    # Kept for compatibility: DLQ ages now come with the depths (``queue_counts``).
    ages: Cached[dict[str, MetricSeries]] | None = None
    # When the depths and ages shown were read (the depths read, else the structure read).
    counts_read_at: datetime | None = None

    @property
    def panels(self) -> list[tuple[str, Cached]]:
        named: list[tuple[str, Cached | None]] = [
            ("Queues", self.queues),
            ("Event buses and rules", self.buses),
            ("Alarms", self.alarms),
            ("Consumer Lambdas", self.mappings),
            ("DLQ age metrics", self.ages),
        ]
        return [(label, c) for label, c in named if c is not None]

    @property
    def fresh_until(self) -> float | None:
        """Until when every source of this overview stays cached as it is."""
        return fresh_until([source for _label, source in self.panels])

    @property
    def data_time(self) -> datetime | None:
        """When the oldest of the data shown was read from AWS."""
        times = [s.fetched_at for _label, s in self.panels if s.fetched_at is not None]
        return datetime.fromtimestamp(min(times), tz=UTC) if times else None

    @property
    def alarms_firing(self) -> int:
        return sum(1 for a in self.alarms.value or [] if a.state == "ALARM")

    @property
    def dlq_messages(self) -> int:
        """Messages in all DLQs, each DLQ counted once however many sources share it."""
        depths = {c.dlq.arn: c.dlq_depth for c in self.consumers if c.dlq is not None}
        return sum(depths.values())


def rules_by_queue_arn(all_buses: Iterable[BusTopology]) -> dict[str, list[tuple[str, str]]]:
    result: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for topo in all_buses:
        for entry in topo.rules:
            for target in entry.targets:
                if target.service == "sqs":
                    result[target.arn].append((topo.bus.name, entry.rule.name))
    return dict(result)


def functions_by_queue_arn(all_mappings: Iterable[EventSourceMapping]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = defaultdict(list)
    for mapping in all_mappings:
        result[mapping.event_source_arn].append(mapping.function_name)
    return dict(result)


def overview() -> Overview:
    """Every consumer (a queue that is not itself a DLQ), worst first."""
    structure_c = queue_structure()
    depths_c = queue_depths(structure_c)
    inventory_c = with_depths(structure_c, depths_c)
    buses_c, alarms_c, mappings_c = buses(), alarms(), mappings()
    inventory = inventory_c.value or QueueInventory()
    rules = rules_by_queue_arn(buses_c.value or [])
    functions = functions_by_queue_arn(mappings_c.value or [])
    watching = alarms_by_queue(alarms_c.value or [])
    dlq_names = inventory.dlq_names
    consumers = []
    for queue in inventory.queues.values():
        if queue.name in dlq_names:
            continue
        dlq = inventory.dlq_of(queue)
        queue_alarms = watching.get(queue.name, []) + (watching.get(dlq.name, []) if dlq else [])
        consumers.append(
            Consumer(
                queue=queue,
                dlq=dlq,
                rules=sorted(rules.get(queue.arn, [])),
                functions=sorted(functions.get(queue.arn, [])),
                alarms=sorted({a.name: a for a in queue_alarms}.values(), key=lambda a: a.name),
            )
        )
    for consumer in consumers:
        consumer.oldest_age_seconds = inventory.ages.get(consumer.queue.name)
        if consumer.dlq is not None:
            consumer.dlq_age_seconds = inventory.ages.get(consumer.dlq.name)
    consumers.sort(key=Consumer.sort_key)
    counts_read = depths_c if depths_c is not None and depths_c.value is not None else structure_c
    return Overview(
        consumers=consumers,
        queues=inventory_c,
        buses=buses_c,
        alarms=alarms_c,
        mappings=mappings_c,
        counts_read_at=counts_read.fetched,
    )


# --- formatting helpers for the pages -------------------------------------------------------


def format_duration(seconds: float | None) -> str:
    """Compact "3 d 4 h" / "5 h 12 min" / "42 s" text for a duration."""
    if seconds is None:
        return "—"
    total = int(max(0, seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


# --- queue detail -------------------------------------------------------------------------

# Chart ranges: period keeps every series at <= 1,440 points and a multiple of 60.
RANGES: dict[str, int] = {"1h": 3600, "6h": 6 * 3600, "24h": 24 * 3600, "7d": 7 * 86400}
MAX_POINTS = 1440


def period_for(window_seconds: int) -> int:
    return max(60, math.ceil(window_seconds / MAX_POINTS / 60) * 60)


@dataclass(frozen=True)
class ChartSpec:
    title: str
    unit: str
    series: tuple[tuple[str, str], ...]  # (query id, label)


def _q(
    query_id: str, namespace: str, metric: str, dims: tuple, stat: str, period: int
) -> MetricQuery:
    return MetricQuery(query_id, namespace, metric, dims, stat, period, label=query_id)


def queue_chart_queries(
    queue: str, dlq: str | None, function: str | None, period: int
) -> tuple[list[MetricQuery], list[ChartSpec]]:
    """The metric queries and charts of a queue page (one GetMetricData call)."""
    qd = (("QueueName", queue),)
    queries = [
        _q("sent", "AWS/SQS", "NumberOfMessagesSent", qd, "Sum", period),
        _q("received", "AWS/SQS", "NumberOfMessagesReceived", qd, "Sum", period),
        _q("deleted", "AWS/SQS", "NumberOfMessagesDeleted", qd, "Sum", period),
        _q("visible", "AWS/SQS", "ApproximateNumberOfMessagesVisible", qd, "Maximum", period),
        _q("age", "AWS/SQS", "ApproximateAgeOfOldestMessage", qd, "Maximum", period),
    ]
    charts = [
        ChartSpec(
            "Messages per period",
            "messages",
            (("sent", "Sent"), ("received", "Received"), ("deleted", "Deleted")),
        ),
        ChartSpec("Visible messages", "messages", (("visible", "Queue visible"),)),
        ChartSpec("Age of oldest message", "seconds", (("age", "Age of oldest"),)),
    ]
    if dlq:
        dd = (("QueueName", dlq),)
        queries.append(
            _q("dlqvisible", "AWS/SQS", "ApproximateNumberOfMessagesVisible", dd, "Maximum", period)
        )
        charts[1] = ChartSpec(
            "Visible messages",
            "messages",
            (("visible", "Queue visible"), ("dlqvisible", "DLQ visible")),
        )
    if function:
        fd = (("FunctionName", function),)
        queries += [
            _q("errors", "AWS/Lambda", "Errors", fd, "Sum", period),
            _q("throttles", "AWS/Lambda", "Throttles", fd, "Sum", period),
            _q("duration", "AWS/Lambda", "Duration", fd, "Average", period),
            _q("durationmax", "AWS/Lambda", "Duration", fd, "Maximum", period),
        ]
        charts += [
            ChartSpec(
                f"Consumer {function}: errors and throttles",
                "count",
                (("errors", "Errors"), ("throttles", "Throttles")),
            ),
            ChartSpec(
                f"Consumer {function}: duration",
                "ms",
                (("duration", "Average"), ("durationmax", "Maximum")),
            ),
        ]
    return queries, charts


def chart_payload(
    charts: list[ChartSpec],
    series: dict[str, MetricSeries],
    end: datetime,
    window_seconds: int,
    period: int,
) -> list[dict]:
    """uPlot-ready data: per chart, a shared time axis (epoch seconds) and one
    list of values per series, ``None`` where CloudWatch has no datapoint."""
    end_ts = int(end.timestamp()) // period * period
    axis = list(range(end_ts - window_seconds, end_ts + 1, period))
    index = {ts: i for i, ts in enumerate(axis)}
    payload = []
    for chart in charts:
        columns: list[list] = [axis]
        for query_id, _label in chart.series:
            values: list[float | None] = [None] * len(axis)
            got = series.get(query_id)
            if got is not None:
                for ts, value in zip(got.timestamps, got.values, strict=True):
                    slot = index.get(int(ts.timestamp()) // period * period)
                    if slot is not None:
                        values[slot] = value
            columns.append(values)
        payload.append(
            {
                "title": chart.title,
                "unit": chart.unit,
                "labels": [label for _id, label in chart.series],
                "data": columns,
            }
        )
    return payload


@dataclass
class QueueDetail:
    queue: QueueAttributes
    dlq: QueueAttributes | None
    is_dlq: bool
    sources: Cached[list[str]] | None  # for a DLQ: ListDeadLetterSourceQueues
    rules: list[tuple[str, str]]
    functions: list[str]
    alarms: list[Alarm]
    range_key: str
    period: int
    charts: list[dict]
    metrics: Cached[dict[str, MetricSeries]]
    inventory: Cached[QueueInventory]
    buses: Cached[list[BusTopology]]
    alarms_source: Cached[list[Alarm]]
    mappings: Cached[list[EventSourceMapping]]
    attributes: Cached[QueueAttributes] | None = None

    @property
    def retention_display(self) -> str:
        return format_duration(self.queue.retention_seconds)

    @property
    def panels(self) -> list[tuple[str, Cached]]:
        named: list[tuple[str, Cached | None]] = [
            ("Queues", self.inventory),
            ("Event buses and rules", self.buses),
            ("Alarms", self.alarms_source),
            ("Consumer Lambdas", self.mappings),
            ("Queue attributes", self.attributes),
            ("Dead-letter sources", self.sources),
            ("Metrics", self.metrics),
        ]
        return [(label, c) for label, c in named if c is not None]


def exact_attributes(queue: QueueAttributes) -> Cached[QueueAttributes]:
    """One queue's attributes read now (exact depths), cached for the TTL."""
    return attributes_at(queue.name, queue.url)


def attributes_at(name: str, url: str) -> Cached[QueueAttributes]:
    return cached(f"queue-attributes:{name}", lambda: sqs.queue_attributes(url))


def queue_page_inventory(name: str) -> Cached[QueueInventory]:
    """The inventory a queue's page needs.

    Once every queue was read (the overview or any page did it), that inventory. Before
    that (a cold dashboard opened on a link from an alarm: at 1,000 consumers reading every
    queue takes thousands of calls), the queue alone, its DLQ and the queues it is the DLQ
    of (a handful of calls), while every queue is read in the background. A queue that does
    not exist gives an empty inventory (the page says 404); an AWS error gives a failed
    read (the page says why)."""
    if cache_ttl() <= 0 or read_cache.lookup("queues") is not None:
        return queues()
    read_cache.start_once("queues:first-read", queue_structure)
    try:
        url = sqs.queue_url(name)
    except AwsError as exc:
        if exc.not_found:
            return Cached(value=QueueInventory(), fetched_at=time.time())
        return read_cache.failed_read(exc)
    inventory = QueueInventory()
    queue_c = attributes_at(name, url)
    if queue_c.value is None:
        return replace(cast("Cached[QueueInventory]", queue_c), value=None)
    inventory.queues[name] = queue_c.value
    # A DLQ is in its sources' account and region (SQS requires it).
    related = list(dead_letter_sources(queue_c.value).value or [])
    if queue_c.value.redrive:
        related.append(sqs.queue_name_from_arn(queue_c.value.redrive.dead_letter_arn))
    for other in related:
        # A DLQ or source that cannot be read shows as missing, as in the full inventory.
        found = attributes_at(other, _sibling_url(url, other)).value
        if found is not None:
            inventory.queues[other] = found
    return Cached(value=inventory, fetched_at=queue_c.fetched_at, max_age=queue_c.max_age)


def _sibling_url(url: str, name: str) -> str:
    """The URL of queue ``name`` in the same account and region as ``url``."""
    return f"{url.rsplit('/', 1)[0]}/{name}"


def queue_detail(inventory_c: Cached[QueueInventory], name: str, range_key: str) -> QueueDetail:
    """Everything the queue page shows; ``name`` must be in the inventory."""
    inventory = inventory_c.value or QueueInventory()
    # This page shows exact depths (GetQueueAttributes), not the overview's metrics.
    attributes_c = exact_attributes(inventory.queues[name])
    queue = attributes_c.value or inventory.queues[name]
    # Every rule's targets, every alarm, every mapping: read in the background the first
    # time (a cold dashboard at 1,000 consumers), never inside this request.
    first = read_cache.first_reads_in_background(
        {"buses": buses, "alarms": alarms, "event-source-mappings": mappings}
    )
    buses_c, alarms_c, mappings_c = (
        first["buses"],
        first["alarms"],
        first["event-source-mappings"],
    )
    dlq = inventory.dlq_of(queue)
    if dlq is not None:
        dlq = exact_attributes(dlq).value or dlq
    is_dlq = name in inventory.dlq_names
    functions = sorted(functions_by_queue_arn(mappings_c.value or []).get(queue.arn, []))
    watching = alarms_by_queue(alarms_c.value or [])
    queue_alarms = watching.get(name, []) + (watching.get(dlq.name, []) if dlq else [])
    window = RANGES[range_key]
    period = period_for(window)
    queries, charts = queue_chart_queries(
        name, dlq.name if dlq else None, functions[0] if functions else None, period
    )
    end = metrics_end()
    metrics_c = metrics(f"queue:{name}:{range_key}", queries, timedelta(seconds=window))
    return QueueDetail(
        queue=queue,
        dlq=dlq,
        is_dlq=is_dlq,
        sources=dead_letter_sources(queue) if is_dlq else None,
        rules=sorted(rules_by_queue_arn(buses_c.value or []).get(queue.arn, [])),
        functions=functions,
        alarms=sorted({a.name: a for a in queue_alarms}.values(), key=lambda a: a.name),
        range_key=range_key,
        period=period,
        charts=chart_payload(charts, metrics_c.value or {}, end, window, period),
        metrics=metrics_c,
        inventory=inventory_c,
        buses=buses_c,
        alarms_source=alarms_c,
        mappings=mappings_c,
        attributes=attributes_c,
    )


# --- bus detail -------------------------------------------------------------------------------

DEFAULT_BUS = "default"
RULE_METRICS = (
    ("matched", "MatchedEvents"),
    ("invocations", "Invocations"),
    ("failed", "FailedInvocations"),
)


@dataclass
class RuleStats:
    entry: RuleTargets
    pattern: str  # pretty-printed JSON (escaped by the template)
    day: dict[str, float]
    hour: dict[str, float]


@dataclass
class BusDetail:
    topology: BusTopology
    rules: list[RuleStats]
    event_logs: list[LogGroup | str]
    metrics: Cached[dict[str, MetricSeries]] | None
    buses: Cached[list[BusTopology]]
    logs_source: Cached[list[LogGroup]]

    @property
    def panels(self) -> list[tuple[str, Cached]]:
        named: list[tuple[str, Cached | None]] = [
            ("Event buses and rules", self.buses),
            ("Event logs", self.logs_source),
            ("Rule metrics", self.metrics),
        ]
        return [(label, c) for label, c in named if c is not None]


def pretty_pattern(raw: str) -> str:
    """An event pattern as indented JSON (the raw text if it is not JSON)."""
    if not raw:
        return ""
    try:
        return json.dumps(json.loads(raw), indent=2, sort_keys=True)
    except ValueError:
        return raw


def rule_dimensions(bus_name: str, rule_name: str) -> tuple[tuple[str, str], ...]:
    """The AWS/Events dimensions of a rule's metrics: AWS publishes only ``RuleName`` for
    rules on the default bus, and ``EventBusName`` with ``RuleName`` on other buses."""
    if bus_name == DEFAULT_BUS:
        return (("RuleName", rule_name),)
    return (("EventBusName", bus_name), ("RuleName", rule_name))


def bus_detail(buses_c: Cached[list[BusTopology]], topo: BusTopology) -> BusDetail:
    """Rules with patterns, targets and 24 h / last-hour metrics; archives; event logs."""
    queries = [
        MetricQuery(
            id=f"{key}{index}",
            namespace="AWS/Events",
            metric_name=metric,
            dimensions=rule_dimensions(topo.bus.name, entry.rule.name),
            stat="Sum",
            period=3600,
            label=f"{entry.rule.name} {metric}",
        )
        for index, entry in enumerate(topo.rules)
        for key, metric in RULE_METRICS
    ]
    metrics_c = metrics(f"bus:{topo.bus.name}", queries, timedelta(hours=24)) if queries else None
    got = metrics_c.value if metrics_c is not None and metrics_c.value else {}

    def figures(position: int, latest: bool) -> dict[str, float]:
        result = {}
        for key, _metric in RULE_METRICS:
            series = got.get(f"{key}{position}")
            if series is None:
                result[key] = 0.0
            else:
                result[key] = (series.latest or 0.0) if latest else sum(series.values)
        return result

    rules = [
        RuleStats(
            entry=entry,
            pattern=pretty_pattern(entry.rule.event_pattern),
            day=figures(position, latest=False),
            hour=figures(position, latest=True),
        )
        for position, entry in enumerate(topo.rules)
    ]
    rules.sort(key=lambda stats: stats.entry.rule.name)
    logs_c = event_logs()
    known = {group.name: group for group in logs_c.value or []}
    conventional = EVENT_LOG_PREFIX + topo.bus.name
    wanted = sorted(set(topo.log_group_names) | ({conventional} & set(known)))
    return BusDetail(
        topology=topo,
        rules=rules,
        event_logs=[known.get(name, name) for name in wanted],
        metrics=metrics_c,
        buses=buses_c,
        logs_source=logs_c,
    )
