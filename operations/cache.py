"""Read cache for AWS data: stale-while-revalidate, one refresh per key, stale-on-error.

Every read the dashboard makes goes through ``cached(key, fetch)``:

- within ``EVENTOPS_CACHE_TTL`` seconds of the last good fetch (its fresh-until),
  the cached value is returned and AWS is not called (ten engineers cost what one does);
- after that, ONE caller refreshes it, whoever asks and in whichever process: it takes
  a short lock in the cache (``cache.add`` on Redis and local memory, an ``flock``'d
  file on the file cache, whose ``add`` is not atomic across processes). Everyone
  else gets the last value at once while it is younger than fresh-until plus
  ``EVENTOPS_CACHE_STALE_SECONDS`` (the keep-until of a silent stale value); with no
  such value they wait briefly (``WAIT_SECONDS``) for the lock holder rather than all
  fetching the same thing;
- inside ``refreshing_in_background()`` (the overview and queue pages), the lock holder
  does not even wait: the fetch runs in a background thread and the viewer gets the
  last value; only the first fill of a key happens inside a request;
- if ``fetch`` raises ``AwsError``, the last good value is returned marked stale,
  with the error, for up to ``STALE_SECONDS``;
- a failure is remembered too (the error and when), for the read TTL: during an
  AWS outage every view and every poll within that time gets the stale value and
  the error without calling AWS again (each call could take its retries and
  timeouts, longer than a request may last). Waiters share it the same way.

The result is a ``Cached`` that a panel renders: the value (possibly stale),
and the error message to show next to it.
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.filebased import FileBasedCache

from operations import explain, metrics
from operations.aws import client as aws_client
from operations.aws import context as aws_context
from operations.aws.context import ContextThreadPoolExecutor
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
    return f"eventops:aws:{digest}:{_portable(name)}"


def _portable(name: str) -> str:
    """``name``, or for a name no cache backend takes as it is (AWS names may hold spaces
    and any Unicode: an alarm "ördérs alarm"; memcached refuses both, and keys past 250
    bytes), its printable start and a digest of the whole."""
    if name.isascii() and name.isprintable() and " " not in name and len(name) <= 160:
        return name
    digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:16]
    start = "".join(c for c in name[:80] if c.isascii() and c.isprintable() and c != " ")
    return f"{start}~{digest}"


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


def stale_seconds() -> int:
    """How long past its TTL a value is still served, silently, while one caller refreshes."""
    return int(getattr(settings, "EVENTOPS_CACHE_STALE_SECONDS", 60))


def _failure_key(key: str) -> str:
    return f"{key}:failed"


# A refresh lock expires after this long on the backends with expiry (Redis, local
# memory), so a holder that died frees the key; an flock'd file is freed by the kernel.
LOCK_SECONDS = 30
# Without a value to serve, a caller waits this long for the holder's result, polling.
WAIT_SECONDS = 5.0
POLL_SECONDS = 0.05


class _CacheLock:
    """``cache.add``: atomic on Redis (SET NX) and within one process on local memory."""

    def __init__(self, key: str) -> None:
        self.key = f"{key}:lock"
        self.token = uuid.uuid4().hex

    def acquire(self) -> bool:
        return bool(cache.add(self.key, self.token, timeout=LOCK_SECONDS))

    def release(self) -> None:
        if cache.get(self.key) == self.token:
            cache.delete(self.key)


class _FileLock:
    """An exclusive ``flock`` on a file next to the file cache: atomic across threads
    (each ``open`` is its own lock holder) and processes, and released by the kernel if
    the holder dies. The files stay (one per key): unlinking a lock file races with a
    process that has it open."""

    def __init__(self, directory: str, key: str) -> None:
        digest = hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()
        self.path = os.path.join(directory, "locks", f"{digest}.lock")
        self.fd: int | None = None

    def acquire(self) -> bool:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def _lock_for(key: str) -> _CacheLock | _FileLock:
    backend = caches["default"]
    if isinstance(backend, FileBasedCache):
        return _FileLock(str(getattr(backend, "_dir")), key)  # noqa: B009
    return _CacheLock(key)


# --- background refresh ----------------------------------------------------------------

_background_mode: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "eventops_refresh_in_background", default=False
)
_pool_lock = threading.Lock()
_pool: ContextThreadPoolExecutor | None = None
_pending: set[Future[Any]] = set()
BACKGROUND_WORKERS = 4


@contextlib.contextmanager
def refreshing_in_background() -> Iterator[None]:
    """Within the block, a stale read that has a value to serve is refreshed in a
    background thread (in the caller's environment and identity), never in the caller."""
    token = _background_mode.set(True)
    try:
        yield
    finally:
        _background_mode.reset(token)


def _submit(job: Callable[[], None]) -> None:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ContextThreadPoolExecutor(
                max_workers=BACKGROUND_WORKERS, thread_name_prefix="eventops-refresh"
            )
        future = _pool.submit(job)
        _pending.add(future)
    future.add_done_callback(_pending.discard)


def start_once(name: str, job: Callable[[], object]) -> bool:
    """Run ``job`` in a background thread (in the caller's environment and identity)
    unless a job of that ``name`` runs already, in this process or another; returns
    whether it started one."""
    lock = _lock_for(f"{cache_key(name)}:job")
    if not lock.acquire():
        return False

    def run() -> None:
        try:
            job()
        finally:
            lock.release()

    _submit(run)
    return True


def wait_for_background(timeout: float = 30.0) -> None:
    """Wait for the background refreshes started so far (tests and benchmarks)."""
    futures.wait(list(_pending), timeout=timeout)


# --- the read ------------------------------------------------------------------------------


def cached(
    name: str, fetch: Callable[[], T], *, max_age: int | None = None, stale: int | None = None
) -> Cached[T]:
    """The value of ``fetch()``, from the cache when fresh, stale on ``AwsError``.

    Past its TTL, one caller refreshes (see the module docstring) and the others get
    the last value for ``stale`` seconds more (``EVENTOPS_CACHE_STALE_SECONDS`` unless
    given: reads that change only on deploys pass their own TTL), or wait for it.

    A failure is remembered for ``min(max_age, ttl())`` seconds (the read TTL, so a
    long-lived structure read retries as soon as an ordinary one would): within
    that time ``fetch`` is not called and the same stale value and error are
    returned. Only ``AwsError`` is caught: any other exception is a bug and propagates.
    """
    key = cache_key(name)
    max_age = ttl() if max_age is None else max_age
    entry, failure = _read(key, shared=not _background_mode.get())
    if max_age <= 0:
        return _refresh(name, key, fetch, max_age, entry, failure)
    now = time.time()
    settled = _settled(entry, failure, max_age)
    if settled is not None:
        return settled
    stale = stale_seconds() if stale is None else stale
    servable = entry is not None and now - entry[0] < max_age + stale
    lock = _lock_for(key)
    handed_off = False
    if lock.acquire():
        try:
            # Someone may have refreshed (or failed) between our read and our lock.
            entry, failure = _read(key)
            settled = _settled(entry, failure, max_age)
            if settled is not None:
                return settled
            if servable and entry is not None and _background_mode.get():
                held, handed_off = lock, True

                def job() -> None:
                    try:
                        _refresh(name, key, fetch, max_age, entry, failure)
                    finally:
                        held.release()

                _submit(job)
                return Cached(value=entry[1], fetched_at=entry[0], max_age=max_age)
            return _refresh(name, key, fetch, max_age, entry, failure)
        finally:
            if not handed_off:
                lock.release()
    if servable and entry is not None:
        # Another caller is refreshing it: the last value, now.
        return Cached(value=entry[1], fetched_at=entry[0], max_age=max_age)
    return _wait_for_refresh(name, key, fetch, max_age, entry)


# A remembered failure: (when, page wording, code, access denied, kind, command wording);
# entries written before the kind was kept have the first four only.
Failure = tuple[Any, ...]


def _settled(
    entry: tuple[float, Any] | None, failure: Failure | None, max_age: int
) -> Cached[Any] | None:
    """The fresh value, or the remembered failure; None when a fetch is due."""
    now = time.time()
    if entry is not None and now - entry[0] < max_age:
        metrics.cache_lookup(hit=True)
        return Cached(value=entry[1], fetched_at=entry[0], max_age=max_age)
    remember_failure = min(max_age, ttl())
    if failure is not None and remember_failure > 0 and now - failure[0] < remember_failure:
        metrics.cache_lookup(hit=True)
        return _failed(entry, failure)
    return None


# Pages (inside ``refreshing_in_background``) keep what they read in this process for up
# to LOCAL_SECONDS: twenty viewers polling each second then unpickle a 2,000-queue
# inventory (about 50 ms) once a second per process instead of twenty times. Locks,
# waits and refreshes always read the shared cache.
LOCAL_SECONDS = 1.0
_LOCAL_LIMIT = 512
_local: dict[str, tuple[float, Any]] = {}


def forget_local() -> None:
    """Drop this process's short-lived copies (after emptying the shared cache)."""
    _local.clear()


Entry = tuple[tuple[float, Any] | None, Failure | None]


def _read(key: str, *, shared: bool = True) -> Entry:
    if not shared:
        hit = _local.get(key)
        if hit is not None and time.monotonic() < hit[0]:
            return hit[1]
    found = cache.get_many([key, _failure_key(key)])
    result = (found.get(key), found.get(_failure_key(key)))
    if _background_mode.get():
        if len(_local) >= _LOCAL_LIMIT:
            now = time.monotonic()
            for stale in [k for k, (until, _) in _local.items() if until <= now]:
                _local.pop(stale, None)
        _local[key] = (time.monotonic() + LOCAL_SECONDS, result)
    return result


def _refresh(
    name: str,
    key: str,
    fetch: Callable[[], T],
    max_age: int,
    entry: tuple[float, Any] | None,
    failure: Failure | None,
) -> Cached[T]:
    """Fetch now, and store the value or the failure."""
    now = time.time()
    remember_failure = min(max_age, ttl())
    metrics.cache_lookup(hit=False)
    try:
        value = fetch()
    except AwsError as exc:
        logger.warning("AWS read %s failed: %s", name, exc)
        failure = _failure_of(exc, now)
        if remember_failure > 0:
            cache.set(_failure_key(key), failure, timeout=remember_failure + 1)
        _local.pop(key, None)
        return _failed(entry, failure)
    cache.set(key, (now, value), timeout=max(STALE_SECONDS, max_age))
    if failure is not None:
        cache.delete(_failure_key(key))
    _local.pop(key, None)
    return Cached(value=value, fetched_at=now, max_age=max_age)


def _failure_of(exc: AwsError, when: float) -> Failure:
    return (
        when,
        describe_error(exc),
        exc.code,
        exc.access_denied,
        str(explain.kind_of(exc)),
        explain.describe(exc, command=True),
    )


def failed_read(exc: AwsError) -> Cached[Any]:
    """A read that failed now with ``exc``, worded as a cached read's failure."""
    return _failed(None, _failure_of(exc, time.time()))


def _wait_for_refresh(
    name: str,
    key: str,
    fetch: Callable[[], T],
    max_age: int,
    entry: tuple[float, Any] | None,
) -> Cached[T]:
    """No value worth serving and someone else is fetching: wait for their value or
    failure, take over if their lock frees without one, give up after WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        latest, failure = _read(key)
        settled = _settled(latest, failure, max_age)
        if settled is not None:
            return settled
        lock = _lock_for(key)
        if lock.acquire():
            try:
                latest, failure = _read(key)
                settled = _settled(latest, failure, max_age)
                if settled is not None:
                    return settled
                return _refresh(name, key, fetch, max_age, latest, failure)
            finally:
                lock.release()
    return _failed(entry, (time.time(), STILL_READING, "", False))


STILL_READING = "Still reading this from AWS; it will show on the next refresh."
# A page that finds a read never made waits this long for the background read.
FIRST_READ_SECONDS = 1.0


def first_reads_in_background(
    reads: dict[str, Callable[[], Cached[Any]]], wait: float | None = None
) -> dict[str, Cached[Any]]:
    """Each ``reads[name]()`` (a ``cached(name, ...)`` read), unless it was never made:
    then it runs in a background job (one, whoever asks), and the caller gets its result
    if it comes within ``wait`` seconds (all of them share the wait), else a "still
    reading" failure that the page shows like any other, and fills in on the next poll.
    A cold dashboard at 1,000 consumers spends thousands of calls on such a read (every
    rule's targets): never inside a request. Caching off (TTL 0): nothing could keep a
    background result, so they are read now."""
    found: dict[str, Cached[Any]] = {}
    pending: list[str] = []
    for name, read in reads.items():
        if ttl() <= 0 or lookup(name) is not None:
            found[name] = read()
        else:
            start_once(f"{name}:first-read", read)
            pending.append(name)
    deadline = time.monotonic() + (FIRST_READ_SECONDS if wait is None else wait)
    while pending and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        for name in list(pending):
            result = lookup(name)
            if result is not None:
                found[name] = result
                pending.remove(name)
    for name in pending:
        found[name] = _failed(None, (time.time(), STILL_READING, "", False))
    return {name: found[name] for name in reads}


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


def forget(name: str) -> None:
    """Drop a cached read and its remembered failure: the next read goes to AWS (after a
    change made here, such as a delete, that the cached value would hide)."""
    key = cache_key(name)
    cache.delete_many([key, _failure_key(key)])
    _local.pop(key, None)
