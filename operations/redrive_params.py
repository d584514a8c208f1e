"""What a redrive operation is asked to do (``Operation.parameters``), and its lease."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from operations import dlq


def lease_seconds() -> int:
    """How long a worker's claim lasts without a progress report; a killed worker's
    operation is resumed after this (EVENTOPS_REDRIVE_LEASE_SECONDS). It also bounds how
    long the engine retries the failed entries of one batch."""
    return int(getattr(settings, "EVENTOPS_REDRIVE_LEASE_SECONDS", 60))


# The most pipelines one operation may run (the form and the command refuse more).
MAX_CONCURRENCY = 32
# The most Celery workers one redrive may be split across (``--workers``).
MAX_WORKERS = 16


def default_concurrency() -> int:
    """Pipelines per redrive unless the operator asks otherwise (EVENTOPS_REDRIVE_CONCURRENCY)."""
    return int(getattr(settings, "EVENTOPS_REDRIVE_CONCURRENCY", 8))


@dataclass(frozen=True)
class RedriveParams:
    """What a redrive operation does; stored in ``Operation.parameters``.

    What it is asked to move: the messages in the DLQ when the pass began that match
    ``filters`` (all of them when there are none); with ``max_messages``, only the first
    that many of those the pass meets. Messages that do not match, and messages that
    arrived after the pass began, are not asked for."""

    filters: dlq.Filters = field(default_factory=dlq.Filters)
    max_messages: int | None = None
    rate: float | None = None
    # Where messages without DeadLetterQueueSourceArn go: one of the DLQ's sources.
    destination_arn: str = ""
    dlq_arn: str = ""
    # Receive visibility: bounded by the lease, so a resumed run finds them visible.
    visibility_timeout: int | None = None
    wait_seconds: int = 1
    # Receive -> send -> delete pipelines run at once (None: the setting's default). A FIFO
    # DLQ runs them across message groups, each group in order (redrive_pipelines).
    concurrency: int | None = None
    # Celery workers the operation is split across (operations/redrive_parts.py); a part's
    # own parameters say how many parts its parent has.
    workers: int = 1

    @property
    def pipelines(self) -> int:
        return max(1, min(MAX_CONCURRENCY, self.concurrency or default_concurrency()))

    def to_parameters(self) -> dict[str, Any]:
        return {
            "filters": self.filters.to_dict(),
            "max_messages": self.max_messages,
            "rate": self.rate,
            "destination_arn": self.destination_arn,
            "dlq_arn": self.dlq_arn,
            "visibility_timeout": self.visibility_timeout,
            "wait_seconds": self.wait_seconds,
            "concurrency": self.concurrency,
            "workers": self.workers,
        }

    @classmethod
    def from_parameters(cls, data: dict[str, Any]) -> RedriveParams:
        return cls(
            filters=dlq.Filters.from_dict(data.get("filters") or {}),
            max_messages=data.get("max_messages") or None,
            rate=data.get("rate") or None,
            destination_arn=str(data.get("destination_arn") or ""),
            dlq_arn=str(data.get("dlq_arn") or ""),
            visibility_timeout=data.get("visibility_timeout") or None,
            wait_seconds=int(data.get("wait_seconds", 1)),
            concurrency=data.get("concurrency") or None,
            workers=int(data.get("workers") or 1),
        )
