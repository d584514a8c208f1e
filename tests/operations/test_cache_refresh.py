"""One refresh per key, whoever asks: threads and processes hammering one expired key.

Run on the three caches the dashboard is deployed with: local memory (one process), the
file cache (the embedded default, shared by the processes of one machine) and Redis
(db 12 of the local server; skipped when none answers).
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test.utils import override_settings

from operations import cache as read_cache
from operations.aws.errors import AwsError

REDIS_URL = "redis://127.0.0.1:6379/12"
VIEWERS = 20
FETCH_SECONDS = 0.3


def _redis_answers() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except Exception:
        return False


def _caches(kind: str, tmp_path: Path) -> dict:
    if kind == "file":
        return {
            "default": {
                "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                "LOCATION": str(tmp_path / "cache"),
            }
        }
    if kind == "redis":
        return {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": REDIS_URL,
                "KEY_PREFIX": f"eventops-test-{uuid.uuid4().hex[:8]}",
            }
        }
    return {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.fixture(params=["locmem", "file", "redis"])
def backend(request, tmp_path, settings):
    if request.param == "redis" and not _redis_answers():
        pytest.skip("no Redis at 127.0.0.1:6379")
    settings.EVENTOPS_CACHE_TTL = 15
    settings.EVENTOPS_CACHE_STALE_SECONDS = 60
    settings.EVENTOPS_RESOURCE_PREFIX = ""
    with override_settings(CACHES=_caches(request.param, tmp_path)):
        yield request.param
        read_cache.wait_for_background()


class SlowFetch:
    """A fetch that takes FETCH_SECONDS and counts its calls (thread-safe)."""

    def __init__(self, value: object = "new", error: AwsError | None = None) -> None:
        self.calls = Counter()
        self.value, self.error = value, error
        self._lock = threading.Lock()

    def __call__(self) -> object:
        with self._lock:
            self.calls["fetch"] += 1
        time.sleep(FETCH_SECONDS)
        if self.error is not None:
            raise self.error
        return self.value


def hammer(name: str, fetch: SlowFetch, viewers: int = VIEWERS) -> list:
    """``viewers`` threads read ``name`` at the same moment; returns their results."""
    barrier = threading.Barrier(viewers)
    results: list = [None] * viewers

    def viewer(index: int) -> None:
        barrier.wait()
        started = time.monotonic()
        results[index] = (read_cache.cached(name, fetch), time.monotonic() - started)

    threads = [threading.Thread(target=viewer, args=(i,)) for i in range(viewers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def expire(name: str, value: object, age: float) -> None:
    """Put ``value`` in the cache as if fetched ``age`` seconds ago."""
    cache.set(read_cache.cache_key(name), (time.time() - age, value), timeout=3600)


def test_viewers_of_an_expired_key_cause_one_fetch_and_get_a_value_at_once(backend):
    expire("lark-hot", "old", age=20)
    fetch = SlowFetch()

    results = hammer("lark-hot", fetch)

    assert fetch.calls["fetch"] == 1
    waited_for_nothing = [r for r, took in results if r.value == "old" and took < FETCH_SECONDS]
    assert len(waited_for_nothing) == VIEWERS - 1


def test_viewers_of_an_empty_key_wait_for_one_fetch(backend):
    fetch = SlowFetch()

    results = hammer("lark-cold", fetch)

    assert fetch.calls["fetch"] == 1
    assert {r.value for r, _took in results} == {"new"}


def test_a_failure_is_fetched_once_and_shared(backend):
    error = AwsError("Rate exceeded", code="Throttling", operation="ListQueues", transient=True)
    fetch = SlowFetch(error=error)

    results = hammer("lark-down", fetch)
    again = read_cache.cached("lark-down", fetch)

    assert fetch.calls["fetch"] == 1
    assert all("Rate exceeded" in r.error for r, _took in results)
    assert "Rate exceeded" in again.error


def test_a_value_too_old_to_serve_makes_viewers_wait_for_the_refresh(backend, settings):
    settings.EVENTOPS_CACHE_STALE_SECONDS = 10
    expire("lark-ancient", "old", age=60)
    fetch = SlowFetch()

    results = hammer("lark-ancient", fetch)

    assert fetch.calls["fetch"] == 1
    assert {r.value for r, _took in results} == {"new"}


def test_in_background_the_caller_gets_the_last_value_and_the_fetch_runs_after(backend):
    expire("lark-bg", "old", age=20)
    fetch = SlowFetch()

    started = time.monotonic()
    with read_cache.refreshing_in_background():
        served = read_cache.cached("lark-bg", fetch)
    took = time.monotonic() - started
    read_cache.wait_for_background()

    assert served.value == "old" and took < FETCH_SECONDS
    assert fetch.calls["fetch"] == 1 and read_cache.cached("lark-bg", fetch).value == "new"


def test_in_background_a_first_fill_still_happens_in_the_request(backend):
    fetch = SlowFetch()

    with read_cache.refreshing_in_background():
        served = read_cache.cached("lark-first", fetch)

    assert served.value == "new" and fetch.calls["fetch"] == 1


def test_a_fresh_value_is_served_without_taking_the_lock(backend, monkeypatch):
    expire("lark-fresh", "cached", age=1)
    monkeypatch.setattr(read_cache, "_lock_for", lambda key: pytest.fail("locked a fresh key"))

    assert read_cache.cached("lark-fresh", SlowFetch()).value == "cached"


# --- processes on the file cache ----------------------------------------------------------


def _process_viewer(name: str, barrier, log: str, results) -> None:  # runs in a child
    from operations.aws import client as aws_client

    aws_client.reset()

    def fetch() -> str:
        with open(log, "a") as out:
            out.write("fetch\n")
        time.sleep(FETCH_SECONDS)
        return "new"

    barrier.wait()
    results.append(read_cache.cached(name, fetch).value)


@pytest.mark.parametrize("age", [None, 20], ids=["empty", "expired"])
def test_processes_sharing_the_file_cache_cause_one_fetch(tmp_path, settings, age):
    settings.EVENTOPS_CACHE_TTL = 15
    settings.EVENTOPS_CACHE_STALE_SECONDS = 60
    settings.EVENTOPS_RESOURCE_PREFIX = ""
    log = tmp_path / "fetches.log"
    log.touch()
    context = multiprocessing.get_context("fork")
    with override_settings(CACHES=_caches("file", tmp_path)):
        if age is not None:
            expire("lark-procs", "old", age=age)
        barrier = context.Barrier(4)
        with context.Manager() as manager:
            results = manager.list()
            children = [
                context.Process(
                    target=_process_viewer, args=("lark-procs", barrier, str(log), results)
                )
                for _ in range(4)
            ]
            for child in children:
                child.start()
            for child in children:
                child.join(timeout=30)
            got = list(results)

    assert [child.exitcode for child in children] == [0, 0, 0, 0]
    assert log.read_text().count("fetch") == 1
    assert len(got) == 4 and "new" in got


def test_keys_of_any_aws_name_suit_every_backend() -> None:
    import warnings

    from django.core.cache.backends.base import memcache_key_warnings

    names = ["alarm:ördérs alarm", "queue:" + "q" * 80 + ":" + "x" * 200, "alarm:a\tb"]
    keys = [read_cache.cache_key(name) for name in names]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for key in keys:
            assert not list(memcache_key_warnings(key)), key
            assert len(key) < 250
    assert len(set(keys)) == 3
    assert read_cache.cache_key("alarm:orders-dlq").endswith(":alarm:orders-dlq")
    assert read_cache.cache_key("alarm:ördérs alarm") != read_cache.cache_key("alarm:ordrs alarm")


def test_first_reads_start_together_and_share_one_wait(monkeypatch) -> None:
    started: list[str] = []
    waits: list[list[str]] = []
    monkeypatch.setattr(read_cache, "start_once", lambda name, job: started.append(name) or True)
    monkeypatch.setattr(read_cache.time, "sleep", lambda s: waits.append(list(started)))
    reads = {n: (lambda n=n: read_cache.cached(n, lambda: 1)) for n in ("a", "b", "c")}

    found = read_cache.first_reads_in_background(reads, wait=0.2)

    assert started == ["a:first-read", "b:first-read", "c:first-read"]
    assert waits and all(seen == started for seen in waits)  # every job began before a wait
    assert all(result.error == read_cache.STILL_READING for result in found.values())
