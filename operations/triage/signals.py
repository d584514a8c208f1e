"""Signals of the failure groups, for notifications.

``failure_group_changed`` is sent with ``group`` (a ``FailureGroup``) and ``change``:
``"opened"`` when a group is first seen, ``"regressed"`` when a resolved group sees a message
it had not seen before and reopens. Receivers run in the process that saw the messages (a
page's peek or a scan's worker): keep them quick, or hand the work to a task.
"""

from __future__ import annotations

from django.dispatch import Signal

OPENED = "opened"
REGRESSED = "regressed"

failure_group_changed = Signal()
