"""FIFO group order within one redrive pass.

Within a message group no message moves ahead of an earlier one that has not moved:
once a message of a group does not move (it did not match the filters, SQS refused it,
its send failed, it arrived after the pass began), every later message of that group
is held back. The pass holds those messages hidden until it ends.

SQS serves a FIFO group's next messages only once its earlier ones are deleted or
visible again, so what lies behind a group the pass holds is unseen. When only such
messages are left, the pass makes the held ones of those groups visible again and
reads on: each receive returns a group's messages from its head, up to 10, so a group
of which the pass holds 10 or more cannot be read further. A group whose release
revealed nothing new is not released again, and the rounds are bounded.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from operations.aws import sqs

# At most this many rounds of releasing held groups per pass.
MAX_RELEASE_ROUNDS = 10
# A receive returns at most this many messages, and a FIFO group's from its head.
GROUP_WINDOW = sqs.MAX_BATCH_ENTRIES
# Groups listed in an outcome (the count of all of them is given too).
HELD_GROUPS_SHOWN = 50


@dataclass
class Stopped:
    """A group that stopped moving: why (its first message that did not move)."""

    reason: str
    held_back: int = 0
    # The messages of the group this pass holds in the DLQ, in order.
    held: list[str] = field(default_factory=list)


class GroupOrder:
    def __init__(self) -> None:
        self.stopped: dict[str, Stopped] = {}
        self.rounds = 0
        # New messages met per group since the last release.
        self._revealed: Counter[str] = Counter()
        self._released_groups: list[str] = []
        self._exhausted: set[str] = set()

    def __contains__(self, group: str) -> bool:
        return group in self.stopped

    def met(self, group: str) -> None:
        """A message of ``group`` the pass had not seen before."""
        self._revealed[group] += 1

    def stop(self, group: str, reason: str, *, earliest: bool = False) -> None:
        """``group`` stops moving because of a message that did not move. ``earliest``: that
        message comes before the one that stopped it before (it was waiting to be sent)."""
        stopped = self.stopped.get(group)
        if stopped is None:
            self.stopped[group] = Stopped(reason)
        elif earliest:
            stopped.reason = reason

    def hold(self, group: str, message_id: str, *, held_back: bool = False) -> None:
        """The pass keeps ``message_id`` of a stopped group in the DLQ."""
        stopped = self.stopped[group]
        stopped.held.append(message_id)
        stopped.held_back += held_back

    def to_release(self) -> list[str] | None:
        """The messages to make visible again for the next round, or None when no round is
        left: the groups held with fewer than ``GROUP_WINDOW`` messages whose last release
        revealed something (or that were never released)."""
        if self.rounds >= MAX_RELEASE_ROUNDS:
            return None
        self._exhausted.update(g for g in self._released_groups if not self._revealed[g])
        groups = [
            group
            for group, stopped in self.stopped.items()
            if group not in self._exhausted and 0 < len(stopped.held) < GROUP_WINDOW
        ]
        if not groups:
            return None
        self.rounds += 1
        self._released_groups = groups
        self._revealed.clear()
        return [message_id for group in groups for message_id in self.stopped[group].held]

    def held_groups(self) -> list[dict[str, object]]:
        """The groups that held messages back, most first (at most ``HELD_GROUPS_SHOWN``)."""
        held = sorted(
            ((g, s) for g, s in self.stopped.items() if s.held_back),
            key=lambda item: -item[1].held_back,
        )
        return [
            {"group": group, "held_back": stopped.held_back, "behind": stopped.reason}
            for group, stopped in held[:HELD_GROUPS_SHOWN]
        ]

    @property
    def held_group_count(self) -> int:
        return sum(1 for s in self.stopped.values() if s.held_back)
