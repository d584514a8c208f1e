"""Failure groups: DLQ messages grouped by the signature of their error, kept in the database.

``record`` is called with what each peek or scan batch saw. A group counts distinct message
IDs; a resolved group that sees a message it has not seen before reopens as a regression.
``change_state`` is the operators' acknowledge, resolve, ignore and reopen, each audited.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from operations import masking
from operations.dlq import DlqMessage
from operations.triage.errors import ConsumerError, from_attributes
from operations.triage.models import (
    EXCERPT_CHARS,
    MAX_SAMPLE_IDS,
    FailureGroup,
    FailureGroupChange,
    FailureGroupMessage,
)
from operations.triage.signals import OPENED, REGRESSED, failure_group_changed
from operations.triage.signature import Signature, signature_of

State = FailureGroup.State
# What an operator may move a group to, by the action's name in the form.
TRANSITIONS = {
    "acknowledge": State.ACKNOWLEDGED,
    "resolve": State.RESOLVED,
    "ignore": State.IGNORED,
    "reopen": State.OPEN,
}


def excerpt(message: DlqMessage) -> str:
    """The stored excerpt of a body: masked first, then cut (a cut never splits a secret
    out of its key, so nothing is stored unmasked)."""
    return masking.mask_text(message.raw.body)[:EXCERPT_CHARS]


@dataclass
class Seen:
    """One message as a peek or a scan saw it, with its error and signature."""

    message: DlqMessage
    error: ConsumerError
    signature: Signature


def classify(messages: Iterable[DlqMessage], errors: Mapping[str, ConsumerError]) -> list[Seen]:
    """Each message with its error (the attributes' fallback when the lookup has none)."""
    seen = []
    for message in messages:
        error = errors.get(message.message_id) or from_attributes(message)
        seen.append(Seen(message, error, signature_of(error)))
    return seen


def record(
    environment: str,
    dlq_url: str,
    dlq_name: str,
    seen: list[Seen],
    *,
    at: datetime | None = None,
) -> dict[str, FailureGroup]:
    """Upsert the groups of what was seen; returns the group of each signature key.

    Counts are distinct message IDs. Sends ``failure_group_changed`` for each group opened
    and each resolved group that saw a new message (regressed)."""
    now = at or timezone.now()
    by_key: dict[str, list[Seen]] = {}
    for item in seen:
        by_key.setdefault(item.signature.key, []).append(item)
    if not by_key:
        return {}
    groups = {
        g.key: g
        for g in FailureGroup.objects.filter(
            environment=environment, dlq_url=dlq_url, key__in=list(by_key)
        )
    }
    opened = []
    for key, items in by_key.items():
        if key not in groups:
            group, created = _create(environment, dlq_url, dlq_name, items[0], now)
            groups[key] = group
            if created:
                opened.append(group)
    known = set(
        FailureGroupMessage.objects.filter(
            group__in=[groups[k] for k in by_key],
            message_id__in=[item.message.message_id for item in seen],
        ).values_list("group_id", "message_id")
    )
    changes = []
    for key, items in by_key.items():
        group = groups[key]
        fresh = {
            i.message.message_id: i for i in items if (group.pk, i.message.message_id) not in known
        }
        if fresh:
            changes.append(_add(group, list(fresh.values()), now))
    for group in opened:
        failure_group_changed.send(sender=FailureGroup, group=group, change=OPENED)
    for group, change in changes:
        if change:
            failure_group_changed.send(sender=FailureGroup, group=group, change=change)
    return groups


def _create(
    environment: str, dlq_url: str, dlq_name: str, first: Seen, now: datetime
) -> tuple[FailureGroup, bool]:
    signature = first.signature
    try:
        with transaction.atomic():
            group = FailureGroup.objects.create(
                environment=environment,
                dlq_url=dlq_url,
                dlq_name=dlq_name[:256],
                key=signature.key,
                consumer=signature.consumer[:256],
                exception_name=signature.exception_name[:256],
                # Stored masked, as the excerpt: an error may quote a value (an e-mail).
                title=masking.mask_text(signature.title)[:600],
                top_frame=signature.top_frame[:512],
                first_seen=now,
                last_seen=now,
                sample_excerpt=excerpt(first.message),
                sample_correlation_id=first.message.correlation_id[:256],
            )
            FailureGroupChange.objects.create(group=group, change=OPENED, to_state=State.OPEN)
    except IntegrityError:  # another process opened it first
        group = FailureGroup.objects.get(
            environment=environment, dlq_url=dlq_url, key=signature.key
        )
        return group, False
    return group, True


def _add(group: FailureGroup, fresh: list[Seen], now: datetime) -> tuple[FailureGroup, str]:
    """Add messages not seen before; reopen a resolved group (a regression)."""
    FailureGroupMessage.objects.bulk_create(
        [
            FailureGroupMessage(
                group=group,
                message_id=i.message.message_id[:128],
                correlation_id=i.message.correlation_id[:256],
                first_seen=now,
            )
            for i in fresh
        ],
        ignore_conflicts=True,
    )
    # Recounted, not incremented: two processes adding the same message count it once.
    group.count = group.members.count()
    group.last_seen = max(group.last_seen, now)
    samples = list(group.sample_message_ids or [])
    for item in fresh:
        if len(samples) >= MAX_SAMPLE_IDS:
            break
        if item.message.message_id not in samples:
            samples.append(item.message.message_id)
    group.sample_message_ids = samples
    fields = ["count", "last_seen", "sample_message_ids"]
    change = ""
    if group.state == State.RESOLVED:
        change = REGRESSED
        FailureGroupChange.objects.create(
            group=group,
            change=REGRESSED,
            from_state=group.state,
            to_state=State.OPEN,
            at=now,
            note=f"{len(fresh)} new message{'s' if len(fresh) != 1 else ''} after it was resolved",
        )
        group.state = State.OPEN
        group.regressed_at = now
        fields += ["state", "regressed_at"]
    group.save(update_fields=fields)
    return group, change


def change_state(group: FailureGroup, action: str, *, by: str, note: str = "") -> bool:
    """Move ``group`` as an operator asked (``TRANSITIONS``), audited. False when it is
    already in that state (a repeated request changes nothing)."""
    target = TRANSITIONS[action]
    now = timezone.now()
    with transaction.atomic():
        locked = FailureGroup.objects.select_for_update().get(pk=group.pk)
        if locked.state == target:
            return False
        FailureGroupChange.objects.create(
            group=locked,
            change=action,
            from_state=locked.state,
            to_state=target,
            by=by[:150],
            at=now,
            note=note,
        )
        locked.state = target
        locked.state_by = by[:150]
        locked.state_at = now
        locked.note = note
        fields = ["state", "state_by", "state_at", "note"]
        if target != State.OPEN:
            locked.regressed_at = None
            fields.append("regressed_at")
        locked.save(update_fields=fields)
    group.refresh_from_db()
    return True


def worst_first(environment: str) -> QuerySet[FailureGroup]:
    """The environment's groups: open (regressions first), then acknowledged, then the rest;
    within each, the largest and the most recently seen first."""
    rank = Case(
        When(Q(state=State.OPEN, regressed_at__isnull=False), then=Value(0)),
        When(state=State.OPEN, then=Value(1)),
        When(state=State.ACKNOWLEDGED, then=Value(2)),
        default=Value(3),
        output_field=IntegerField(),
    )
    return (
        FailureGroup.objects.filter(environment=environment)
        .annotate(rank=rank)
        .order_by("rank", "-count", "-last_seen", "pk")
    )


def member_ids(group: FailureGroup, limit: int) -> list[str]:
    """The group's message IDs, most recently seen first, at most ``limit``."""
    rows = group.members.order_by("-first_seen", "-pk").values_list("message_id", flat=True)
    return list(rows[:limit])


def new_per_hour(
    group_ids: list[int], hours: int, *, now: datetime | None = None
) -> dict[int, list[int]]:
    """New distinct messages per hour over the last ``hours`` hours, per group (oldest first)."""
    end = now or timezone.now()
    start = end - timedelta(hours=hours)
    counts = {gid: [0] * hours for gid in group_ids}
    rows = FailureGroupMessage.objects.filter(
        group_id__in=group_ids, first_seen__gt=start
    ).values_list("group_id", "first_seen")
    for group_id, first_seen in rows:
        index = min(hours - 1, int((first_seen - start).total_seconds() // 3600))
        counts[group_id][index] += 1
    return counts
