"""The one place that creates boto3 clients.

Clients are created lazily, on first use, never at import time (moto could not
intercept a client made at import, and a test could reach real AWS). boto3
honours ``AWS_ENDPOINT_URL``, ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` and
``AWS_PROFILE`` and the standard credential chain. The Region is passed to boto3
only when one of the Region variables is set, so a profile's own Region applies;
``us-east-1`` is used only when nothing names one. Every client has explicit
connect and read timeouts and adaptive retries.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError
from django.conf import settings

# Used only when neither the environment nor the profile names a Region.
FALLBACK_REGION = "us-east-1"

_lock = threading.Lock()
_session: boto3.session.Session | None = None
_clients: dict[str, Any] = {}


def _config() -> Config:
    return Config(
        connect_timeout=settings.AWS_CONNECT_TIMEOUT,
        read_timeout=settings.AWS_READ_TIMEOUT,
        retries={"mode": "adaptive", "max_attempts": settings.AWS_MAX_ATTEMPTS},
        max_pool_connections=settings.AWS_MAX_POOL_CONNECTIONS,
        user_agent_extra="eventops",
    )


def session() -> boto3.session.Session:
    """The process-wide boto3 session (created on first use)."""
    global _session
    with _lock:
        if _session is None:
            _session = boto3.session.Session(
                profile_name=settings.AWS_PROFILE or None,
                region_name=settings.AWS_REGION or None,
            )
        return _session


def region() -> str:
    """The Region the clients use: ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else the
    profile's, else ``FALLBACK_REGION``."""
    try:
        resolved = session().region_name
    except BotoCoreError:  # e.g. AWS_PROFILE names no profile: the AWS reads will say so
        resolved = None
    return resolved or settings.AWS_REGION or FALLBACK_REGION


def client(service: str) -> Any:
    """A shared, thread-safe client for ``service`` ("sqs", "events", ...)."""
    existing = _clients.get(service)
    if existing is not None:
        return existing
    sess = session()
    with _lock:
        if service not in _clients:
            kwargs: dict[str, Any] = {"config": _config()}
            if not sess.region_name:
                kwargs["region_name"] = FALLBACK_REGION
            if settings.AWS_ENDPOINT_URL:
                kwargs["endpoint_url"] = settings.AWS_ENDPOINT_URL
            _clients[service] = sess.client(service, **kwargs)
        return _clients[service]


def reset() -> None:
    """Forget the session and every client (tests, and after a fork)."""
    global _session
    with _lock:
        _session = None
        _clients.clear()
