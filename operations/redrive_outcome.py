"""How a redrive ends: its final state, its counts and the reasons, grouped.

- ``succeeded``: everything it was asked to move moved (see ``RedriveParams``): no
  message it took on failed or was held back, every named message was found, nothing
  was left unexamined, and no AWS error stopped the pass. A pass asked for nothing
  (nothing matched) succeeds.
- ``partial``: some moved, some of what was asked for did not.
- ``failed``: nothing moved, although something was asked for (errors, or everything
  held back), or an AWS error stopped the pass before anything moved.
- ``cancelled``: an operator stopped it.

``outcome["reasons"]`` says why what was asked for did not move, one count per reason
("FIFO group order": 7, "refused by SQS: InvalidParameterValue": 3); their sum is
``failed + held_back + not_found + unexamined``. Messages that did not match
(``skipped``) and messages that arrived after the pass began (``returned``) were not
asked for, and are counted apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from operations.models import Operation
from operations.redrive_groups import GroupOrder
from operations.redrive_ledger import Ledger

NOT_FOUND = "not found in the DLQ"


@dataclass
class Shortfall:
    """What the pass could not do that the ledger does not record."""

    # Named messages (filters.message_ids) the pass did not find.
    not_found: int = 0
    # Messages the queue still held that the pass could not examine, and why.
    unexamined: int = 0
    unexamined_why: str = ""
    # The AWS error that stopped the pass.
    error: str = ""


def final_state(ledger: Ledger, shortfall: Shortfall, *, cancelled: bool) -> str:
    if cancelled:
        return Operation.State.CANCELLED
    counts = ledger.counts()
    short = counts.failed + counts.held_back + shortfall.not_found + shortfall.unexamined
    if not short and not shortfall.error:
        return Operation.State.SUCCEEDED
    return Operation.State.PARTIAL if counts.moved else Operation.State.FAILED


def counters(ledger: Ledger, progress: dict[str, Any]) -> dict[str, Any]:
    """The Operation fields a progress report saves."""
    counts = ledger.counts()
    return {
        "moved": counts.moved,
        "failed": counts.failed,
        "skipped": counts.skipped,
        "held_back": counts.held_back,
        "progress": {
            **progress,
            "returned": counts.returned,
            "delete_failed": len(ledger.undeleted),
        },
    }


def outcome(
    ledger: Ledger, groups: GroupOrder, shortfall: Shortfall, destinations: list[str]
) -> dict[str, Any]:
    """``Operation.outcome``: exact counts, the reasons grouped, the groups held back."""
    counts = ledger.counts()
    reasons = ledger.reasons()
    if shortfall.not_found:
        reasons[NOT_FOUND] += shortfall.not_found
    if shortfall.unexamined:
        reasons[shortfall.unexamined_why] += shortfall.unexamined
    return {
        "moved": counts.moved,
        "failed": counts.failed,
        "skipped": counts.skipped,
        "held_back": counts.held_back,
        "returned": counts.returned,
        "not_found": shortfall.not_found,
        "unexamined": shortfall.unexamined,
        "delete_failed": len(ledger.undeleted),
        "reasons": dict(reasons.most_common()),
        "held_groups": groups.held_groups(),
        "held_group_count": groups.held_group_count,
        "destinations": destinations,
    }
