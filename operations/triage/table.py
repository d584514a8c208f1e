"""The rows of the DLQ page's dense table: a scan's stored rows, or a peek's messages before
any scan, filtered and sorted the same way."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Q, QuerySet

from operations import masking
from operations.triage.groups import Seen, excerpt
from operations.triage.models import ScannedMessage

# Sort keys the table offers: name -> (model field, Python key).
SORTS = {
    "sent": "sent_at",
    "receives": "receive_count",
    "size": "size",
    "type": "event_type",
    "group": "group_key",
}
DEFAULT_SORT = "-sent"


@dataclass(frozen=True)
class TableFilters:
    group: str = ""
    event_type: str = ""
    correlation_id: str = ""
    text: str = ""
    sort: str = DEFAULT_SORT

    @property
    def active(self) -> bool:
        return bool(self.group or self.event_type or self.correlation_id or self.text)


# The most of a traceback a row shows (the logs keep the whole of it).
TRACEBACK_CHARS = 20_000


@dataclass
class TableRow:
    """A peeked message with the columns of a scanned row (and its body, for the page)."""

    message_id: str
    sent_at: datetime | None
    receive_count: int
    size: int
    event_type: str
    correlation_id: str
    group_key: str
    error: str
    excerpt: str
    message: Any = None
    # The exception's traceback as the consumer logged it (peeked rows; masked like the
    # error for a viewer who sees bodies masked). A scan's stored rows keep none.
    traceback: str = ""


def _order(sort: str) -> tuple[str, bool]:
    descending = sort.startswith("-")
    name = sort.lstrip("-")
    return SORTS.get(name, SORTS["sent"]), descending


def scanned(operation_id: int, filters: TableFilters) -> QuerySet[ScannedMessage]:
    """The scan's rows matching ``filters``, sorted (ties by message ID, so pages are stable).
    Text matches the stored, masked excerpt and the error: never a masked value."""
    rows = ScannedMessage.objects.filter(operation_id=operation_id)
    if filters.group:
        rows = rows.filter(group_key=filters.group)
    if filters.event_type:
        rows = rows.filter(event_type=filters.event_type)
    if filters.correlation_id:
        rows = rows.filter(correlation_id=filters.correlation_id)
    if filters.text:
        rows = rows.filter(Q(excerpt__icontains=filters.text) | Q(error__icontains=filters.text))
    field, descending = _order(filters.sort)
    prefix = "-" if descending else ""
    return rows.order_by(f"{prefix}{field}", f"{prefix}message_id").only(
        "message_id",
        "sent_at",
        "receive_count",
        "size",
        "event_type",
        "correlation_id",
        "group_key",
        "error",
        "excerpt",
    )


# A finished scan's counts never change: they are kept this long.
COUNTS_CACHE_SECONDS = 3600


def scan_counts(
    operation_id: int, *, finished: bool = False
) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(group key, count) and (event type, count) over the whole scan, largest first; a
    finished scan's are cached (two GROUP BYs over every row were a third of a page's SQL)."""
    key = f"eventops:scan-counts:{operation_id}"
    if finished:
        kept = cache.get(key)
        if kept is not None:
            return kept
    counts = _scan_counts(operation_id)
    if finished:
        cache.set(key, counts, COUNTS_CACHE_SECONDS)
    return counts


def _scan_counts(operation_id: int) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    rows = ScannedMessage.objects.filter(operation_id=operation_id)
    by_group = rows.values_list("group_key").annotate(n=Count("id")).order_by("-n", "group_key")
    by_type = rows.values_list("event_type").annotate(n=Count("id")).order_by("-n", "event_type")
    return [(k, n) for k, n in by_group], [(k, n) for k, n in by_type if k]


def peek_rows(
    seen: Iterable[Seen], filters: TableFilters, *, masked: bool = True
) -> list[TableRow]:
    """The peeked messages as table rows, filtered and sorted like ``scanned``. ``masked``:
    the viewer sees errors masked, so the error shown and searched is the masked one (the
    excerpt is always masked, as a scan stores it)."""
    rows = [
        TableRow(
            message_id=item.message.message_id,
            sent_at=item.message.sent_at,
            receive_count=item.message.receive_count,
            size=len(item.message.raw.body.encode("utf-8", "replace")),
            event_type=item.message.event_type,
            correlation_id=item.message.correlation_id,
            group_key=item.signature.key,
            error=(masking.mask_text(item.error.summary) if masked else item.error.summary)[:500],
            excerpt=excerpt(item.message),
            message=item.message,
            traceback=(masking.mask_text(item.error.traceback) if masked else item.error.traceback)[
                :TRACEBACK_CHARS
            ],
        )
        for item in seen
    ]
    text = filters.text.lower()
    kept = [
        r
        for r in rows
        if (not filters.group or r.group_key == filters.group)
        and (not filters.event_type or r.event_type == filters.event_type)
        and (not filters.correlation_id or r.correlation_id == filters.correlation_id)
        and (not text or text in r.excerpt.lower() or text in r.error.lower())
    ]
    field, descending = _order(filters.sort)

    def key(row: TableRow) -> tuple[bool, Any, str]:
        value = getattr(row, field)
        return (value is None, value if value is not None else 0, row.message_id)

    present = sorted((r for r in kept if getattr(r, field) is not None), key=key)
    if descending:
        present.reverse()
    return present + [r for r in kept if getattr(r, field) is None]


def peek_counts(rows: Iterable[TableRow]) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    rows = list(rows)
    by_group = Counter(r.group_key for r in rows).most_common()
    by_type = Counter(r.event_type for r in rows if r.event_type).most_common()
    return by_group, by_type


def titles(keys: Iterable[str], groups: Mapping[str, Any]) -> dict[str, str]:
    return {k: groups[k].title if k in groups else k for k in keys}
