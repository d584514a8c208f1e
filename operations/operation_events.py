"""``operation_finished``: sent once when an operation reaches a final state, on commit.

Every path that ends an operation (``Operation.finish``, a pending cancel, an abandoned
row ended, a task the broker refused, an environment no longer configured) calls
``ended(operation_id)`` after its compare-and-set update matched; notifications and
metrics listen here, so nothing that ends an operation needs to know about them."""

from __future__ import annotations

import logging

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

# Sent with ``operation_id``; receivers must not raise (they are called robustly).
operation_finished = Signal()


def ended(operation_id: int) -> None:
    """Announce that ``operation_id`` just reached its final state (after commit)."""
    transaction.on_commit(lambda: _send(operation_id), robust=True)


def _send(operation_id: int) -> None:
    for receiver, result in operation_finished.send_robust(sender=None, operation_id=operation_id):
        if isinstance(result, Exception):
            logger.error("operation %s: %r failed: %s", operation_id, receiver, result)
