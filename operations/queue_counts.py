"""Queue depths for the overview, from CloudWatch, with exact reads where they matter.

SQS has no batch ``GetQueueAttributes``: one call per queue is 2,000 calls for 1,000
consumers with their DLQs. The AWS/SQS metrics of every queue come in one
``GetMetricData`` call per 500 queries instead. A refresh here is:

- ``ListQueues`` (1,000 URLs a page): queues created since the structure read
  (``topology.queue_structure``) are described at once, deleted ones dropped;
- ``GetMetricData``: ``ApproximateNumberOfMessagesVisible``, ``...NotVisible`` and
  ``ApproximateAgeOfOldestMessage`` of every queue, DLQ or source (Maximum, per minute,
  the latest datapoint of the last ``WINDOW``): a DLQ's age says when its oldest
  message expires, a source queue's whether its consumer keeps up;
- ``GetQueueAttributes`` only for the queues whose metric is missing (AWS publishes
  SQS metrics only for active queues), and for every DLQ whose metric says it is not
  empty: the DLQ depth is what an operator acts on, and the metric lags by minutes
  (a DLQ just redriven would still show its old depth).

So the cost is about ``3 + ceil(queries / 500)`` calls plus one per non-empty DLQ,
whatever the number of viewers (``operations.cache``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from operations.aws import cloudwatch, sqs
from operations.aws.cloudwatch import MetricQuery
from operations.aws.errors import AwsError
from operations.aws.sqs import QueueAttributes

# Metrics are per minute and arrive a few minutes late: the latest point of this window.
WINDOW = timedelta(minutes=10)
VISIBLE, NOT_VISIBLE, AGE = (
    "ApproximateNumberOfMessagesVisible",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateAgeOfOldestMessage",
)


@dataclass(frozen=True)
class Depth:
    visible: int
    in_flight: int
    source: str  # "metric", "exact" (GetQueueAttributes) or "structure" (the last full read)


@dataclass
class QueueCounts:
    """Depths and ages of every queue, and what changed since the structure read."""

    depths: dict[str, Depth] = field(default_factory=dict)
    # Queue name (DLQ or source) -> ApproximateAgeOfOldestMessage in seconds, when known.
    ages: dict[str, float] = field(default_factory=dict)
    added: dict[str, QueueAttributes] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    exact_reads: int = 0
    metric_queries: int = 0


def metric_queries(queue_names: list[str], aged: set[str]) -> list[MetricQuery]:
    """Visible and not-visible of every queue, age of those in ``aged`` (ids v0, n0, a0...)."""
    queries = []
    for index, name in enumerate(queue_names):
        dims = (("QueueName", name),)
        wanted = [("v", VISIBLE), ("n", NOT_VISIBLE)] + ([("a", AGE)] if name in aged else [])
        for prefix, metric in wanted:
            queries.append(
                MetricQuery(f"{prefix}{index}", "AWS/SQS", metric, dims, "Maximum", 60, label=name)
            )
    return queries


def metric_calls(queries: int) -> int:
    """GetMetricData calls for ``queries`` (without datapoint pagination)."""
    return math.ceil(queries / cloudwatch.METRIC_QUERIES_PER_CALL)


def read_counts(
    known: dict[str, QueueAttributes], dlq_names: set[str], prefix: str, *, ages_only: bool = False
) -> QueueCounts:
    """Depths of the queues listed now; ``known`` is the structure read (name -> attributes).

    ``ages_only``: the structure was read within the TTL, so its depths are current; read
    only the queues' ages (the first fill costs one GetMetricData per 500 queues, no more)."""
    if ages_only:
        return _ages_only(known)
    urls = sqs.list_queue_urls(prefix)
    names = {sqs.queue_name_from_url(url): url for url in urls}
    counts = QueueCounts(gone=set(known) - set(names))
    new_urls = [url for name, url in names.items() if name not in known]
    for result in sqs.queue_attributes_many(new_urls).values():
        if isinstance(result, QueueAttributes):
            counts.added[result.name] = result
            counts.depths[result.name] = Depth(result.visible, result.in_flight, "exact")
    counts.exact_reads += len(new_urls)
    dlqs = dlq_names | {
        sqs.queue_name_from_arn(q.redrive.dead_letter_arn)
        for q in counts.added.values()
        if q.redrive
    }
    listed = sorted(name for name in names if name in known)
    # Every listed queue's age: the DLQs' for their expiry, the sources' for the backlog.
    queries = metric_queries(listed, set(listed))
    counts.metric_queries = len(queries)
    end = _window_end()
    series = cloudwatch.get_metric_data(queries, end - WINDOW, end) if queries else {}
    exact: list[str] = []
    for index, name in enumerate(listed):
        visible, hidden = series.get(f"v{index}"), series.get(f"n{index}")
        age = series.get(f"a{index}")
        if age is not None and age.latest is not None:
            counts.ages[name] = age.latest
        if visible is None or hidden is None or visible.latest is None or hidden.latest is None:
            exact.append(name)
            continue
        depth = Depth(int(visible.latest), int(hidden.latest), "metric")
        counts.depths[name] = depth
        if name in dlqs and depth.visible + depth.in_flight > 0:
            exact.append(name)
    counts.exact_reads += len(exact)
    for name, result in zip(
        exact, sqs.queue_attributes_many([names[n] for n in exact]).values(), strict=True
    ):
        if isinstance(result, AwsError):
            if name not in counts.depths:
                # Neither a metric nor an exact read: the structure read's figure stands.
                previous = known[name]
                counts.depths[name] = Depth(previous.visible, previous.in_flight, "structure")
            continue
        counts.depths[name] = Depth(result.visible, result.in_flight, "exact")
    return counts


def _ages_only(known: dict[str, QueueAttributes]) -> QueueCounts:
    counts = QueueCounts(
        depths={n: Depth(q.visible, q.in_flight, "structure") for n, q in known.items()}
    )
    names = sorted(known)
    queries = [
        MetricQuery(f"a{i}", "AWS/SQS", AGE, (("QueueName", name),), "Maximum", 60, label=name)
        for i, name in enumerate(names)
    ]
    counts.metric_queries = len(queries)
    if queries:
        end = _window_end()
        series = cloudwatch.get_metric_data(queries, end - WINDOW, end)
        for index, name in enumerate(names):
            age = series.get(f"a{index}")
            if age is not None and age.latest is not None:
                counts.ages[name] = age.latest
    return counts


def _window_end() -> datetime:
    """The start of the next minute, so the current minute's datapoint is included."""
    return datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
