"""The dashboard's own Prometheus metrics, served at ``/metrics`` with django-prometheus's.

Counters here count in the process that increments them (the web process for AWS calls
of pages, cache look-ups and SNS posts). What Celery workers do is read from the
database at scrape time instead (``OperationsCollector``): operations by kind and state,
and messages moved and failed (monotonic: operation rows are never deleted), so the
numbers are whole whichever process is scraped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

AWS_CALLS = Counter(
    "eventops_aws_calls",
    "AWS API calls made by this process, by service, operation and error code ('' = none)",
    ["service", "operation", "error"],
)
CACHE = Counter("eventops_cache_lookups", "Cached AWS reads by this process, by result", ["result"])
SNS_RECEIVED = Counter(
    "eventops_sns_notifications_received",
    "Posts to /hooks/sns, by message type and outcome",
    ["type", "outcome"],
)
NOTIFICATIONS = Counter(
    "eventops_notifications",
    "Notifications delivered or given up, by destination kind",
    ["destination", "outcome"],
)


def aws_call(service: str, operation: str, error: str = "") -> None:
    AWS_CALLS.labels(service, operation, error).inc()


def cache_lookup(hit: bool) -> None:
    CACHE.labels("hit" if hit else "miss").inc()


def sns_received(kind: str, outcome: str) -> None:
    SNS_RECEIVED.labels(kind[:40], outcome).inc()


def notification(destination: str, outcome: str) -> None:
    NOTIFICATIONS.labels(destination, outcome).inc()


class OperationsCollector(Collector):
    """Operations by kind and state, messages moved and failed: from the database."""

    def describe(self) -> Iterator[Any]:
        # Without this, registering would call ``collect`` (a query) at startup.
        yield GaugeMetricFamily("eventops_operations", "", labels=["kind", "state"])
        yield CounterMetricFamily("eventops_messages_moved", "", labels=["kind"])
        yield CounterMetricFamily("eventops_messages_failed", "", labels=["kind"])

    def collect(self) -> Iterator[Any]:
        from django.db.models import Count, Sum

        from operations.models import Operation

        by_state = GaugeMetricFamily(
            "eventops_operations", "Operations by kind and state", labels=["kind", "state"]
        )
        moved = CounterMetricFamily(
            "eventops_messages_moved", "Messages moved by operations, by kind", labels=["kind"]
        )
        failed = CounterMetricFamily(
            "eventops_messages_failed",
            "Messages operations failed to move, by kind",
            labels=["kind"],
        )
        rows = Operation.objects.values("kind", "state").annotate(
            n=Count("id"), moved=Sum("moved"), failed=Sum("failed")
        )
        totals: dict[str, list[int]] = {}
        for row in rows.order_by():
            by_state.add_metric([row["kind"], row["state"]], row["n"])
            total = totals.setdefault(row["kind"], [0, 0])
            total[0] += row["moved"] or 0
            total[1] += row["failed"] or 0
        for kind, (m, f) in sorted(totals.items()):
            moved.add_metric([kind], m)
            failed.add_metric([kind], f)
        yield by_state
        yield moved
        yield failed


_registered = False


def register() -> None:
    """Add the database collector to the default registry (once)."""
    global _registered
    if not _registered:
        REGISTRY.register(OperationsCollector())
        _registered = True
