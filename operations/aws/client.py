"""The one place that creates boto3 clients.

Clients are created lazily, on first use, never at import time (moto could not
intercept a client made at import, and a test could reach real AWS). boto3
honours ``AWS_ENDPOINT_URL``, ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` and
``AWS_PROFILE`` and the standard credential chain. The Region is passed to boto3
only when one of the Region variables is set, so a profile's own Region applies;
``us-east-1`` is used only when nothing names one. Every client has explicit
connect and read timeouts. Ordinary clients retry adaptively; the bulk SQS
client of the message functions is leaner (see ``_config``).
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


def _config(*, bulk: bool = False) -> Config:
    """Timeouts, retries and pool size of every client.

    A ``bulk`` client serves the per-message SQS calls that a redrive makes thousands
    of (receive, send, delete, change visibility). Its callers build each request from
    what SQS itself returned, so it skips botocore's client-side parameter validation
    (SQS still validates every request, and a refusal is an ``AwsError`` like any other),
    and it uses standard rather than adaptive retries, whose client-side rate limiter a
    single sequential caller does not need. Those retries are the only ones for whole
    calls (the redrive retries only the failed entries of a batch that succeeded). At
    zero network latency, dropping the two makes a redrive 10-15 % faster
    (bench/redrive.py)."""
    return Config(
        connect_timeout=settings.AWS_CONNECT_TIMEOUT,
        read_timeout=settings.AWS_READ_TIMEOUT,
        retries={
            "mode": "standard" if bulk else "adaptive",
            "max_attempts": settings.AWS_MAX_ATTEMPTS,
        },
        parameter_validation=not bulk,
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


def client(service: str, *, bulk: bool = False) -> Any:
    """A shared, thread-safe client for ``service`` ("sqs", "events", ...); ``bulk``
    gives the lean client for high-volume message calls (see ``_config``)."""
    key = f"{service}:bulk" if bulk else service
    existing = _clients.get(key)
    if existing is not None:
        return existing
    sess = session()
    with _lock:
        if key not in _clients:
            kwargs: dict[str, Any] = {"config": _config(bulk=bulk)}
            if not sess.region_name:
                kwargs["region_name"] = FALLBACK_REGION
            if settings.AWS_ENDPOINT_URL:
                kwargs["endpoint_url"] = settings.AWS_ENDPOINT_URL
            _clients[key] = sess.client(service, **kwargs)
        return _clients[key]


def reset() -> None:
    """Forget the session and every client (tests, and after a fork)."""
    global _session
    with _lock:
        _session = None
        _clients.clear()
