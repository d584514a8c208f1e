"""Configuration and AWS clients for the Lambda code.

Handlers read their environment lazily (on the first invocation, never at import
time), and every boto3 client is created on first use. ``AWS_ENDPOINT_URL`` is
honoured by boto3 itself, which is how devstack points the handlers at its moto
server. Nothing here imports Django.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.config import Config

# Lambda code runs with short deadlines: fail a call fast and let the event source
# (SQS, the DynamoDB stream) retry, rather than hang until the function times out.
BOTO_CONFIG = Config(
    connect_timeout=5,
    read_timeout=10,
    retries={"mode": "standard", "max_attempts": 3},
)

_session_lock = threading.Lock()
_session: boto3.session.Session | None = None


class ConfigurationError(RuntimeError):
    """A required environment variable or setting is missing or invalid."""


def env(name: str, default: str | None = None) -> str:
    """The value of ``name``; raises ConfigurationError when unset and no default is given."""
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if default is not None:
        return default
    raise ConfigurationError(f"environment variable {name} is required")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"environment variable {name}={raw!r} is not an integer") from None


def new_client(service: str, *, endpoint_url: str | None = None) -> Any:
    """A new boto3 client with the Lambda timeouts and retries.

    Each handler object keeps its own clients (created on first use), so a test that
    builds a handler inside ``mock_aws`` gets mocked clients, and devstack can run
    several handlers in one process. All come from one session, created on first use,
    whose loader caches the service models (parsing them is most of a client's cost);
    clients are created under a lock because a session is not thread-safe.
    """
    global _session
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client(service, config=BOTO_CONFIG, endpoint_url=endpoint_url)
