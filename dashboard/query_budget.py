"""Bounds on the CloudWatch Logs Insights queries a person can start from a page.

Insights bills by data scanned and AWS allows a limited number of concurrent queries per
account, so the archive's event browser (which any viewer may use) keeps them bounded:
a window of at most ``EVENTOPS_LOGS_MAX_WINDOW_HOURS`` and at most
``EVENTOPS_LOGS_QUERIES_PER_MINUTE`` queries a minute per person. The count lives in the
shared cache (Redis in production), per person and clock minute.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache


class OverBudget(Exception):
    """The window is too long, or the person started too many queries this minute."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def check_window(start: datetime, end: datetime) -> None:
    hours = settings.EVENTOPS_LOGS_MAX_WINDOW_HOURS
    if end - start > timedelta(hours=hours):
        raise OverBudget(
            f"The window is limited to {hours} hours (EVENTOPS_LOGS_MAX_WINDOW_HOURS): narrow it.",
            400,
        )


def current_minute() -> int:
    return int(time.time() // 60)


def spend_query(user_id: object) -> None:
    """Count one Insights query for ``user_id``; ``OverBudget`` (429) over the limit."""
    limit = settings.EVENTOPS_LOGS_QUERIES_PER_MINUTE
    key = f"logs-insights-budget:{user_id}:{current_minute()}"
    cache.add(key, 0, timeout=120)
    try:
        used = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=120)
        used = 1
    if used > limit:
        raise OverBudget(
            f"You started {limit} Logs Insights queries in the last minute, the most one "
            "person may (EVENTOPS_LOGS_QUERIES_PER_MINUTE): wait a minute, or narrow the "
            "window to an hour or less (which needs no Insights query).",
            429,
        )
