"""Shared fixtures: personas and a mocked AWS."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from operations import cache as read_cache
from operations.aws import client as aws_client

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture(autouse=True, scope="session")
def _in_memory_broker() -> Iterator[None]:
    """Tasks enqueued by in-process tests go to an in-memory broker, never to the
    developer's var/celery folder or a shared Redis. Tests that need a real broker
    start their own worker and enqueue from a subprocess with their own settings."""
    from dashboard.celery import app

    previous = app.conf.broker_url
    app.conf.broker_url = "memory://"
    yield
    app.conf.broker_url = previous


def pytest_configure(config: pytest.Config) -> None:
    """With EVENTOPS_TEST_CLOCK_AHEAD_DAYS=N the whole run, collection included, has the
    clock N days ahead (``make test-clock-ahead``, run by CI with 60): a test that only
    works near the day it was written fails there. time-machine moves Python's wall clock
    (time.time, datetime.now, in every thread, moto's included) but not the monotonic clock
    that timeouts and lock waits use, which is what an LD_PRELOAD faketime breaks."""
    _local_memory_cache_for_tests()
    days = os.environ.get("EVENTOPS_TEST_CLOCK_AHEAD_DAYS", "").strip()
    if days:
        import time_machine

        ahead = datetime.now(UTC) + timedelta(days=int(days))
        traveller = time_machine.travel(ahead, tick=True)
        traveller.start()
        config.stash[_CLOCK_AHEAD] = traveller


def _local_memory_cache_for_tests() -> None:
    """In-process tests use a local-memory cache, emptied before each test, instead of the
    embedded default's file cache under var/ (shared with a dev server, and slower).
    tests/operations/test_cache_refresh.py tests the file cache itself; a Redis cache
    (CI's integration pass, REDIS_URL) is kept."""
    from django.conf import settings
    from django.test.utils import override_settings

    if settings.CACHES["default"]["BACKEND"].endswith("FileBasedCache"):
        local = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        override_settings(CACHES=local).enable()


def pytest_unconfigure(config: pytest.Config) -> None:
    traveller = config.stash.get(_CLOCK_AHEAD, None)
    if traveller is not None:
        traveller.stop()


def pytest_report_header(config: pytest.Config) -> str | None:
    if _CLOCK_AHEAD in config.stash:
        return f"clock ahead: tests run at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    return None


_CLOCK_AHEAD = pytest.StashKey[Any]()


@pytest.fixture(autouse=True)
def _fresh_local_cache() -> None:
    """Every test starts with an empty local-memory cache: cached reads (and remembered
    AWS failures) must not leak from one test into the next. A Redis cache (CI's
    integration pass) is left alone, since clearing it would flush the whole database."""
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    backend = caches["default"]
    if isinstance(backend, LocMemCache):
        backend.clear()
    read_cache.forget_local()


@pytest.fixture(autouse=True)
def _first_overview_waits_for_its_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Page tests see the complete first overview, however busy the machine: the
    first-ever view waits for the background read (bounded in production, see
    dashboard/views/overview.py; tests/dashboard/test_overview_refresh.py tests that)."""
    from dashboard.views import overview

    monkeypatch.setattr(overview, "FIRST_FILL_SECONDS", 60.0)
    # The same for the queue page's first read of rules, alarms and mappings.
    monkeypatch.setattr(read_cache, "FIRST_READ_SECONDS", 60.0)


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials for every test, so nothing can reach a real account."""
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws_client.reset()
    yield
    # No refresh a page started in the background outlives the test (and its fake AWS).
    read_cache.wait_for_background()
    aws_client.reset()


@pytest.fixture
def aws(settings) -> Iterator[None]:
    """moto's mock_aws around the test, with the dashboard's client cache reset, and SQS
    receives and deletes made atomic as on AWS (moto loses concurrent ones: see
    ``moto_fixes.make_sqs_thread_safe``; a redrive's pipelines delete at once)."""
    from moto import mock_aws

    from infra.devstack.emulator._patches import Patcher
    from infra.devstack.emulator.moto_fixes import make_sqs_thread_safe

    settings.AWS_ENDPOINT_URL = ""
    settings.AWS_PROFILE = ""
    settings.AWS_REGION = "us-east-1"
    patcher = Patcher()
    make_sqs_thread_safe(patcher)
    try:
        with mock_aws():
            aws_client.reset()
            yield
            # A page may have left a refresh running in the background: it ends inside moto.
            read_cache.wait_for_background()
    finally:
        patcher.undo_all()
    aws_client.reset()


# --- personas ------------------------------------------------------------------------
PASSWORD = "correct-horse-battery-staple"


def ensure_groups() -> None:
    """The groups the data migration creates. ``transactional_db`` flushes them, so
    personas make sure they exist (same code path as the migration)."""
    from django.apps import apps as django_apps

    for name in ("0002_groups", "0004_action_permissions"):
        module = importlib.import_module(f"operations.migrations.{name}")
        module.create_groups(django_apps, None)


def _persona(username: str, group: str):
    from django.contrib.auth.models import Group, User

    ensure_groups()
    user, _ = User.objects.get_or_create(username=username)
    user.set_password(PASSWORD)
    user.save()
    user.groups.set([Group.objects.get(name=group)])
    return user


@pytest.fixture
def operator(db):
    """A user in the ``operator`` group (may run operations)."""
    return _persona("oncall", "operator")


@pytest.fixture
def viewer(db):
    """A user in the ``viewer`` group (read-only)."""
    return _persona("viewer", "viewer")


@pytest.fixture
def admin(db):
    """A user in the ``admin`` group (may also delete, edit and see bodies unmasked)."""
    return _persona("admin", "admin")


@pytest.fixture
def admin_client(client, admin):
    client.force_login(admin)
    return client


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


# --- stubbed clients, for the APIs moto lacks ------------------------------------------


def _stubbed(service: str) -> Iterator[Stubber]:
    client = boto3.client(service, region_name="us-east-1")
    aws_client.override(service, client)
    try:
        with Stubber(client) as stubber:
            yield stubber
            stubber.assert_no_pending_responses()
    finally:
        aws_client.reset()


@pytest.fixture
def sqs_stub() -> Iterator[Stubber]:
    """The shared SQS client, stubbed: for the APIs moto lacks (the native move task).
    Every response a test adds must be used."""
    yield from _stubbed("sqs")


@pytest.fixture
def events_stub() -> Iterator[Stubber]:
    """The shared EventBridge client, stubbed: the exact replay requests, and AWS errors
    moto never answers with (throttling, 5xx). Every response a test adds must be used."""
    yield from _stubbed("events")
