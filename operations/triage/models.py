"""Failure groups (DLQ messages that failed the same way) and the rows of DLQ scans.

A group is keyed by environment, DLQ and signature (``operations.triage.signature``). Its
count is the number of distinct message IDs seen in it (``FailureGroupMessage``), never the
number of sightings: a peek that sees the same message ten times counts it once. Every state
change is a ``FailureGroupChange`` row (who, when, from, to, note): the groups' audit trail.

What is stored of a message body is masked (``operations.masking.mask_text``) before it is
written; pages mask again per viewer only what they fetch fresh.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from operations import environments
from operations.models import Operation

# A group keeps this many sample message IDs (the first seen).
MAX_SAMPLE_IDS = 20
# A stored body excerpt is at most this long (masked).
EXCERPT_CHARS = 500


class FailureGroup(models.Model):
    class State(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"
        IGNORED = "ignored", "Ignored"

    environment = models.CharField(max_length=32, default=environments.current_name)
    dlq_url = models.CharField(max_length=512)
    dlq_name = models.CharField(max_length=256)
    key = models.CharField(max_length=32)
    consumer = models.CharField(max_length=256, blank=True)
    exception_name = models.CharField(max_length=256, blank=True)
    title = models.CharField(max_length=600)
    top_frame = models.CharField(max_length=512, blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    count = models.PositiveIntegerField(default=0)
    sample_message_ids = models.JSONField(default=list, blank=True)
    # The first sample's body excerpt (masked) and correlation ID.
    sample_excerpt = models.TextField(blank=True)
    sample_correlation_id = models.CharField(max_length=256, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    state_by = models.CharField(max_length=150, blank=True)
    state_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    # Set when a resolved group saw a message it had not seen before (it reopened).
    regressed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "dlq_url", "key"], name="unique_failure_group"
            )
        ]
        indexes = [models.Index(fields=["environment", "state", "count"])]

    def __str__(self) -> str:
        return f"{self.title} ({self.count} in {self.dlq_name})"

    @property
    def regressed(self) -> bool:
        return self.regressed_at is not None and self.state == self.State.OPEN


class FailureGroupMessage(models.Model):
    """One distinct message seen in a group (the count is the number of these rows)."""

    group = models.ForeignKey(FailureGroup, on_delete=models.CASCADE, related_name="members")
    message_id = models.CharField(max_length=128)
    correlation_id = models.CharField(max_length=256, blank=True)
    first_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "message_id"], name="unique_group_message")
        ]
        indexes = [models.Index(fields=["group", "first_seen"])]

    def __str__(self) -> str:
        return f"{self.message_id} in group #{self.group_id}"


class FailureGroupChange(models.Model):
    """A state change of a group: by a person (acknowledge, resolve, ignore, reopen) or by
    the system (opened, regressed). Never edited."""

    group = models.ForeignKey(FailureGroup, on_delete=models.CASCADE, related_name="changes")
    change = models.CharField(max_length=16)
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16)
    by = models.CharField(max_length=150, blank=True)
    at = models.DateTimeField(default=timezone.now)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"group #{self.group_id}: {self.change} by {self.by or 'system'}"


class ScannedMessage(models.Model):
    """One message a scan read (the dense table of the DLQ page is over these rows)."""

    operation = models.ForeignKey(Operation, on_delete=models.CASCADE, related_name="scanned")
    message_id = models.CharField(max_length=128)
    sent_at = models.DateTimeField(null=True, blank=True)
    receive_count = models.PositiveIntegerField(default=0)
    event_type = models.CharField(max_length=128, blank=True)
    correlation_id = models.CharField(max_length=256, blank=True)
    size = models.PositiveIntegerField(default=0)
    excerpt = models.CharField(max_length=EXCERPT_CHARS, blank=True)  # masked
    group_key = models.CharField(max_length=32, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["operation", "message_id"], name="unique_scanned_message"
            )
        ]
        indexes = [
            models.Index(fields=["operation", "sent_at"]),
            models.Index(fields=["operation", "group_key"]),
            models.Index(fields=["operation", "event_type"]),
            models.Index(fields=["operation", "correlation_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} (scan #{self.operation_id})"
