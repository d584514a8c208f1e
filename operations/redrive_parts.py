"""A redrive split across several Celery workers (``--workers N``, issue 18 item 5).

The operation the operator starts (the parent) holds the one-active-operation lock on
the DLQ and is what they follow, cancel and re-rate; it runs no pass itself. It has N
parts: Operation rows of their own (``parent``, ``part``), each with its lease, ledger
and ``redrive`` task, so a part whose worker died is claimed and resumed like any
redrive (the task's retry, the sweeper). Each part takes an exact share of
``max_messages`` (the shares sum to it) and of the rate (``rate / N``; ``set_rate`` on
the parent rewrites the parts').

What the parts must agree on:

- Never sent twice: a message part A sent, whose worker then died before deleting it,
  becomes visible again and part B may receive it. Before sending a message it has no
  row for, a part looks up its siblings' rows for the batch's IDs (one query per
  receive). A sibling's ``sent`` or ``moved`` row means: delete it, do not send it, do
  not count it (the sibling's row counts it as moved). Any other sibling outcome (it
  did not match, it failed, it arrived later) is that sibling's to count: the part
  holds the message until its pass ends, without recording it.
- The end of the pass: a part that finds nothing new is not the one to say what the
  DLQ still holds, since its siblings hold messages in flight. Under the parent row's
  lock a part asks whether it is the last one still in its pass (``last_in_pass``):
  if not, it ends (releasing what it holds); the last one runs the full end-of-pass
  check, waiting for what the others release.
- The parent ends (under its row lock) when its last part does, with the parts'
  counters summed and their outcomes merged (``finish_parent``); while they run, the
  pages and the API show the parts' sums (``live_totals``: one query).

A FIFO DLQ is refused: group order cannot hold across workers. So is a redrive of
named messages (at most 200: one worker is enough, and "not found" needs one pass).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from operations.models import Operation, OperationMessage
from operations.redrive_params import MAX_WORKERS, RedriveParams

if TYPE_CHECKING:
    from operations.redrive import StartRequest

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_WORKERS",
    "WorkersError",
    "check_workers",
    "create",
    "finish_parent",
    "grant_unused",
    "has_parts",
    "last_in_pass",
    "live_totals",
    "part_rows",
    "sibling_outcomes",
]

SENT_ALREADY = frozenset({OperationMessage.Outcome.SENT, OperationMessage.Outcome.MOVED})
# The reason key of messages a pass could not examine (redrive_pass._at_the_end).
UNEXAMINED_PREFIX = "not examined:"
COUNTERS = ("moved", "failed", "skipped", "held_back")


class WorkersError(ValueError):
    """A ``workers`` value this redrive cannot run with (says why)."""


def check_workers(workers: int | None, *, dlq_url: str, params: RedriveParams | None = None) -> int:
    """The number of workers, or ``WorkersError`` with a message for the operator."""
    n = workers or 1
    if not 1 <= n <= MAX_WORKERS:
        raise WorkersError(f"workers must be between 1 and {MAX_WORKERS}")
    if n > 1 and dlq_url.endswith(".fifo"):
        raise WorkersError(
            "a FIFO DLQ is redriven by one worker: its message group order cannot be kept "
            "across several"
        )
    if n > 1 and params is not None and params.filters.message_ids:
        raise WorkersError("a redrive of named messages runs on one worker")
    return n


def shares(total: int, n: int) -> list[int]:
    """``total`` split in ``n`` shares that differ by at most one and sum to it."""
    base, extra = divmod(total, n)
    return [base + (1 if i < extra else 0) for i in range(n)]


def part_parameters(params: RedriveParams, n: int) -> list[dict[str, Any]]:
    """Each part's parameters: its share of ``max_messages`` and of the rate."""
    limits: list[int | None] = (
        list(shares(params.max_messages, n)) if params.max_messages else [None] * n
    )
    rate = params.rate / n if params.rate else None
    return [
        dataclasses.replace(params, max_messages=limit, rate=rate).to_parameters()
        for limit in limits
    ]


