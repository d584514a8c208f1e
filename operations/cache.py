"""Read cache for AWS data, with stale-on-error.

Every read the dashboard makes goes through ``cached(key, fetch)``:

- within ``EVENTOPS_CACHE_TTL`` seconds of the last good fetch, the cached value
  is returned and AWS is not called (ten engineers cost what one does);
- after that, ``fetch`` runs again; if it raises ``AwsError``, the last good
  value is returned marked stale, with the error, for up to ``STALE_SECONDS``;
- a failure is remembered too (the error and when), for the read TTL: during an
  AWS outage every view and every poll within that time gets the stale value and
  the error without calling AWS again (each call could take its retries and
  timeouts, longer than a request may last).

The result is a ``Cached`` that a panel renders: the value (possibly stale),
and the error message to show next to it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.core.cache import cache

from operations import explain
from operations.aws import client as aws_client
from operations.aws import context as aws_context
from operations.aws.errors import AwsError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# How long the last good value is kept to be shown (stale) when AWS fails.
STALE_SECONDS = 24 * 3600


def describe_error(error: AwsError) -> str:
    """A one-line message for a page (see ``operations.explain``)."""
    return explain.describe(error)


@dataclass(frozen=True)
class Cached(Generic[T]):
    """A cached read: ``value`` is None only when no good value was ever fetched."""

    value: T | None
    fetched_at: float | None
    error: str = ""
    error_code: str = ""
    access_denied: bool = False
    max_age: int = 0
    failed_at: float | None = None
    error_kind: str = ""  # an ``explain.Kind``
    command_error: str = ""  # ``error`` worded for command output

    @property
    def fresh_until(self) -> float | None:
        """Until when a read returns this same value from the cache (None: the
        next read goes to AWS, because it failed or caching is off)."""
        if self.error or self.fetched_at is None or self.max_age <= 0:
            return None
        return self.fetched_at + self.max_age

    @property
    def stale(self) -> bool:
        return bool(self.error) and self.value is not None

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def fetched(self) -> datetime | None:
        if self.fetched_at is None:
            return None
        return datetime.fromtimestamp(self.fetched_at, tz=UTC)


def topology_prefix() -> str:
    from operations.topology import resource_prefix

    return resource_prefix()


def cache_key(name: str) -> str:
    """A key scoped to the environment the read is for (its name, endpoint, Region,
    profile and role) and the resource prefix: the same page of two environments never
    shares an entry, while every viewer of one environment shares it."""
    acting = aws_context.current()
    target = acting.target if acting is not None else aws_client.default_target()
    scope = "|".join(
        [
            target.name,
            target.endpoint_url,
            target.region,
            target.profile,
            target.role_arn,
            topology_prefix(),
        ]
    )
    digest = hashlib.sha1(scope.encode(), usedforsecurity=False).hexdigest()[:10]
    return f"eventops:aws:{digest}:{name}"


def fresh_until(sources: list[Cached[Any]]) -> float | None:
    """Until when every one of ``sources`` stays as it is (None if one will not)."""
    times = [source.fresh_until for source in sources]
    if not times or any(t is None for t in times):
        return None
    return min(t for t in times if t is not None)


def remember(name: str, until: float | None, value: object) -> None:
    """Keep a value derived from cached reads (a rendered fragment) until ``until``."""
    if until is not None and until > time.time():
        cache.set(cache_key(name), (until, value), timeout=max(1, int(until - time.time()) + 1))


def recall(name: str) -> Any:
    """A value kept by ``remember`` that is still valid, else None."""
    entry = cache.get(cache_key(name))
    if entry is not None and time.time() < entry[0]:
        return entry[1]
    return None


def ttl() -> int:
    return int(getattr(settings, "EVENTOPS_CACHE_TTL", 15))


def _failure_key(key: str) -> str:
    return f"{key}:failed"


def cached(name: str, fetch: Callable[[], T], *, max_age: int | None = None) -> Cached[T]:
    """The value of ``fetch()``, from the cache when fresh, stale on ``AwsError``.

    A failure is remembered for ``min(max_age, ttl())`` seconds (the read TTL, so a
    long-lived structure read retries as soon as an ordinary one would): within
    that time ``fetch`` is not called and the same stale value and error are
    returned. Only ``AwsError`` is caught: any other exception is a bug and propagates.
    """
    key = cache_key(name)
    failure_key = _failure_key(key)
    max_age = ttl() if max_age is None else max_age
    now = time.time()
    found = cache.get_many([key, failure_key])
    entry = found.get(key)
    failure = found.get(failure_key)
    if entry is not None and max_age > 0 and now - entry[0] < max_age:
        return Cached(value=entry[1], fetched_at=entry[0], max_age=max_age)
    remember_failure = min(max_age, ttl())
    if failure is not None and remember_failure > 0 and now - failure[0] < remember_failure:
        return _failed(entry, failure)
    try:
        value = fetch()
    except AwsError as exc:
        logger.warning("AWS read %s failed: %s", name, exc)
        failure = (
            now,
            describe_error(exc),
            exc.code,
            exc.access_denied,
            str(explain.kind_of(exc)),
            explain.describe(exc, command=True),
        )
        if remember_failure > 0:
            cache.set(failure_key, failure, timeout=remember_failure + 1)
        return _failed(entry, failure)
    cache.set(key, (now, value), timeout=max(STALE_SECONDS, max_age))
    if failure is not None:
        cache.delete(failure_key)
    return Cached(value=value, fetched_at=now, max_age=max_age)


def lookup(name: str) -> Cached[Any] | None:
    """What ``cached(name, ...)`` last got (a value, possibly stale, or a failure), without
    fetching; None when nothing was read yet or it has expired."""
    key = cache_key(name)
    found = cache.get_many([key, _failure_key(key)])
    entry, failure = found.get(key), found.get(_failure_key(key))
    if failure is not None:
        return _failed(entry, failure)
    if entry is not None:
        return Cached(value=entry[1], fetched_at=entry[0], max_age=ttl())
    return None


def _failed(entry: tuple[float, Any] | None, failure: tuple[Any, ...]) -> Cached[Any]:
    # Entries written before the kind was kept have four fields.
    failed_at, error, code, access_denied, kind, command_error = (*failure, "", "")[:6]
    return Cached(
        value=entry[1] if entry is not None else None,
        fetched_at=entry[0] if entry is not None else None,
        error=error,
        error_code=code,
        access_denied=access_denied,
        failed_at=failed_at,
        error_kind=kind,
        command_error=command_error or error,
    )
