"""The one place that creates boto3 clients.

Clients are created lazily, on first use, never at import time (moto could not
intercept a client made at import, and a test could reach real AWS). They talk to
the target of the current ``operations.aws.context.acting`` block (an environment:
its Region, profile, endpoint and role), or, outside one, to what ``AWS_ENDPOINT_URL``,
``AWS_REGION`` / ``AWS_DEFAULT_REGION`` and ``AWS_PROFILE`` and the standard
credential chain give. A target with a role is reached through ``sts:AssumeRole`` as
the acting person (``RoleSessionName`` ``eventops-<username>``, ``SourceIdentity``
``<username>``), so AWS's own audit names who acted. The Region is passed to boto3
only when one is set, so a profile's own Region applies; ``us-east-1`` is used only
when nothing names one. Every client has explicit
connect and read timeouts. Ordinary clients retry adaptively; the bulk SQS
client of the message functions is leaner (see ``_config``).
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.credentials import DeferredRefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError
from botocore.session import get_session
from django.conf import settings

from operations.aws import context
from operations.aws.context import Acting, Target
from operations.aws.errors import translate

# Used only when neither the environment nor the profile names a Region.
FALLBACK_REGION = "us-east-1"

# Assumed-role credentials last an hour; botocore assumes the role again 15 minutes before
# they expire (its advisory refresh), so a long redrive never runs on expired credentials.
ASSUMED_ROLE_SECONDS = 3600

_lock = threading.RLock()
# Keyed by (target, person): one session per person only where a role is assumed.
_sessions: dict[tuple[Target, str], boto3.session.Session] = {}
_clients: dict[tuple[Target, str, str, bool], Any] = {}


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


def default_target() -> Target:
    """Where calls go outside any ``acting`` block: the process's settings, as before
    environments existed (``AWS_REGION``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL``)."""
    return Target(
        # The name of the environment a dashboard without an environments file has
        # (operations/environments.py), so both share clients and cache entries.
        name="default",
        region=settings.AWS_REGION or "",
        profile=settings.AWS_PROFILE or "",
        endpoint_url=settings.AWS_ENDPOINT_URL or "",
    )


def _acting() -> Acting:
    return context.current() or Acting(default_target())


def _base_session(target: Target) -> boto3.session.Session:
    """The session of the target's own credentials (profile or the standard chain)."""
    key = (target, "")
    existing = _sessions.get(key)
    if existing is None:
        existing = _sessions[key] = boto3.session.Session(
            profile_name=target.profile or None, region_name=target.region or None
        )
    return existing


def sts_client(target: Target) -> Any:
    """The STS client that assumes ``target``'s role, with the target's own credentials."""
    base = _base_session(target)
    kwargs: dict[str, Any] = {"config": _config()}
    if target.endpoint_url:
        kwargs["endpoint_url"] = target.endpoint_url
    if not base.region_name:
        kwargs["region_name"] = FALLBACK_REGION
    return base.client("sts", **kwargs)


def _assumed_session(acting: Acting) -> boto3.session.Session:
    """A session that assumes the target's role as the acting person, and assumes it
    again shortly before the credentials expire (botocore's refreshable credentials)."""
    target = acting.target
    base = _base_session(target)
    sts = sts_client(target)

    def assume() -> dict[str, Any]:
        request: dict[str, Any] = {
            "RoleArn": target.role_arn,
            "RoleSessionName": acting.session_name,
            "DurationSeconds": ASSUMED_ROLE_SECONDS,
        }
        if acting.source_identity:
            request["SourceIdentity"] = acting.source_identity
        if target.external_id:
            request["ExternalId"] = target.external_id
        try:
            credentials = sts.assume_role(**request)["Credentials"]
        except (ClientError, BotoCoreError) as exc:
            # Raised from inside the call that needed the credentials: the adapter around
            # it passes an AwsError through, so the page names AssumeRole, not the call.
            raise translate(exc, "AssumeRole") from exc
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }

    botocore_session = get_session()
    botocore_session._credentials = DeferredRefreshableCredentials(  # noqa: SLF001
        refresh_using=assume, method="sts-assume-role"
    )
    return boto3.session.Session(
        botocore_session=botocore_session, region_name=base.region_name or None
    )


def session() -> boto3.session.Session:
    """The boto3 session of the current target and person (created on first use).

    Without a role it is the target's own session, shared by everyone; with a role, one
    session per person, so CloudTrail names who acted (``SourceIdentity``)."""
    acting = _acting()
    identity = acting.identity if acting.target.role_arn else ""
    key = (acting.target, identity)
    with _lock:
        existing = _sessions.get(key)
        if existing is None:
            if acting.target.role_arn:
                existing = _sessions[key] = _assumed_session(acting)
            else:
                existing = _base_session(acting.target)
        return existing


def region() -> str:
    """The Region the clients use: the target's, else the profile's, else
    ``FALLBACK_REGION``."""
    try:
        resolved = session().region_name
    except BotoCoreError:  # e.g. AWS_PROFILE names no profile: the AWS reads will say so
        resolved = None
    return resolved or _acting().target.region or FALLBACK_REGION


def client(service: str, *, bulk: bool = False) -> Any:
    """A shared, thread-safe client for ``service`` ("sqs", "events", ...) of the current
    target and person; ``bulk`` gives the lean client for high-volume message calls (see
    ``_config``)."""
    acting = _acting()
    identity = acting.identity if acting.target.role_arn else ""
    key = (acting.target, identity, service, bulk)
    existing = _clients.get(key)
    if existing is not None:
        return existing
    sess = session()
    with _lock:
        if key not in _clients:
            kwargs: dict[str, Any] = {"config": _config(bulk=bulk)}
            if not sess.region_name:
                kwargs["region_name"] = FALLBACK_REGION
            if acting.target.endpoint_url:
                kwargs["endpoint_url"] = acting.target.endpoint_url
            made = sess.client(service, **kwargs)
            _count_calls(made)
            _clients[key] = made
        return _clients[key]


def _count_calls(made: Any) -> None:
    """Count every call of ``made`` by service, operation and error code (``/metrics``)."""
    made.meta.events.register("after-call.*.*", _after_call)
    made.meta.events.register("after-call-error.*.*", _after_call_error)


def _after_call(http_response: Any = None, parsed: Any = None, model: Any = None, **_: Any) -> None:
    from operations import metrics

    error = ""
    if isinstance(parsed, dict) and getattr(http_response, "status_code", 200) >= 300:
        error = str(parsed.get("Error", {}).get("Code", "") or "HTTP error")
    service = model.service_model.service_name if model is not None else "unknown"
    metrics.aws_call(service, model.name if model is not None else "unknown", error)


def _after_call_error(event_name: str = "", exception: Any = None, **_: Any) -> None:
    from operations import metrics

    parts = event_name.split(".")
    service, operation = (parts[1], parts[2]) if len(parts) >= 3 else ("unknown", "unknown")
    metrics.aws_call(service, operation, type(exception).__name__)


def override(service: str, instance: Any, *, bulk: bool = False) -> None:
    """Use ``instance`` as the ``service`` client of the current target and person (tests
    stub the APIs moto lacks this way)."""
    acting = _acting()
    identity = acting.identity if acting.target.role_arn else ""
    with _lock:
        _clients[(acting.target, identity, service, bulk)] = instance


def reset() -> None:
    """Forget every session and client (tests, and after a fork)."""
    with _lock:
        _sessions.clear()
        _clients.clear()
