"""Handlers create no AWS client at import or build time, and read the environment lazily."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from infra.functions import publisher
from infra.functions.config import ConfigurationError
from infra.functions.consumer import build_consumer_handler
from infra.functions.publisher import build_publisher

REPO_ROOT = Path(__file__).resolve().parents[3]
MODULES = [
    "infra.functions.config",
    "infra.functions.outbox",
    "infra.functions.orders",
    "infra.functions.publisher",
    "infra.functions.idempotency",
    "infra.functions.consumer",
    "infra.functions.consumers.billing",
    "infra.functions.consumers.shipping",
    "infra.functions.consumers.notifications",
    "infra.functions.consumers.analytics",
    "infra.functions.dlq_reprocessor",
]


@pytest.fixture
def no_clients(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    created: list[str] = []

    def refuse(self, service_name, *args, **kwargs):
        created.append(service_name)
        raise AssertionError(f"boto3 client {service_name} created too early")

    monkeypatch.setattr(boto3.session.Session, "client", refuse)
    return created


IMPORT_CHECK = """
import boto3, importlib, sys
created = []
boto3.session.Session.client = lambda self, name, *a, **k: created.append(name)
for module in sys.argv[1:]:
    importlib.import_module(module)
print(",".join(created) or "none")
"""


def test_importing_the_lambda_modules_creates_no_client():
    # A fresh interpreter: the modules are already imported (and cached) in this one.
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_CHECK, *MODULES],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO_ROOT,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "none"


def test_building_handlers_creates_no_client(no_clients):
    consumers = [build_consumer_handler(n, idempotency_table="t") for n in ("billing", "shipping")]
    built = build_publisher("bus", "table")

    assert no_clients == []
    assert all(callable(handler) for handler in [*consumers, built])


def test_publisher_handler_needs_its_bus_name(monkeypatch):
    monkeypatch.delenv("EVENT_BUS_NAME", raising=False)
    monkeypatch.setenv("ORDERS_TABLE", "orders")
    publisher.reset()

    with pytest.raises(ConfigurationError, match="EVENT_BUS_NAME"):
        publisher.handler({"Records": []}, None)
    publisher.reset()


def test_publisher_handler_builds_from_the_environment(monkeypatch):
    monkeypatch.setenv("EVENT_BUS_NAME", "bus-from-env")
    monkeypatch.setenv("ORDERS_TABLE", "orders-from-env")
    publisher.reset()

    result = publisher.handler({"Records": []}, None)

    assert result == {"batchItemFailures": []}
    assert (publisher._handler.bus_name, publisher._handler.table_name) == (
        "bus-from-env",
        "orders-from-env",
    )
    publisher.reset()
