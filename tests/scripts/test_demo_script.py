"""scripts/demo.sh: ``make serve`` (NO_DEVSTACK=1) never creates the demo users.

The script runs with a stand-in for Python that records every command it is asked to run
and answers at once, so no emulator, worker or server starts."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAKE_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$CALLS"
case "$*" in
  *createdemousers*) echo "Password for oncall and viewer (generated): pw-123456789" ;;
  *"celery -A dashboard worker"*) exit 0 ;;  # the first child to end ends the script
  *runserver*|*beat*|*devstack*) sleep 30 ;;
esac
"""


def run_demo(tmp_path: Path, **env: str) -> tuple[str, list[str]]:
    python = tmp_path / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    calls = tmp_path / "calls"
    calls.touch()
    environ = {
        **{k: v for k, v in os.environ.items() if k not in {"NO_DEVSTACK", "DEBUG"}},
        "PY": str(python),
        "CALLS": str(calls),
        "PORT": "1",
        **env,
    }
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo.sh")],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout, calls.read_text().splitlines()


def test_serve_never_creates_demo_users(tmp_path):
    out, calls = run_demo(tmp_path, NO_DEVSTACK="1")
    assert any("runserver" in call for call in calls)
    assert not any("createdemousers" in call for call in calls)
    assert "pw-123456789" not in out and "createsuperuser" in out


def test_the_box_of_serve_names_no_demo_user(tmp_path):
    out, _ = run_demo(tmp_path, NO_DEVSTACK="1")
    assert "oncall" not in out and "eventops is running" in out
