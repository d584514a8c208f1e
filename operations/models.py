"""The audit trail: every operator action is an ``Operation`` row.

ARCHITECTURE.md decision 4. The row is written first and its task enqueued on
commit; the task claims the row with a compare-and-set update, so a redelivered
task does nothing twice. At most one active (pending or running) operation per
target is enforced by a partial unique index. Rows are never edited by hand nor
deleted: they are the audit trail.
"""

from __future__ import annotations

import functools
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from operations import audit_channel, environments
from operations.operation_events import ended


class Operation(models.Model):
    class Kind(models.TextChoices):
        REDRIVE = "redrive", "DLQ redrive"
        NATIVE_REDRIVE = "native_redrive", "DLQ redrive (SQS move task)"
        DELETE_MESSAGES = "delete_messages", "Delete DLQ messages"
        EDIT_RESEND = "edit_resend", "Edit and resend a message"
        REPLAY = "replay", "Archive replay"
        REPUBLISH = "republish", "Re-publish events"
        SCAN = "scan", "DLQ scan"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        # Everything it was asked to do was done.
        SUCCEEDED = "succeeded", "Succeeded"
        # Some of it was done, some not (the outcome says what and why).
        PARTIAL = "partial", "Partly done"
        # Nothing was done, because of errors.
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE_STATES = (State.PENDING, State.RUNNING)
    FINAL_STATES = (State.SUCCEEDED, State.PARTIAL, State.FAILED, State.CANCELLED)

    kind = models.CharField(max_length=32, choices=Kind.choices)
    # Where it acts (operations/environments.py), and as whom AWS saw it: the role assumed
    # and the session name CloudTrail records. Filled from the acting context on creation.
    environment = models.CharField(max_length=32, default=environments.current_name, db_index=True)
    role_arn = models.CharField(max_length=2048, blank=True, default=environments.current_role_arn)
    session_name = models.CharField(
        max_length=64, blank=True, default=environments.current_session_name
    )
    # What it acts on: a queue URL or ARN, an archive ARN, a bus ARN.
    target = models.CharField(max_length=512)
    # A short human name for the target ("billing-dlq").
    target_label = models.CharField(max_length=256, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    reason = models.TextField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Who asked, as text: survives user renames; "cli:<os user>" for the command line.
    requested_by_name = models.CharField(max_length=150)
    # Asked through the REST API ("api") with the named token, or through the pages ("").
    via = models.CharField(max_length=16, blank=True, default=audit_channel.current_via)
    via_token = models.CharField(
        max_length=100, blank=True, default=audit_channel.current_token_name
    )

    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    # A cancel is a request: the row stays active (and its target locked) until the task,
    # or AWS for a replay or move task, confirms that it stopped.
    cancel_requested = models.BooleanField(default=False)
    cancel_requested_by = models.CharField(max_length=150, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.TextField(blank=True)
    # Counters updated after every batch.
    total = models.PositiveIntegerField(null=True, blank=True)
    moved = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    # Messages that did not match the filters.
    skipped = models.PositiveIntegerField(default=0)
    # Messages that matched but were held back (FIFO group order behind a message that did
    # not move); apart from ``skipped`` and ``failed``.
    held_back = models.PositiveIntegerField(default=0)
    # Kind-specific progress and outcome (replay name and state, move task handle, samples...).
    progress = models.JSONField(default=dict, blank=True)
    outcome = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Lease held by the worker running it; a task whose lease expired may be resumed.
    lease_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # A redrive split across several workers (``--workers``): each part is an operation
    # of its own (lease, ledger, task) under its parent, which the operator sees and
    # cancels; the parent is finished from its parts (operations/redrive_parts.py).
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="parts"
    )
    part = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # One per action (operations/access.py); the groups viewer, operator and admin
        # bundle them (migration 0004).
        permissions = [
            ("view_message_bodies", "Can see DLQ message bodies and event details (masked)"),
            ("view_unmasked", "Can see message bodies unmasked"),
            ("export_messages", "Can export DLQ messages"),
            ("redrive", "Can redrive DLQs"),
            ("replay", "Can replay archived events"),
            ("republish", "Can re-publish events"),
            ("edit_resend", "Can edit and resend a DLQ message"),
            ("delete_messages", "Can delete DLQ messages"),
            ("cancel_operation", "Can cancel operations"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "target"],
                # Parts share their parent's target; the parent holds the lock.
                condition=Q(state__in=["pending", "running"], parent__isnull=True),
                name="one_active_operation_per_target",
                violation_error_message="Another operation is already active on this target.",
            )
        ]
        indexes = [models.Index(fields=["kind", "state"]), models.Index(fields=["target"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} on {self.target_label or self.target}"

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE_STATES

    @property
    def is_finished(self) -> bool:
        return self.state in self.FINAL_STATES

    @property
    def processed(self) -> int:
        return self.moved + self.failed + self.skipped + self.held_back

    # --- state changes (compare-and-set, so concurrent workers cannot both win) -----

    def claim(self, lease_seconds: int = 120) -> uuid.UUID | None:
        """Take the row for this worker. Returns the lease token, or None if another
        worker holds it or it has finished. A running row whose lease expired (its
        worker died) can be claimed again, so the task resumes."""
        now = timezone.now()
        token = uuid.uuid4()
        claimable = Q(state=self.State.PENDING) | Q(
            state=self.State.RUNNING, lease_expires_at__lt=now
        )
        updated = Operation.objects.filter(claimable, pk=self.pk).update(
            state=self.State.RUNNING,
            started_at=Coalesce(F("started_at"), models.Value(now)),
            lease_token=token,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            attempts=F("attempts") + 1,
            updated_at=now,
        )
        if not updated:
            return None
        self.refresh_from_db()
        return token

    def report(self, token: uuid.UUID, lease_seconds: int = 120, **fields: Any) -> bool:
        """Save progress (counters, progress JSON) and extend the lease.

        Returns False if this worker no longer holds the lease. Afterwards
        ``self.cancel_requested`` tells whether the operator asked to stop.
        This runs after every batch, so the usual case is one UPDATE: it only
        matches while no cancel was requested, and a miss is looked into.
        """
        now = timezone.now()
        lease_expires_at = now + timedelta(seconds=lease_seconds)
        values = {"lease_expires_at": lease_expires_at, "updated_at": now, **fields}
        expressions = [
            name for name, value in fields.items() if hasattr(value, "resolve_expression")
        ]

        def mine() -> models.QuerySet[Operation]:
            return Operation.objects.filter(pk=self.pk, lease_token=token, state=self.State.RUNNING)

        if expressions:
            fast = mine().filter(cancel_requested=False).update(**values)
        else:
            fast = self._update_if_not_cancelled(token, values)
        if fast:
            updated = True
            refresh = expressions
        else:  # cancel requested, or the lease was lost: save progress if still ours, then look
            updated = bool(mine().update(**values))
            refresh = ["cancel_requested", "state", *expressions]
        for name, value in values.items():
            if name not in expressions:
                setattr(self, name, value)
        if refresh:
            self.refresh_from_db(fields=refresh)
        return updated

    def _update_if_not_cancelled(self, token: uuid.UUID, values: dict[str, Any]) -> int:
        """``mine.filter(cancel_requested=False).update(**values)`` as one prepared UPDATE.

        A redrive reports after every batch; building that UPDATE through the ORM cost about
        as much as one of the batch's AWS calls (bench/redrive.py). Each value is prepared by
        its field, so this is the same statement on SQLite and PostgreSQL."""
        # The wrapper itself, not the ``django.db.connection`` proxy: each attribute read
        # through the proxy is a thread-local lookup, and preparing the values makes dozens.
        conn = connections[self._state.db or DEFAULT_DB_ALIAS]
        sql, fields = _progress_update(conn.vendor, tuple(values))
        params = [f.get_db_prep_save(v, conn) for f, v in zip(fields, values.values(), strict=True)]
        token_value = _field(Operation, "lease_token").get_db_prep_value(token, conn)
        params += [self.pk, token_value, self.State.RUNNING, False]
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return int(cursor.rowcount)

    def finish(
        self, token: uuid.UUID | None, state: str, *, error: str = "", **fields: Any
    ) -> bool:
        """Move to a final state. With a token, only the lease holder may finish it."""
        if state not in self.FINAL_STATES:
            raise ValueError(f"{state} is not a final state")
        now = timezone.now()
        rows = Operation.objects.filter(pk=self.pk, state__in=self.ACTIVE_STATES)
        if token is not None:
            rows = rows.filter(lease_token=token)
        updated = rows.update(
            state=state,
            error=error[:10_000],
            finished_at=now,
            updated_at=now,
            lease_token=None,
            lease_expires_at=None,
            **fields,
        )
        self.refresh_from_db()
        if updated:
            ended(self.pk)
            self.part_ended()
        return bool(updated)

    def part_ended(self) -> None:
        """A part of a redrive split across workers ended: its parent ends with its last."""
        if self.parent_id is not None:
            from operations.redrive_parts import finish_parent

            finish_parent(self.parent_id)

    @property
    def is_abandoned(self) -> bool:
        """Running, but its worker stopped reporting: the lease expired."""
        return (
            self.state == self.State.RUNNING
            and self.lease_expires_at is not None
            and self.lease_expires_at < timezone.now()
        )

    @property
    def cancel_note(self) -> str:
        """ "cancel requested by X at T: why", while a requested cancel is not confirmed."""
        if not self.cancel_requested:
            return ""
        who = self.cancel_requested_by or "someone"
        when = (
            f" at {self.cancel_requested_at:%Y-%m-%d %H:%M:%S} UTC"
            if self.cancel_requested_at
            else ""
        )
        why = f": {self.cancel_reason}" if self.cancel_reason else ""
        return f"Cancel requested by {who}{when}{why}"

    def request_cancel(self, *, by: str = "", reason: str = "", end_abandoned: bool = True) -> bool:
        """Ask the running task to stop between batches, recording who asked, when and why
        (the first request's; a repeat changes nothing). False if it had already finished.

        A pending row is cancelled at once: no worker has claimed it, so nothing ran. So is
        a running one whose worker stopped reporting (its lease expired), unless
        ``end_abandoned`` is False: a replay or a move task may still run in AWS, and its
        caller ends the row only once AWS's cancel call succeeded (``end_if_abandoned``)."""
        now = timezone.now()
        who = {
            "cancel_requested": True,
            "cancel_requested_by": by[:150],
            "cancel_requested_at": now,
            "cancel_reason": reason,
        }
        rows = Operation.objects.filter(pk=self.pk)
        if rows.filter(state=self.State.PENDING).update(
            state=self.State.CANCELLED, finished_at=now, updated_at=now, **who
        ):
            self.refresh_from_db()
            ended(self.pk)
            self.part_ended()
            return True
        if end_abandoned and self.end_if_abandoned(
            self.State.CANCELLED,
            error="Cancelled after its worker stopped reporting progress.",
            **who,
        ):
            return True
        running = rows.filter(state=self.State.RUNNING)
        updated = running.filter(cancel_requested=False).update(updated_at=now, **who)
        self.refresh_from_db()
        return bool(updated) or self.state == self.State.RUNNING

    def end_if_abandoned(self, state: str, *, error: str = "", **fields: Any) -> bool:
        """Finish the row if it runs but its worker stopped reporting (lease expired);
        False if a worker holds it again (it then acts on the cancel flag) or it ended."""
        now = timezone.now()
        updated = Operation.objects.filter(
            pk=self.pk, state=self.State.RUNNING, lease_expires_at__lt=now
        ).update(
            state=state,
            error=error[:10_000],
            finished_at=now,
            updated_at=now,
            lease_token=None,
            lease_expires_at=None,
            **fields,
        )
        self.refresh_from_db()
        if updated:
            ended(self.pk)
            self.part_ended()
        return bool(updated)


def _field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field


def _column(model: type[models.Model], name: str) -> str:
    return connection.ops.quote_name(str(_field(model, name).column))


@functools.lru_cache(maxsize=16)
def _progress_update(
    vendor: str, names: tuple[str, ...]
) -> tuple[str, list[models.Field[Any, Any]]]:
    """The UPDATE of ``Operation.report``'s fast path for these columns, and their fields."""
    assignments = ", ".join(f"{_column(Operation, name)} = %s" for name in names)
    where = ("id", "lease_token", "state", "cancel_requested")
    conditions = " AND ".join(f"{_column(Operation, name)} = %s" for name in where)
    table = connection.ops.quote_name(Operation._meta.db_table)
    return f"UPDATE {table} SET {assignments} WHERE {conditions}", [
        _field(Operation, name) for name in names
    ]


@functools.lru_cache(maxsize=8)
def _touched_insert(vendor: str, rows: int) -> str:
    """``TouchedCorrelation.record``'s INSERT of ``rows`` rows, skipping recorded ones."""
    model = TouchedCorrelation
    columns = ", ".join(
        _column(model, name) for name in ("operation", "correlation_id", "created_at")
    )
    table = connection.ops.quote_name(model._meta.db_table)
    values = ", ".join(["(%s, %s, %s)"] * rows)
    return f"INSERT INTO {table} ({columns}) VALUES {values} ON CONFLICT DO NOTHING"


class TouchedCorrelation(models.Model):
    """A correlation ID an operation acted on: for "operations that touched this ID"
    and for redrive-loop detection (the same ID back in the DLQ after a redrive)."""

    operation = models.ForeignKey(Operation, on_delete=models.CASCADE, related_name="touched")
    correlation_id = models.CharField(max_length=256, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["operation", "correlation_id"], name="unique_touched_correlation"
            )
        ]

    def __str__(self) -> str:
        return f"{self.correlation_id} (operation #{self.operation_id})"

    # Rows per INSERT statement: 3 parameters each, under SQLite's 999-parameter limit.
    RECORD_CHUNK = 300

    @classmethod
    def record(cls, operation_id: int, correlation_ids: set[str]) -> None:
        """Insert the IDs, skipping ones already recorded: ``bulk_create(ignore_conflicts=True)``
        as multi-row INSERTs, since a redrive writes one row per message it moves (one
        statement per row cost a third more, bench/redrive.py)."""
        if not correlation_ids:
            return
        conn = connections[DEFAULT_DB_ALIAS]
        created_at = _field(cls, "created_at").get_db_prep_save(timezone.now(), conn)
        ids = list(correlation_ids)
        with conn.cursor() as cursor:
            for start in range(0, len(ids), cls.RECORD_CHUNK):
                chunk = ids[start : start + cls.RECORD_CHUNK]
                params = [v for c in chunk for v in (operation_id, c, created_at)]
                cursor.execute(_touched_insert(conn.vendor, len(chunk)), params)


class OperationMessage(models.Model):
    """What an operation did with one message, keyed by the message's ID in the DLQ.

    The counters of a resumed or taken-over pass come from these rows, so each message
    counts once however many workers saw it; a message recorded as ``sent`` whose delete
    did not happen (the worker died in between) is deleted, not sent again."""

    class Outcome(models.TextChoices):
        SENT = "sent", "Sent, not yet deleted from the DLQ"
        MOVED = "moved", "Moved"
        FAILED = "failed", "Not moved: an error"
        NOT_MATCHING = "not_matching", "Did not match the filters"
        HELD_BACK = "held_back", "Held back"
        RETURNED = "returned", "Arrived after the pass began"

    operation = models.ForeignKey(Operation, on_delete=models.CASCADE, related_name="messages")
    message_id = models.CharField(max_length=128)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    # Why it did not move ("refused by SQS: InvalidParameterValue", "FIFO group order").
    reason = models.CharField(max_length=256, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["operation", "message_id"], name="unique_operation_message"
            )
        ]
        indexes = [models.Index(fields=["operation", "outcome"])]

    def __str__(self) -> str:
        return f"{self.message_id}: {self.outcome} (operation #{self.operation_id})"


