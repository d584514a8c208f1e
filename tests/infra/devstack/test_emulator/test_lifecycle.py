"""The emulator's public lifecycle: install once, tick, loop, uninstall."""

from __future__ import annotations

import threading

from moto.xray.responses import XRayResponse

from infra.devstack import emulator
from infra.devstack.emulator import Emulator


def test_install_is_idempotent_and_current_returns_the_instance(stack):
    assert emulator.install() is stack.emulator
    assert emulator.current() is stack.emulator


def test_tick_reports_what_it_wrote(client, stack, name):
    client("sqs").create_queue(QueueName=name)
    report = stack.emulator.tick()
    assert report.datapoints >= 8
    assert report.at.tzinfo is None


def test_record_lambda_invocation_goes_to_the_installed_emulator_only(stack, name, monkeypatch):
    emulator.record_lambda_invocation(f"{name}-on", 5.0)
    monkeypatch.setattr(emulator, "_current", None)
    emulator.record_lambda_invocation(f"{name}-off", 5.0)
    recorded = {key[2] for key in stack.emulator.counters.lambdas}
    assert f"{name}-on" in recorded
    assert f"{name}-off" not in recorded


def test_uninstall_restores_the_patched_moto_methods(stack):
    before = XRayResponse.__dict__["get_trace_summaries"]
    extra = Emulator().install()
    patched = XRayResponse.__dict__["get_trace_summaries"]
    extra.uninstall()
    assert patched is not before
    assert XRayResponse.__dict__["get_trace_summaries"] is before


def test_background_loop_ticks_until_stopped(monkeypatch):
    emulator = Emulator(interval_s=0.01)
    ticked = threading.Event()
    monkeypatch.setattr(emulator, "tick", lambda now=None: ticked.set())
    emulator.start()
    assert ticked.wait(5)
    emulator.stop()
    assert not emulator.running
