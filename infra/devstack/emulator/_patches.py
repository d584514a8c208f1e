"""Reversible, checked attribute patches on moto's classes and module globals.

Every change the devstack makes to moto goes through one :class:`Patcher`, so ``uninstall()``
puts moto back exactly as it was (tests that use plain ``mock_aws`` afterwards see stock moto),
and so that a moto upgrade that renames or removes what a patch replaces stops the devstack at
start with :class:`MotoIncompatible` instead of leaving the patch silently unused (moto 5.2
renamed ``XRayResponse.trace_summaries`` to ``get_trace_summaries``; the X-Ray patch went on
installing an attribute nobody called).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import inspect
import threading
from collections.abc import Callable, Iterable
from typing import Any

_MISSING = object()
# Set on what a Patcher adds, so that a second emulator in the same process (tests) may stack
# its own patch on it: only moto's own attributes count as "moto has it now".
ADDED_MARK = "_eventops_added"


@functools.cache
def moto_version() -> str:
    """The installed moto's version (``unknown`` if its metadata is missing)."""
    try:
        return importlib.metadata.version("moto")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class MotoIncompatible(RuntimeError):
    """The installed moto does not have what a devstack patch relies on."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(
            f"moto {moto_version()} is not compatible with the devstack's emulator: "
            f"{where} {problem} (requirements/ pins the moto the emulator was written for)"
        )


def describe(target: Any) -> str:
    """``moto.xray.responses.XRayResponse`` for a class, the module name for a module."""
    if inspect.ismodule(target):
        return str(target.__name__)
    if isinstance(target, type):
        return f"{target.__module__}.{target.__qualname__}"
    return f"{type(target).__module__}.{type(target).__qualname__} instance"


def _defined(target: Any, name: str) -> bool:
    """Whether ``target`` has ``name``: for a class anywhere in its MRO, else as an attribute."""
    if isinstance(target, type):
        return any(name in vars(klass) for klass in target.__mro__ if klass is not object)
    return hasattr(target, name)


def require_parameters(function: Any, names: Iterable[str], where: str) -> None:
    """Raise :class:`MotoIncompatible` unless ``function`` takes every parameter in ``names``.

    For wrappers that read an argument of the method they wrap by name or position: if moto
    renames it, the wrapper would silently read nothing.
    """
    wanted = list(names)
    if not wanted:
        return
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError) as exc:
        raise MotoIncompatible(where, f"has no signature to check ({exc})") from None
    missing = [name for name in wanted if name not in parameters]
    if missing:
        raise MotoIncompatible(
            where, f"no longer takes {', '.join(missing)} (takes {', '.join(parameters)})"
        )


class Patcher:
    """Records each replaced attribute and restores them all, newest first."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self.targets: list[tuple[Any, str]] = []

    def setattr(
        self,
        target: Any,
        name: str,
        value: Any,
        *,
        new: bool = False,
        requires: Iterable[str] = (),
    ) -> None:
        """``setattr(target, name, value)``, remembering what to put back.

        The attribute must exist on ``target`` (for a class: anywhere in its MRO), or the
        patch would replace nothing and moto would go on running its own code: then this
        raises :class:`MotoIncompatible`. ``new=True`` adds an attribute moto does not have
        (and refuses if moto has grown one). ``requires`` names parameters of the replaced
        callable that the replacement relies on.

        For a class, only the class's own ``__dict__`` entry is remembered: an inherited
        attribute is restored by deleting the override.
        """
        where = f"{describe(target)}.{name}"
        exists = _defined(target, name)
        if new and exists and not getattr(getattr(target, name), ADDED_MARK, False):
            raise MotoIncompatible(where, "now exists, and the devstack would hide it")
        if not new and not exists:
            raise MotoIncompatible(where, "does not exist")
        requires = list(requires)
        if not new:
            replaced = getattr(target, name)
            require_parameters(replaced, requires, where)
            if callable(value) and not hasattr(value, "__wrapped__"):
                # A wrapper's signature is the wrapped method's: a second patch on top of
                # this one (a second Emulator in tests) checks moto's parameters, not *args.
                with contextlib.suppress(AttributeError, TypeError):
                    value.__wrapped__ = replaced
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

        if new:
            with contextlib.suppress(AttributeError, TypeError):
                setattr(value, ADDED_MARK, True)
        with self._lock:
            setattr(target, name, value)
            self._undo.append(undo)
            self.targets.append((target, name))

    def on_undo(self, undo: Callable[[], None]) -> None:
        """Register a custom undo step (e.g. removing an item appended to a moto list)."""
        with self._lock:
            self._undo.append(undo)

    def undo_all(self) -> None:
        with self._lock:
            steps, self._undo = self._undo, []
            self.targets = []
        for step in reversed(steps):
            step()

    def __len__(self) -> int:
        return len(self._undo)
