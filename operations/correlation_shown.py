"""The correlation lookup as one person may see it: panels and timeline masked for whoever
may not see bodies unmasked (operations/masking.py).

Panels are cached for everyone (operations/correlation.py), unmasked; each request masks
its own copy here, so the cache never holds a masked value and never serves an unmasked
one to someone who must not see it. A lookup by a value that only the unmasked message
holds finds nothing.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace

from operations import masking
from operations.correlation import (
    Entry,
    FoundMessage,
    LoggedEvent,
    Panel,
    Timeline,
    _logged_event,
    dlq_entry,
    event_entry,
)


def masked_event(event: LoggedEvent) -> LoggedEvent:
    """An event-log event with its envelope masked (itself when nothing is)."""
    text = json.dumps(event.envelope, default=str)
    masked = masking.mask_text(text)
    if masked == text:
        return event
    return _logged_event(masked, event.log_group) or event


def masked_entry(entry: Entry) -> Entry:
    return replace(
        entry, title=masking.mask_text(entry.title), detail=masking.mask_text(entry.detail)
    )


def masked_panel(found: Panel) -> Panel:
    """``found`` as someone who sees bodies masked sees it. Lookups match on correlation
    and event IDs: a row whose IDs masking changes (they look like a card number or a
    configured pattern) is left out, since it was found by a value its reader may not see."""
    if found.key == "dlq" and all(isinstance(r, FoundMessage) for r in found.rows):
        rows = []
        for row in found.rows:
            shown = replace(row, message=row.message.masked)
            same = shown.message.correlation_id == row.message.correlation_id
            if same and shown.event_id == row.event_id:
                rows.append(shown)
        return replace(found, rows=rows, entries=[dlq_entry(r) for r in rows])
    if found.key == "events" and all(_is_event_row(r) for r in found.rows):
        rows = []
        for row in found.rows:
            event = masked_event(row["event"])
            if (event.id, event.correlation_id) == (row["event"].id, row["event"].correlation_id):
                rows.append({**row, "event": event})
        entries = [event_entry(row["event"], row.get("rules", [])) for row in rows]
        return replace(found, rows=rows, entries=entries)
    if found.key == "operations":
        # Reasons are free text (a card number pasted into "why"): shown masked, never saved.
        rows = [copy.copy(op) for op in found.rows]
        for op in rows:
            op.reason = masking.mask_text(op.reason)
        return replace(found, rows=rows, entries=[masked_entry(e) for e in found.entries])
    return replace(found, entries=[masked_entry(e) for e in found.entries])


def _is_event_row(row: object) -> bool:
    return isinstance(row, dict) and isinstance(row.get("event"), LoggedEvent)


def masked_timeline(built: Timeline) -> Timeline:
    panels = {key: masked_panel(p) for key, p in built.panels.items()}
    return replace(built, panels=panels)
