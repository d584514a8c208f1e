"""A real Celery worker runs our task, on the embedded filesystem broker or on Redis.

The broker is whatever the settings give: the filesystem broker by default, Redis
when REDIS_URL is set (CI runs this module a second time with REDIS_URL).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _env(var_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
    env["EVENTOPS_VAR_DIR"] = str(var_dir)
    return env


def test_worker_round_trip(tmp_path):
    env = _env(tmp_path / "var")
    marker = tmp_path / "pong.txt"
    token = uuid.uuid4().hex
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "dashboard",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "--loglevel=WARNING",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import django; django.setup(); from dashboard.celery import ping; "
                f"ping.delay({str(marker)!r}, {token!r})",
            ],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=60,
        )
        deadline = time.monotonic() + 90
        while not marker.exists() and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.2)
    finally:
        worker.terminate()
        try:
            output = worker.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            worker.kill()
            output = worker.communicate()[0]
    assert marker.exists(), f"the worker never ran the task; its output:\n{output}"
    assert marker.read_text() == token


def test_celery_only_speaks_json():
    from dashboard.celery import app

    assert app.conf.accept_content == ["json"]
    assert app.conf.task_serializer == "json"


def test_celery_has_time_limits_and_retries_the_broker_on_startup():
    from dashboard.celery import app

    assert 0 < app.conf.task_soft_time_limit < app.conf.task_time_limit
    assert app.conf.broker_connection_retry_on_startup is True
