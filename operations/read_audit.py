"""Reads are audited too: who looked at which DLQ's bodies, exported them or saw them
unmasked, when, how many messages, and through what (a page, a command, the API).

One INSERT per read and no AWS call. A page that re-renders (a second peek, an htmx poll)
is recorded once per person, environment, target and kind every ``RECENT_SECONDS``:
the trail says who looked, not how often the browser asked. Exports are always recorded.
Rows are never edited nor deleted (like ``Operation`` rows, ARCHITECTURE.md decision 4).
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import models
from django.utils import timezone

from operations import environments

# A repeated view of the same target by the same person within this long is not recorded.
RECENT_SECONDS = 5 * 60


class ReadAudit(models.Model):
    class Kind(models.TextChoices):
        VIEWED_BODIES = "viewed_bodies", "Viewed message bodies"
        VIEWED_MESSAGE = "viewed_message", "Viewed one message"
        EXPORTED = "exported", "Exported messages"

    class Via(models.TextChoices):
        PAGE = "page", "Page"
        COMMAND = "command", "Command"
        API = "api", "API"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # Kept as text too: the account may be renamed or removed, the trail stays.
    username = models.CharField(max_length=150)
    environment = models.CharField(max_length=32, default=environments.current_name)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # Whether what was read was shown unmasked (the person may see secrets, masking is on).
    unmasked = models.BooleanField(default=False)
    # A DLQ name, an archive name, "correlation <id>".
    target = models.CharField(max_length=512)
    message_count = models.PositiveIntegerField(default=0)
    via = models.CharField(max_length=8, choices=Via.choices, default=Via.PAGE)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "operations"
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["environment", "-at"]),
            models.Index(fields=["username", "-at"]),
        ]

    def __str__(self) -> str:
        shown = " unmasked" if self.unmasked else ""
        return f"{self.username}: {self.kind}{shown} {self.target} ({self.message_count})"


def _recent_key(username: str, environment: str, kind: str, target: str, unmasked: bool) -> str:
    digest = hashlib.sha256(f"{username}\0{environment}\0{kind}\0{target}\0{unmasked}".encode())
    return f"eventops:read-audit:{digest.hexdigest()[:40]}"


def record(
    user: Any,
    kind: str,
    target: str,
    *,
    count: int,
    unmasked: bool,
    via: str = ReadAudit.Via.PAGE,
    environment: str = "",
    username: str = "",
    every_time: bool = False,
) -> ReadAudit | None:
    """Record one read; None when the same read was recorded within ``RECENT_SECONDS``
    (unless ``every_time``). ``user`` may be None (a command run by someone without an
    account: ``username`` names them). A failed write raises: no audit, no read."""
    account = user if getattr(user, "is_authenticated", False) else None
    name = username or (account.get_username() if account is not None else "") or "anonymous"
    env = environment or environments.current_name()
    if not every_time:
        key = _recent_key(name, env, kind, target, unmasked)
        if not cache.add(key, 1, RECENT_SECONDS):
            return None
    return ReadAudit.objects.create(
        user=account,
        username=name[:150],
        environment=env,
        kind=kind,
        unmasked=unmasked,
        target=target[:512],
        message_count=max(0, count),
        via=via,
    )
