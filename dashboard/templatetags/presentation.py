"""Template filters of ``dashboard.presentation``: ``{% load presentation %}``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django import template

from dashboard import presentation

register = template.Library()


@register.filter
def trouble_first(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return presentation.trouble_first(rows)


@register.filter
def without_prefix(name: str, prefix: str) -> str:
    return presentation.without_prefix(str(name), str(prefix or ""))


@register.simple_tag
def common_prefix(rows: Iterable[Mapping[str, Any]], *keys: str) -> str:
    """The name prefix shared by the ``keys`` fields of every row (empty ones skipped)."""
    names = [str(row.get(key) or "") for row in rows for key in keys]
    return presentation.common_prefix(names)


@register.simple_tag
def backlog_warn() -> dict[str, int]:
    """The overview's thresholds: ``{% backlog_warn as warn %}``, then ``warn.age``..."""
    return presentation.backlog_thresholds()


@register.simple_tag(takes_context=True)
def counts_read_at(context: template.Context) -> Any:
    """When the overview's counts were read (the oldest of those reads): the context's
    ``counts_read_at``, or the overview's; None when neither says."""
    found = context.get("counts_read_at")
    if found is None:
        found = getattr(context.get("overview"), "counts_read_at", None)
    return found