def create(request: StartRequest, kind: str, target_label: str) -> Operation:
    """Write the parent (running: it holds the DLQ's lock, and its parts run it) and its
    parts (pending, each for its own task). ``IntegrityError`` if the DLQ is busy."""
    params = request.params
    n = params.workers
    if params.max_messages:
        n = min(n, int(params.max_messages))  # a share of 0 would mean "no limit"
    params = dataclasses.replace(params, workers=n)
    now = timezone.now()
    common = {
        "kind": kind,
        "target": request.dlq_url,
        "target_label": target_label,
        "reason": request.reason,
        "requested_by": request.user,
        "requested_by_name": request.user_name,
    }
    with transaction.atomic():
        parent = Operation.objects.create(
            parameters=params.to_parameters(),
            state=Operation.State.RUNNING,
            started_at=now,
            progress={"workers": n, "ended_parts": []},
            **common,
        )
        for number, parameters in enumerate(part_parameters(params, n), start=1):
            Operation.objects.create(parent=parent, part=number, parameters=parameters, **common)
    return parent


def has_parts(op: Operation) -> bool:
    """Whether ``op`` is a parent whose parts run it."""
    return (
        op.kind == Operation.Kind.REDRIVE
        and op.parent_id is None
        and int((op.parameters or {}).get("workers") or 1) > 1
    )


def parts_of(parent_id: int) -> list[Operation]:
    return list(Operation.objects.filter(parent_id=parent_id).order_by("part"))


def sibling_ids(op: Operation) -> list[int]:
    return list(
        Operation.objects.filter(parent_id=op.parent_id)
        .exclude(pk=op.pk)
        .values_list("pk", flat=True)
    )


def sibling_outcomes(siblings: list[int], message_ids: Iterable[str]) -> dict[str, str]:
    """What the sibling parts recorded for these messages (one query): ID -> outcome."""
    ids = list(message_ids)
    if not ids or not siblings:
        return {}
    rows = OperationMessage.objects.filter(operation_id__in=siblings, message_id__in=ids)
    found: dict[str, str] = {}
    for message_id, outcome in rows.values_list("message_id", "outcome"):
        # Sent by one of them wins over another's "did not match" (it is to delete).
        if found.get(message_id) not in SENT_ALREADY:
            found[message_id] = outcome
    return found


def _parent_id(op: Operation) -> int:
    assert op.parent_id is not None, "only a part has siblings"
    return int(op.parent_id)


def last_in_pass(op: Operation) -> bool:
    """Whether ``op`` is the last part still in its pass; if not, it is marked as having
    ended its pass (under the parent row's lock, so two parts cannot both see the other
    still going and both stop without the full end-of-pass check)."""
    with transaction.atomic():
        parent = Operation.objects.select_for_update().get(pk=_parent_id(op))
        progress = dict(parent.progress or {})
        ended = set(progress.get("ended_parts") or [])
        others = (
            Operation.objects.filter(parent_id=parent.pk, state__in=Operation.ACTIVE_STATES)
            .exclude(pk=op.pk)
            .exclude(pk__in=ended)
            .exists()
        )
        if not others:
            return True
        ended.add(op.pk)
        progress["ended_parts"] = sorted(ended)
        Operation.objects.filter(pk=parent.pk).update(progress=progress)
    return False


def pass_started(op: Operation) -> Any:
    """When the parent began: every part's "arrived after the pass began" is the same."""
    return Operation.objects.filter(pk=_parent_id(op)).values_list("started_at", flat=True).first()


def share_total(op: Operation, depth: int) -> int:
    """Record the parent's total (the DLQ's depth when its first part began, capped by
    ``max_messages``) once; return this part's share of it."""
    parent = Operation.objects.get(pk=_parent_id(op))
    params = RedriveParams.from_parameters(parent.parameters)
    total = min(depth, params.max_messages) if params.max_messages else depth
    Operation.objects.filter(pk=parent.pk, total__isnull=True).update(total=total)
    parent.refresh_from_db(fields=["total"])
    n = max(1, params.workers)
    return shares(parent.total or 0, n)[max(0, (op.part or 1) - 1) % n]