class AlarmTransition(models.Model):
    """Alarm state changes the dashboard saw itself: AWS keeps about 14 days of history.

    Kept per environment: two environments' alarms often share a name (``orders-dlq``),
    and each alarm page shows its own environment's history. ``environment`` is "" for a
    change whose environment is unknown (an SNS message matching no single configured
    Region); those show in every environment."""

    environment = models.CharField(max_length=64, blank=True, default="", db_index=True)
    alarm_name = models.CharField(max_length=255, db_index=True)
    alarm_arn = models.CharField(max_length=1024, blank=True)
    old_state = models.CharField(max_length=32, blank=True)
    new_state = models.CharField(max_length=32)
    reason = models.TextField(blank=True)
    changed_at = models.DateTimeField(db_index=True)
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-changed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "alarm_name", "changed_at", "new_state"],
                name="unique_alarm_transition_per_environment",
            )
        ]

    def __str__(self) -> str:
        return f"{self.alarm_name}: {self.old_state} -> {self.new_state} at {self.changed_at}"


class ApiToken(models.Model):
    """A personal REST API token. Only its SHA-256 is stored; the secret is shown once.

    The token reads ``eo_<prefix>_<secret>``: the prefix finds the row (and names the
    token in lists), the hash of the whole token proves it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    hashed = models.CharField(max_length=64)
    created = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}) of user #{self.user_id}"

    @property
    def is_usable(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"


class IdempotencyKey(models.Model):
    """A POST's ``Idempotency-Key``: the same key from the same user gets the same answer
    (kept 24 hours); the same key with another request is refused."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    # None while the first request with this key is still being answered.
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="unique_idempotency_key")
        ]

    def __str__(self) -> str:
        return f"{self.key} of user #{self.user_id}"


# Reads are audited in their own module; imported here so Django finds the model.
from operations.read_audit import ReadAudit  # noqa: E402, F401

# The failure groups' and scans' models (in their own module; registered with this app).
from operations.triage.models import (  # noqa: E402
    FailureGroup,
    FailureGroupChange,
    FailureGroupMessage,
    ScannedMessage,
)

__all__ = [
    "AlarmTransition",
    "ApiToken",
    "FailureGroup",
    "FailureGroupChange",
    "FailureGroupMessage",
    "IdempotencyKey",
    "Operation",
    "OperationMessage",
    "ReadAudit",
    "ScannedMessage",
    "TouchedCorrelation",
]
