"""How pages present what they show: trouble first, shared name prefixes shown once.

Pure functions over what the views already computed; no AWS call, no database."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings

# A prefix is cut only at one of these, so "eventops-demo-orders" loses "eventops-demo-".
PREFIX_SEPARATORS = "-_./:"
# Shorter shared prefixes are not worth a heading.
MIN_PREFIX = 5


def common_prefix(names: Iterable[str]) -> str:
    """The longest prefix that every name shares, ending at a separator, that leaves
    something of each name ("" when there are fewer than two names or none is worth it)."""
    listed = [name for name in names if name]
    if len(listed) < 2:
        return ""
    shared = os.path.commonprefix(listed)
    cut = max(shared.rfind(sep) for sep in PREFIX_SEPARATORS) + 1
    prefix = shared[:cut]
    if len(prefix) < MIN_PREFIX or any(len(name) == len(prefix) for name in listed):
        return ""
    return prefix


def without_prefix(name: str, prefix: str) -> str:
    return name[len(prefix) :] if prefix and name.startswith(prefix) else name


def row_flags(row: Mapping[str, Any]) -> list[str]:
    """Why an overview row needs a look, worst first (empty when it does not)."""
    flags = []
    # Overview rows carry (alarm, css, url, runbook); only the alarm matters here.
    if any(getattr(alarm, "state", "") == "ALARM" for alarm, *_ in row.get("alarms", [])):
        flags.append("alarm")
    if row.get("dlq_depth"):
        flags.append("DLQ messages")
    if (row.get("visible") or 0) >= settings.EVENTOPS_BACKLOG_WARN_MESSAGES:
        flags.append("backlog")
    age = row.get("oldest_age_seconds")
    if age is not None and age >= settings.EVENTOPS_BACKLOG_WARN_AGE_SECONDS:
        flags.append("old messages")
    return flags


def trouble_first(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The rows, each with its ``flags`` and whether its backlog (``backlog_over``) and the
    age of its oldest message (``age_over``) are over the thresholds, those with trouble
    first (otherwise in the order given, which is worst first)."""
    flagged = []
    for row in rows:
        flags = row_flags(row)
        flagged.append(
            {
                **row,
                "flags": flags,
                "backlog_over": "backlog" in flags,
                "age_over": "old messages" in flags,
            }
        )
    return sorted(flagged, key=lambda row: not row["flags"])


def backlog_thresholds() -> dict[str, int]:
    return {
        "messages": settings.EVENTOPS_BACKLOG_WARN_MESSAGES,
        "age": settings.EVENTOPS_BACKLOG_WARN_AGE_SECONDS,
    }