def set_parts_rate(parent: Operation, rate: float | None) -> None:
    """The parent's rate, split evenly across its active parts (under the parent row's
    lock: ``set_rate``, or a part that just ended); each part's run reads its own within
    a second. Only active parts send, so together they never exceed it."""
    active = list(
        Operation.objects.select_for_update().filter(
            parent_id=parent.pk, state__in=Operation.ACTIVE_STATES
        )
    )
    for part in active:
        parameters = dict(part.parameters or {})
        share = rate / len(active) if rate else None
        if parameters.get("rate") != share:
            parameters["rate"] = share
            Operation.objects.filter(pk=part.pk).update(parameters=parameters)


def taken(part: Operation) -> int:
    """What a part took on of its ``max_messages`` (the outcomes that count towards it)."""
    return part.moved + part.failed + part.held_back


def grant_unused(parent: Operation, parts: list[Operation]) -> None:
    """What the parts that ended did not use of their ``max_messages`` goes to the parts
    still in their pass, evenly (under the parent row's lock, from ``finish_parent``).
    Without it, a part that met fewer matching messages than its share (filters rarely
    match evenly across receives) would leave the operation short of what was asked while
    its siblings stop at their shares with matching messages still in the DLQ. What the
    ended parts took plus the limits of the running ones stays ``max_messages``: never
    more in all. Each running part reads its limit within a second and before stopping at
    it (``Redrive._read_parameters``); one that stopped at its old limit meanwhile hands
    its unused share on in turn when it ends."""
    if (parent.parameters or {}).get("max_messages") is None:
        return
    progress = dict(parent.progress or {})
    granted = set(progress.get("granted_from") or [])
    ended_pass = set(progress.get("ended_parts") or [])
    unused, handed = 0, []
    for part in parts:
        if part.is_active or part.pk in granted:
            continue
        limit = (part.parameters or {}).get("max_messages")
        unused += max(0, int(limit) - taken(part)) if limit is not None else 0
        handed.append(part.pk)
    if not handed:
        return
    takers = [p for p in parts if p.is_active and p.pk not in ended_pass]
    if unused and takers:
        for part, extra in zip(takers, shares(unused, len(takers)), strict=True):
            parameters = dict(part.parameters or {})
            if extra and parameters.get("max_messages") is not None:
                parameters["max_messages"] = int(parameters["max_messages"]) + extra
                Operation.objects.filter(pk=part.pk).update(parameters=parameters)
                part.parameters = parameters
    progress["granted_from"] = sorted(granted | set(handed))
    Operation.objects.filter(pk=parent.pk).update(progress=progress)
    parent.progress = progress


def request_cancel(parent: Operation, *, by: str, reason: str) -> None:
    """Ask every active part to stop (a pending part ends at once), then end the parent
    if nothing is left running."""
    for part in Operation.objects.filter(parent_id=parent.pk, state__in=Operation.ACTIVE_STATES):
        part.request_cancel(by=by, reason=reason)
    finish_parent(parent.pk)


# --- the parent's figures ------------------------------------------------------------


def live_totals(op: Operation) -> Operation:
    """While a parent runs: its counters and live figures as the sum of its parts' (in
    memory, one query); the stored ones are written when it ends."""
    if not has_parts(op) or not op.is_active:
        return op
    parts = parts_of(op.pk)
    for name in COUNTERS:
        setattr(op, name, sum(getattr(p, name) for p in parts))
    progress = dict(op.progress or {})
    progress["live_rate"] = round(sum(float(p.progress.get("live_rate") or 0) for p in parts), 1)
    progress["concurrency"] = sum(
        int(p.progress.get("concurrency") or 0) for p in parts if p.is_active
    )
    progress["rate_limit"] = (op.parameters or {}).get("rate")
    op.progress = progress
    op._parts_cache = parts  # type: ignore[attr-defined]
    return op


def part_rows(op: Operation) -> list[Operation]:
    """The parts of a parent, for its page (cached by ``live_totals``)."""
    if not has_parts(op):
        return []
    cached = getattr(op, "_parts_cache", None)
    return list(cached) if cached is not None else parts_of(op.pk)


