"""Which AWS environment a call goes to, and as whom.

The adapters never take an environment argument: the caller (a view, a task, a command)
enters ``acting(target, identity)`` and every client created inside it talks to that
target's Region, endpoint and credentials, as that person. It is a ``ContextVar``, so it
follows the request or task it was set in; ``ContextThreadPoolExecutor`` carries it into
the threads of a fan-out (a plain ``ThreadPoolExecutor`` would lose it).

This module knows nothing of how environments are configured (``operations/environments.py``
reads the TOML file): a ``Target`` is only what boto3 needs.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

# sts:AssumeRole's RoleSessionName and SourceIdentity: 2-64 characters of [\w+=,.@-].
_IAM_NAME_UNSAFE = re.compile(r"[^\w+=,.@-]", re.ASCII)
SESSION_NAME_PREFIX = "eventops-"
# The identity of work no person started (a sweep re-enqueueing an abandoned row).
SYSTEM_IDENTITY = ""


@dataclass(frozen=True)
class Target:
    """Where AWS calls go: one environment's connection settings."""

    name: str
    region: str = ""
    profile: str = ""
    endpoint_url: str = ""
    role_arn: str = ""
    external_id: str = ""


@dataclass(frozen=True)
class Acting:
    """A target, and the person on whose behalf the calls are made ("" for the system)."""

    target: Target
    identity: str = SYSTEM_IDENTITY

    @property
    def session_name(self) -> str:
        """``RoleSessionName`` of the assumed role: ``eventops-<username>``."""
        return role_session_name(self.identity)

    @property
    def source_identity(self) -> str:
        """``SourceIdentity`` of the assumed role: the username ("" for the system)."""
        return source_identity(self.identity)


def _iam_safe(text: str) -> str:
    return _IAM_NAME_UNSAFE.sub("-", text)


def role_session_name(identity: str) -> str:
    """``eventops-<username>`` in AssumeRole's alphabet, at most 64 characters."""
    name = SESSION_NAME_PREFIX + (_iam_safe(identity) or "dashboard")
    return name[:64]


def source_identity(identity: str) -> str:
    """The username in AssumeRole's alphabet (2-64 characters), or "" when nobody acts."""
    safe = _iam_safe(identity)[:64]
    if not safe:
        return ""
    return safe if len(safe) >= 2 else f"{safe}-"


_current: contextvars.ContextVar[Acting | None] = contextvars.ContextVar(
    "eventops_aws_acting", default=None
)


def current() -> Acting | None:
    """The target and identity set by the innermost ``acting`` block, if any."""
    return _current.get()


@contextlib.contextmanager
def acting(target: Target, identity: str = SYSTEM_IDENTITY) -> Iterator[Acting]:
    """Send every AWS call made inside the block to ``target``, as ``identity``."""
    value = Acting(target, identity)
    token = _current.set(value)
    try:
        yield value
    finally:
        _current.reset(token)


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` whose tasks run in a copy of the submitter's context, so a
    fan-out of AWS calls keeps the caller's environment and identity."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        context = contextvars.copy_context()
        future: Future[T] = super().submit(context.run, fn, *args, **kwargs)  # type: ignore[arg-type]
        return future

    def map(self, fn: Callable[..., T], *iterables: Any, **kwargs: Any) -> Iterator[T]:
        context = contextvars.copy_context()

        def run(*args: Any) -> T:
            return context.copy().run(fn, *args)

        return super().map(run, *iterables, **kwargs)
