"""How an operation ends, told from what it was asked to do and what it did.

ARCHITECTURE.md decision 12: ``succeeded`` only when everything asked for was done,
``partial`` when some of it was, ``failed`` when none of it was because of errors, and
``cancelled`` when a person stopped it. The reasons for what was not done are grouped
with their counts in ``Operation.outcome["reasons"]`` ({reason: count}, largest first),
so a page or a command can say "3 refused by PutEvents: ThrottlingException".

The commands exit with one code per final state (README, "Command line").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from operations.models import Operation

# Exit codes of the operation commands (replay, redrive, operations cancel).
EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2  # refused before anything started, or bad usage
EXIT_PARTIAL = 3
EXIT_CANCELLED = 4
EXIT_RUNNING = 5  # still running, or handed to a worker
EXIT_CODES = {
    Operation.State.SUCCEEDED: EXIT_SUCCEEDED,
    Operation.State.FAILED: EXIT_FAILED,
    Operation.State.PARTIAL: EXIT_PARTIAL,
    Operation.State.CANCELLED: EXIT_CANCELLED,
}


def final_state(done: int, asked: int) -> str:
    """``succeeded`` when all ``asked`` were done, ``partial`` when some were, else ``failed``.

    Nothing asked (an empty selection) is vacuously done."""
    if done >= asked:
        return Operation.State.SUCCEEDED
    if done > 0:
        return Operation.State.PARTIAL
    return Operation.State.FAILED


def group_reasons(reasons: Iterable[str] | Mapping[str, int]) -> dict[str, int]:
    """``{reason: count}``, largest count first (then by reason), from one reason per item
    not done, or from counts already grouped."""
    counts = Counter(reasons) if not isinstance(reasons, Mapping) else Counter(dict(reasons))
    return dict(sorted(((r, n) for r, n in counts.items() if n > 0), key=lambda i: (-i[1], i[0])))


def reason_lines(outcome: Mapping[str, object]) -> list[str]:
    """The grouped reasons as sentences: "3 refused by PutEvents: ThrottlingException"."""
    reasons = outcome.get("reasons") if isinstance(outcome, Mapping) else None
    if not isinstance(reasons, Mapping):
        return []
    return [f"{count} {reason}" for reason, count in reasons.items()]


def exit_code(state: str) -> int:
    """The command's exit code for an operation in ``state`` (an active one is still running)."""
    return EXIT_CODES.get(state, EXIT_RUNNING)  # type: ignore[call-overload]


CANCEL_FIELDS = ["cancel_requested", "cancel_requested_by", "cancel_requested_at", "cancel_reason"]


def cancelled_by(op: Operation) -> dict[str, int]:
    """The reason of a cancelled operation, naming who cancelled it (read afresh: a task
    learns of a cancel from its reports, which read the flag alone)."""
    op.refresh_from_db(fields=CANCEL_FIELDS)
    who = op.cancel_requested_by or "someone"
    why = f": {op.cancel_reason}" if op.cancel_reason else ""
    return {f"cancelled by {who}{why}": 1}
