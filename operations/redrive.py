"""Client-side DLQ redrive: what to move, native or not, and starting the operation.

The engine is split along its seams: ``redrive_params`` (what an operation asks for),
``redrive_pass`` (one run of the pass), ``redrive_entries`` (entries and batches),
``redrive_groups`` (FIFO group order), ``redrive_mover`` (send and delete with per-entry
retries), ``redrive_ledger`` (per-message outcomes and the counts from them) and
``redrive_ids`` (the message IDs a pass keeps, packed: 1,000,000 of them in tens of MB).
Callers (the views, ``manage.py redrive``, the Celery task) use this module.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from operations import environments, redrive_parts
from operations.aws import sqs
from operations.models import Operation
from operations.redrive_params import MAX_CONCURRENCY, MAX_WORKERS, RedriveParams, lease_seconds
from operations.redrive_parts import WorkersError, check_workers
from operations.redrive_pass import Redrive

__all__ = [
    "MAX_CONCURRENCY",
    "MAX_WORKERS",
    "Redrive",
    "RedriveParams",
    "StartRequest",
    "WorkersError",
    "check_workers",
    "active_operation",
    "create",
    "lease_seconds",
    "native_redrive_enabled",
    "progress_line",
    "run_inline",
    "start",
    "use_native",
]


def native_redrive_enabled() -> bool:
    """Whole-queue redrives use SQS StartMessageMoveTask (EVENTOPS_NATIVE_REDRIVE).

    The setting alone decides: an ``AWS_ENDPOINT_URL`` may be a VPC endpoint of real AWS.
    Leave it off on emulators that lack the move task (moto)."""
    return bool(getattr(settings, "EVENTOPS_NATIVE_REDRIVE", False))


def use_native(params: RedriveParams) -> bool:
    """Whether this redrive goes to SQS's own move task: only a whole-queue move with no
    count limit, and a rate limit the API can express (whole messages per second)."""
    return (
        native_redrive_enabled()
        and params.filters.is_empty
        and params.max_messages is None
        and (params.rate is None or params.rate >= 1)
    )


@dataclass
class StartRequest:
    """What an operator (UI or command line) asks for."""

    dlq_url: str
    params: RedriveParams
    reason: str
    user: Any = None
    user_name: str = ""
    native: bool = False


def create(request: StartRequest) -> Operation:
    """Write the Operation row (``IntegrityError`` if another is active on this DLQ)."""
    kind = Operation.Kind.NATIVE_REDRIVE if request.native else Operation.Kind.REDRIVE
    if request.params.workers > 1 and not request.native:
        # Split across workers (redrive_parts); SQS's own move task needs no workers.
        redrive_parts.check_workers(
            request.params.workers, dlq_url=request.dlq_url, params=request.params
        )
        label = sqs.queue_name_from_url(request.dlq_url)
        return redrive_parts.create(request, kind, label)
    params = request.params
    if request.native and params.workers > 1:
        params = dataclasses.replace(params, workers=1)  # SQS's move task needs no workers
    with transaction.atomic():
        return Operation.objects.create(
            kind=kind,
            target=request.dlq_url,
            target_label=sqs.queue_name_from_url(request.dlq_url),
            parameters=params.to_parameters(),
            reason=request.reason,
            requested_by=request.user,
            requested_by_name=request.user_name,
        )


def start(request: StartRequest) -> Operation:
    """Write the Operation row and enqueue its task once the row is committed.

    Raises ``IntegrityError`` when another operation is active on this DLQ."""
    from operations.enqueue import QueueUnavailable, enqueue

    op = create(request)
    parts = list(op.parts.order_by("part")) if redrive_parts.has_parts(op) else [op]
    for part in parts:
        try:
            enqueue(part)  # QueueUnavailable (the row failed) when the broker cannot take it
        except QueueUnavailable as exc:
            if part is op:
                raise
            # No part may wait for a broker that refused one: the others fail too, and
            # the parent ends with them (or with those a worker already took).
            for other in parts:
                other.refresh_from_db()
                if other.state == Operation.State.PENDING:
                    other.finish(None, Operation.State.FAILED, error=str(exc))
            raise QueueUnavailable(op.pk, exc.__cause__ or exc) from exc
    return op


def active_operation(target: str) -> Operation | None:
    """The pending or running operation on ``target``, if any (for "already running" links)."""
    return Operation.objects.filter(
        environment=environments.current_name(),
        target=target,
        state__in=Operation.ACTIVE_STATES,
        parent__isnull=True,  # a redrive split across workers: its parent, not a part
    ).first()


def run_inline(
    op: Operation,
    *,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[Operation], None] | None = None,
) -> Operation:
    """Claim and run ``op`` in this process (``manage.py redrive --wait``, tests);
    ``progress`` is called with the row every few seconds."""
    if redrive_parts.has_parts(op):
        raise ValueError("a redrive split across workers runs on Celery workers, not inline")
    token = op.claim(lease_seconds())
    if token is None:
        return op
    Redrive(op, token, sleep=sleep, on_progress=progress).run()
    op.refresh_from_db()
    return op


def progress_line(op: Operation) -> str:
    """One line of a running redrive's progress: counts, live rate, limit, pipelines."""
    redrive_parts.live_totals(op)
    progress = op.progress or {}
    total = f" of {op.total}" if op.total is not None else ""
    limit = progress.get("rate_limit")
    limit_text = f"limit {limit:g}/s" if limit else "no rate limit"
    n = int((op.parameters or {}).get("workers") or 1)
    workers = f" on {n} workers" if redrive_parts.has_parts(op) else ""
    return (
        f"#{op.pk}: moved {op.moved}{total}, failed {op.failed}, skipped {op.skipped}; "
        f"{progress.get('live_rate', 0):g} msg/s ({limit_text}), "
        f"{progress.get('concurrency', 1)} pipelines{workers}"
    )
