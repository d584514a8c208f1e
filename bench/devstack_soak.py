"""Soak: the devstack with live traffic for N minutes; its memory and order rate each minute.

Starts ``python -m infra.devstack --port 0`` (default traffic unless flags say otherwise) as
a subprocess, reads its resident memory (``VmRSS`` in ``/proc/<pid>/status``) and its order
count (from its status lines) every minute, then stops it with SIGTERM and times the stop.

It prints one line a minute (with the CPU the devstack used per order and the machine's load
average: a rate that drops while CPU per order stays flat means the machine is busy, not that
the devstack slowed down), then the growth from minute 1 to the last minute and whether
the targets hold: at most ``--max-growth-mb`` (150) of growth, every minute's order rate
within ``--rate-tolerance`` (10 %) of ``--rate``, and a stop within 5 s.

Run: ``.venv/bin/python bench/devstack_soak.py --minutes 10 --rate 2``; anything after
``--`` goes to the devstack (``-- --poison 0.3``). Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATUS = re.compile(r"devstack: orders=(\d+) ")
STOP_TARGET_S = 5.0


@dataclass
class Sample:
    minute: int
    rss_mb: float
    orders: int
    rate: float
    cpu_ms_per_order: float


class Devstack:
    """The devstack subprocess and the latest order count of its status lines."""

    def __init__(self, args: list[str]) -> None:
        command = [sys.executable, "-m", "infra.devstack", "--port", "0", "--status-interval", "2"]
        self.process = subprocess.Popen(
            command + args,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self.orders = 0
        self.ready = threading.Event()
        self.tail: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if "moto server on" in line:
                self.ready.set()
            match = STATUS.search(line)
            if match:
                self.orders = int(match.group(1))
            self.tail = [*self.tail[-20:], line.rstrip()]

    def rss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def cpu_s(self) -> float:
        """User plus system CPU seconds the process has used."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> float:
        """SIGTERM; seconds until the process exited (SIGKILL after 30 s)."""
        start = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return time.monotonic() - start


def soak(devstack: Devstack, minutes: int, minute_s: float) -> list[Sample]:
    """One sample at the end of every minute after the devstack is ready."""
    samples = []
    start = time.monotonic()
    last_orders, last_cpu = devstack.orders, devstack.cpu_s()
    for minute in range(1, minutes + 1):
        time.sleep(max(0.0, start + minute * minute_s - time.monotonic()))
        if devstack.process.poll() is not None:
            raise RuntimeError("the devstack exited:\n" + "\n".join(devstack.tail))
        orders, cpu = devstack.orders, devstack.cpu_s()
        made = max(1, orders - last_orders)
        sample = Sample(
            minute,
            devstack.rss_mb(),
            orders,
            (orders - last_orders) / minute_s,
            1000 * (cpu - last_cpu) / made,
        )
        last_orders, last_cpu = orders, cpu
        samples.append(sample)
        print(
            f"minute {minute:3d}: RSS {sample.rss_mb:7.1f} MB  orders {orders:6d}  "
            f"rate {sample.rate:5.2f}/s  CPU {sample.cpu_ms_per_order:5.0f} ms/order  "
            f"load {os.getloadavg()[0]:4.1f}",
            flush=True,
        )
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--rate", type=float, default=2.0, help="orders per second asked for")
    parser.add_argument("--max-growth-mb", type=float, default=150.0)
    parser.add_argument("--rate-tolerance", type=float, default=0.10)
    parser.add_argument("--minute-s", type=float, default=60.0, help=argparse.SUPPRESS)
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    os.environ.pop("AWS_ENDPOINT_URL", None)

    devstack = Devstack(["--rate", str(args.rate), *extra])
    try:
        if not devstack.ready.wait(120):
            raise RuntimeError("the devstack did not start:\n" + "\n".join(devstack.tail))
        print(f"devstack pid {devstack.process.pid}, RSS at start {devstack.rss_mb():.1f} MB")
        samples = soak(devstack, args.minutes, args.minute_s)
    finally:
        stop_s = devstack.stop()

    growth = samples[-1].rss_mb - samples[0].rss_mb
    low, high = args.rate * (1 - args.rate_tolerance), args.rate * (1 + args.rate_tolerance)
    slow = [s.minute for s in samples if not low <= s.rate <= high]
    checks = {
        f"RSS growth minute 1 -> {samples[-1].minute}: {growth:.1f} MB "
        f"(target <= {args.max_growth_mb:.0f} MB)": growth <= args.max_growth_mb,
        f"order rate {min(s.rate for s in samples):.2f}-{max(s.rate for s in samples):.2f}/s "
        f"(target {low:.2f}-{high:.2f}/s; minutes off target: {slow or 'none'})": not slow,
        f"stop after SIGTERM: {stop_s:.1f} s (target <= {STOP_TARGET_S:.0f} s)": stop_s
        <= STOP_TARGET_S,
    }
    for text, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
