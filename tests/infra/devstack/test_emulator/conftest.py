"""One moto server, with the emulator extensions installed, for every emulator test.

Tests talk to it with plain boto3 clients through ``endpoint_url``, as the devstack's users do.
Every test creates its own uniquely named resources, so the order of tests does not matter.
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.core.base_backend import BackendDict
from moto.server import ThreadedMotoServer

from infra.devstack import emulator


@dataclass
class Stack:
    url: str
    emulator: emulator.Emulator


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="package")
def stack() -> Iterator[Stack]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    emu = emulator.install()
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield Stack(f"http://127.0.0.1:{port}", emu)
    finally:
        server.stop()
        emulator.uninstall()
        BackendDict.reset()


@pytest.fixture
def client(stack: Stack) -> Callable[[str], Any]:
    """``client("sqs")``: a boto3 client pointed at the emulator."""

    def make(service: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=stack.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    return make


@pytest.fixture
def name() -> str:
    """A unique resource name for this test."""
    return f"t{uuid.uuid4().hex[:10]}"
