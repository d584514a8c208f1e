"""Reversible attribute patches on moto's classes and module globals.

Every change the emulator makes to moto goes through one :class:`Patcher`, so ``uninstall()``
puts moto back exactly as it was (tests that use plain ``mock_aws`` afterwards see stock moto).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_MISSING = object()


class Patcher:
    """Records each replaced attribute and restores them all, newest first."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def setattr(self, target: Any, name: str, value: Any) -> None:
        """``setattr(target, name, value)``, remembering what to put back.

        For a class, only the class's own ``__dict__`` entry is remembered: an inherited attribute
        is restored by deleting the override.
        """
        if isinstance(target, type):
            original = vars(target).get(name, _MISSING)
        else:
            original = getattr(target, name, _MISSING)

        def undo() -> None:
            if original is _MISSING:
                if name in vars(target):
                    delattr(target, name)
            else:
                setattr(target, name, original)

        with self._lock:
            setattr(target, name, value)
            self._undo.append(undo)

    def on_undo(self, undo: Callable[[], None]) -> None:
        """Register a custom undo step (e.g. removing an item appended to a moto list)."""
        with self._lock:
            self._undo.append(undo)

    def undo_all(self) -> None:
        with self._lock:
            steps, self._undo = self._undo, []
        for step in reversed(steps):
            step()

    def __len__(self) -> int:
        return len(self._undo)
