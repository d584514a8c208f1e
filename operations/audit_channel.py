"""Through which face an operation was asked for: the pages (""), or the REST API and the
name of its token. The API sets it around each request; ``Operation`` rows take it as the
default of ``via`` and ``via_token``, so no service needs a new argument."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

API = "api"

_channel: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar(
    "eventops_audit_channel", default=("", "")
)


@contextlib.contextmanager
def acting_via(channel: str, token_name: str = "") -> Iterator[None]:
    """Operations created inside record ``channel`` ("api") and the token's name."""
    reset = _channel.set((channel, token_name))
    try:
        yield
    finally:
        _channel.reset(reset)


def current_via() -> str:
    return _channel.get()[0]


def current_token_name() -> str:
    return _channel.get()[1][:100]
