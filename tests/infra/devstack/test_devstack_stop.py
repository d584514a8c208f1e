"""SIGTERM stops the devstack process within 5 seconds, running or still starting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
STOP_LIMIT_S = 5.0


@pytest.fixture
def devstack() -> Iterator[subprocess.Popen[str]]:
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    arguments = ["--port", "0", "--rate", "5", "--status-interval", "1"]
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.devstack", *arguments],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


def wait_for_line(process: subprocess.Popen[str], text: str, timeout_s: float = 60) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    for line in process.stdout:
        if text in line or time.monotonic() > deadline:
            return


def seconds_to_exit_after_sigterm(process: subprocess.Popen[str]) -> float:
    start = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        return float("inf")
    return time.monotonic() - start


def test_sigterm_stops_a_devstack_with_traffic_within_five_seconds(devstack) -> None:
    wait_for_line(devstack, "moto server on")
    wait_for_line(devstack, "devstack: orders=")  # traffic, pollers and ticker all running

    took = seconds_to_exit_after_sigterm(devstack)

    assert took <= STOP_LIMIT_S
    assert devstack.returncode == 0


def test_sigterm_while_starting_stops_within_five_seconds(devstack) -> None:
    # Logged once moto is patched, before the server starts and the topology is built.
    wait_for_line(devstack, "emulator extensions installed")

    took = seconds_to_exit_after_sigterm(devstack)

    assert took <= STOP_LIMIT_S
    assert devstack.returncode == 0  # handled, not killed by the signal