def finish_parent(parent_id: int | None) -> bool:
    """End the parent once none of its parts is active: counters summed, outcomes merged.
    Under the parent row's lock, so two parts ending together finish it once."""
    if parent_id is None:
        return False
    with transaction.atomic():
        parent = (
            Operation.objects.select_for_update()
            .filter(pk=parent_id, state__in=Operation.ACTIVE_STATES)
            .first()
        )
        if parent is None:
            return False
        parts = parts_of(parent.pk)
        if not parts:
            return False
        if any(p.is_active for p in parts):
            # The parts still running share the rate the ended one leaves, and what it
            # did not use of ``max_messages``.
            rate = (parent.parameters or {}).get("rate")
            if rate:
                set_parts_rate(parent, float(rate))
            grant_unused(parent, parts)
            return False
        state, fields = merged(parent, parts)
        errors = sorted({p.error for p in parts if p.error})
        return parent.finish(None, state, error="\n".join(errors), **fields)


def merged(parent: Operation, parts: list[Operation]) -> tuple[str, dict[str, Any]]:
    """The parent's final state and fields from its parts', judged as one pass: what was
    asked for and did not move is the parts' failures and held-back messages, plus what
    the last end-of-pass check left unexamined, plus any part stopped by an error."""
    sums = {name: sum(getattr(p, name) for p in parts) for name in COUNTERS}
    outcome = merged_outcome(parts, sums)
    short = sums["failed"] + sums["held_back"] + outcome["not_found"] + outcome["unexamined"]
    stopped = any(p.error for p in parts) or any(
        p.state == Operation.State.CANCELLED for p in parts
    )
    if parent.cancel_requested:
        state = Operation.State.CANCELLED
    elif not short and not stopped:
        state = Operation.State.SUCCEEDED
    else:
        state = Operation.State.PARTIAL if sums["moved"] else Operation.State.FAILED
    progress = dict(parent.progress or {})
    progress.update(
        live_rate=0.0,
        concurrency=sum(int((p.progress or {}).get("concurrency") or 0) for p in parts),
        rate_limit=(parent.parameters or {}).get("rate"),
        receives=sum(int((p.progress or {}).get("receives") or 0) for p in parts),
        batches=sum(int((p.progress or {}).get("batches") or 0) for p in parts),
    )
    total = parent.total
    if total is None:
        total = sum(p.total or 0 for p in parts)
    return state, {**sums, "outcome": outcome, "progress": progress, "total": total}


def merged_outcome(parts: list[Operation], sums: dict[str, int]) -> dict[str, Any]:
    """Reasons summed. What was left unexamined is the word of the part that last ran
    the full end-of-pass check (one that died after another's check and resumed ran it
    again, later and truer); the others' "not examined" reasons are dropped."""
    outcomes = [(p, p.outcome or {}) for p in parts]
    checked = [p for p, o in outcomes if o.get("end_checked") or o.get("unexamined")]
    last = max(checked, key=lambda p: p.finished_at or timezone.now()) if checked else None
    reasons: Counter[str] = Counter()
    unexamined = 0
    for part, outcome in outcomes:
        for why, count in (outcome.get("reasons") or {}).items():
            if why.startswith(UNEXAMINED_PREFIX) and part is not last:
                continue
            reasons[why] += int(count)
        if part is last:
            unexamined = int(outcome.get("unexamined") or 0)

    def total(key: str) -> int:
        return sum(int(o.get(key) or 0) for _, o in outcomes)

    return {
        **sums,
        "returned": total("returned"),
        "not_found": total("not_found"),
        "unexamined": unexamined,
        "delete_failed": total("delete_failed"),
        "reasons": dict(reasons.most_common()),
        "held_groups": [],
        "held_group_count": 0,
        "destinations": sorted({d for _, o in outcomes for d in o.get("destinations") or []}),
        "workers": len(parts),
        "parts": [{"part": p.part, "id": p.pk, "state": p.state, "moved": p.moved} for p in parts],
    }


def stuck_parents() -> list[int]:
    """Running parents none of whose parts is active (the process that ended the last
    part died before ending the parent): for the sweeper."""
    rows = Operation.objects.filter(
        state=Operation.State.RUNNING, parent__isnull=True, parts__isnull=False
    ).exclude(parts__state__in=Operation.ACTIVE_STATES)
    return list(rows.values_list("pk", flat=True).distinct())
