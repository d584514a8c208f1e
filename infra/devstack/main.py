"""The devstack: a local moto server with the eventops topology, its Lambdas and live traffic.

``python manage.py devstack`` and ``python -m infra.devstack`` both end up in :func:`main`.
Everything runs in one process:

1. a moto server (``ThreadedMotoServer``) on ``host:port``;
2. the emulator extensions (:mod:`infra.devstack.emulator`: X-Ray filters, AWS/SQS metrics,
   alarm evaluation and history, EventSchemas), installed into that moto;
3. the topology, provisioned with boto3 (:mod:`infra.devstack.provision`);
4. the Lambda handlers, run in-process by :mod:`infra.devstack.runner`, their log lines shipped
   to their log groups (:mod:`infra.devstack.function_logs`);
5. the traffic simulator (:mod:`infra.devstack.traffic`);
6. a status line every ``status_interval_s``: DLQ depths and alarm states.

SIGINT or SIGTERM stops every part within a few seconds, also while it is still starting. A
moto that does not fit the emulator stops it at once with one line naming the moto version.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import FrameType
from typing import Any, NoReturn, Protocol

from infra.devstack import emulator, handlers
from infra.devstack.clients import Clients
from infra.devstack.emulator import moto_fixes
from infra.devstack.emulator._patches import MotoIncompatible
from infra.devstack.function_logs import FunctionLogs
from infra.devstack.options import Options, build_parser, options_from
from infra.devstack.provision import Provisioned, provision
from infra.devstack.runner import Faults, Poller, QueuePoller, Runner, StreamPoller
from infra.devstack.tracing import Invocation, SegmentWriter, TraceIds
from infra.devstack.traffic import TrafficConfig, TrafficSimulator
from infra.topology import TOPOLOGY

log = logging.getLogger("infra.devstack")

__all__ = ["Devstack", "Options", "Status", "build_parser", "main", "options_from", "run"]

# What the web app and the Celery worker need to talk to the devstack (fake credentials).
CLIENT_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
# SIGTERM must end the process within 5 s: the threads get this long to finish their step.
STOP_BUDGET_S = 3.0


class Output(Protocol):
    """Where status lines go: a text stream, or a management command's ``self.stdout``."""

    def write(self, text: str) -> Any: ...

    def flush(self) -> Any: ...


@dataclass
class Status:
    dlq_depths: dict[str, int] = field(default_factory=dict)
    alarms: dict[str, str] = field(default_factory=dict)
    orders: int = 0
    poison: int = 0
    invocations: int = 0

    def line(self) -> str:
        depths = " ".join(f"{name}={depth}" for name, depth in self.dlq_depths.items())
        firing = [name for name, state in self.alarms.items() if state == "ALARM"]
        alarms = f"ALARM: {', '.join(firing)}" if firing else "no alarm"
        return (
            f"orders={self.orders} poison={self.poison} invocations={self.invocations} | "
            f"DLQ {depths} | {alarms}"
        )


class Emulator:
    """The devstack's link to :mod:`infra.devstack.emulator`, installed in this process.

    ``install()`` patches moto (raising ``MotoIncompatible`` if the installed moto does not
    fit); ``tick()`` samples metrics and evaluates alarms, and about once a minute expires
    old history; ``record_invocation`` feeds the AWS/Lambda metrics.
    """

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        self.instance: emulator.Emulator | None = None
        self._last_housekeeping = time.monotonic()

    @property
    def installed(self) -> bool:
        return self.instance is not None

    def install(self) -> None:
        o = self.options
        self.instance = emulator.install(
            metric_retention=timedelta(hours=o.metric_retention_hours),
            limits=o.limits(),
            region=o.region,
        )

    def tick(self) -> None:
        if self.instance is None:
            return
        self.instance.tick()
        if time.monotonic() - self._last_housekeeping >= self.instance.housekeeping_interval_s:
            self._last_housekeeping = time.monotonic()
            self.instance.housekeep()

    def record_invocation(self, invocation: Invocation) -> None:
        if self.instance is None:
            return
        # Lambda counts an error only when the function fails; a partial batch failure
        # (batchItemFailures) is a successful invocation.
        self.instance.record_lambda_invocation(
            invocation.function_name,
            duration_ms=(invocation.end - invocation.start) * 1000,
            error=invocation.fault,
        )

    def uninstall(self) -> None:
        if self.instance is not None:
            emulator.uninstall()
        self.instance = None


class _Ticker:
    """Calls ``fn`` every ``interval_s`` in a thread until stopped."""

    def __init__(self, name: str, interval_s: float, fn: Callable[[], None]) -> None:
        self.interval_s = interval_s
        self.fn = fn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.fn()
            except Exception:
                log.exception("%s failed", self._thread.name)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = STOP_BUDGET_S) -> None:
        self._stop.set()
        self._thread.join(timeout)


def _remaining(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


class StopRequested(Exception):
    """SIGINT or SIGTERM arrived while the devstack was still starting."""


class Devstack:
    """Starts and stops every part; usable as a context manager."""

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        self.server: Any = None
        self.endpoint = ""
        self.clients: Clients | None = None
        self.provisioned: Provisioned | None = None
        self.emulator = Emulator(self.options)
        self.trace_ids = TraceIds()
        self.runner: Runner | None = None
        self.traffic: TrafficSimulator | None = None
        self._ticker: _Ticker | None = None
        self.segments: SegmentWriter | None = None
        self.function_logs: FunctionLogs | None = None
        self._saved_env: dict[str, str | None] = {}
        self.provisioning = False

    # --- lifecycle -------------------------------------------------------------------
    def start(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        """Start every part; ``MotoIncompatible`` before anything runs if moto does not fit.

        Raises ``StopRequested`` between steps once ``cancelled()`` is true. While
        ``provisioning`` is true (seconds of boto3 calls from this thread, nothing else
        started), a signal handler may raise it too.
        """
        o = self.options
        self.emulator.install()
        self._start_server()
        self._set_environment()
        self.clients = Clients(self.endpoint, o.region)
        self.provisioning = True
        try:
            if cancelled():
                raise StopRequested
            self.provisioned = provision(self.clients, visibility_timeout_s=o.visibility_timeout_s)
        finally:
            self.provisioning = False
        if cancelled():
            raise StopRequested
        # moto would otherwise run the functions itself (in Docker) and eat the messages.
        moto_fixes.detach_event_source_pollers()
        self.segments = segments = SegmentWriter(self.clients, self.trace_ids)
        segments.start()
        self.function_logs = FunctionLogs(self.clients)
        self.function_logs.start()
        self.runner = Runner(self._pollers(segments))
        self.runner.start()
        self._ticker = _Ticker("emulator-tick", o.evaluation_interval_s, self.emulator.tick)
        self._ticker.start()
        if o.traffic:
            config = TrafficConfig(rate=o.rate, poison_share=o.poison, seed=o.seed)
            self.traffic = TrafficSimulator(self.clients, config, segments=segments)
            self.traffic.start()
        log.info("devstack ready on %s", self.endpoint)

    def stop(self) -> None:
        """Stop every part within about ``STOP_BUDGET_S`` (their threads are daemons)."""
        deadline = time.monotonic() + STOP_BUDGET_S
        # Tell every thread first, so that they wind down together.
        if self.traffic is not None:
            self.traffic.request_stop()
        if self.runner is not None:
            self.runner.request_stop()
        if self.traffic is not None:
            self.traffic.stop(_remaining(deadline))
        if self.runner is not None:
            self.runner.stop(_remaining(deadline))
        if self._ticker is not None:
            self._ticker.stop(_remaining(deadline))
        if self.segments is not None:
            self.segments.stop(_remaining(deadline))
        if self.function_logs is not None:
            self.function_logs.stop(min(1.0, _remaining(deadline)))
        if self.server is not None:
            self.server.stop()
            self.server = None
        self.emulator.uninstall()
        self._restore_environment()

    def __enter__(self) -> Devstack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- parts -----------------------------------------------------------------------
    def _start_server(self) -> None:
        from moto.server import ThreadedMotoServer

        # At thousands of requests a minute werkzeug's access log drowns every other line.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.server = ThreadedMotoServer(
            ip_address=self.options.host, port=self.options.port, verbose=False
        )
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"

    def _set_environment(self) -> None:
        """The in-process Lambda code builds its clients from boto3's environment."""
        values = {
            **{k: os.environ.get(k) or v for k, v in CLIENT_ENVIRONMENT.items()},
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": self.options.region,
            "AWS_REGION": self.options.region,
            # No X-Ray daemon here: the runner writes the segments (infra/devstack/tracing.py).
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": self.options.handler_log_level,
            "POWERTOOLS_METRICS_NAMESPACE": TOPOLOGY.project,
        }
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _restore_environment(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}

    def _pollers(self, segments: SegmentWriter) -> list[Poller]:
        assert self.clients is not None and self.provisioned is not None
        o = self.options
        built = self.provisioned
        faults = Faults(o.transient, seed=o.seed)
        common: dict[str, Any] = {
            "faults": faults,
            "segments": segments,
            "observer": self.emulator.record_invocation,
        }
        pollers: list[Poller] = [
            StreamPoller(
                self.clients,
                handlers.publisher_handler(self.clients, built),
                built.publisher_function,
                built.publisher_function_arn,
                built.orders_stream_arn,
                on_failure_queue_url=built.outbox_failures_url,
                **common,
            )
        ]
        for name, consumer in built.consumers.items():
            pollers.append(
                QueuePoller(
                    self.clients,
                    handlers.consumer_handler(name, built, self.function_logs),
                    consumer.function_name,
                    consumer.function_arn,
                    consumer.queue_url,
                    consumer.queue_arn,
                    **common,
                )
            )
        return pollers

    # --- status ----------------------------------------------------------------------
    def status(self) -> Status:
        assert self.clients is not None and self.provisioned is not None
        status = Status()
        sqs = self.clients("sqs")
        for name, consumer in self.provisioned.consumers.items():
            attributes = sqs.get_queue_attributes(
                QueueUrl=consumer.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            status.dlq_depths[name] = int(attributes["ApproximateNumberOfMessages"])
        names = [c.alarm_name for c in self.provisioned.consumers.values()]
        alarms = self.clients("cloudwatch").describe_alarms(AlarmNames=names)["MetricAlarms"]
        status.alarms = {a["AlarmName"]: a["StateValue"] for a in alarms}
        if self.traffic is not None:
            status.orders = self.traffic.stats.orders
            status.poison = self.traffic.stats.poison
        if self.runner is not None:
            status.invocations = sum(p.stats.invocations for p in self.runner.pollers)
        return status


def run(options: Options, out: Output = sys.stdout, stop: threading.Event | None = None) -> int:
    """Run the devstack until Ctrl-C, SIGTERM or ``stop`` is set; prints status lines.

    Raises ``MotoIncompatible`` (before anything starts) if the installed moto does not fit
    the emulator.
    """
    stop = stop or threading.Event()
    devstack = Devstack(options)

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()
        if devstack.provisioning:
            # Provisioning takes seconds under load: abandon it rather than make the signal
            # wait (the main thread is only making boto3 calls then).
            raise StopRequested

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, request_stop)
    try:
        # A moto that does not fit stops everything here, before any thread or output.
        devstack.emulator.install()
        try:
            devstack.start(cancelled=stop.is_set)
            _serve(devstack, options, out, stop)
        finally:
            out.write("devstack: stopping\n")
            out.flush()
            devstack.stop()
    except StopRequested:
        pass
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 0


def _serve(devstack: Devstack, options: Options, out: Output, stop: threading.Event) -> None:
    """Say where the devstack is, then print a status line every interval until ``stop``."""
    out.write(f"devstack: moto server on {devstack.endpoint}\n")
    out.write("  point the dashboard and the Celery worker at it with:\n")
    out.write(f"    AWS_ENDPOINT_URL={devstack.endpoint}\n")
    for name, value in {
        **CLIENT_ENVIRONMENT,
        "AWS_DEFAULT_REGION": options.region,
        "AWS_REGION": options.region,
    }.items():
        out.write(f"    {name}={value}\n")
    out.flush()
    while not stop.wait(options.status_interval_s):
        try:
            out.write(f"devstack: {devstack.status().line()}\n")
        except Exception as exc:  # the status line must never stop the devstack
            out.write(f"devstack: status unavailable: {exc}\n")
        out.flush()


def exit_now(code: int) -> NoReturn:
    """End the process without tearing the interpreter down.

    Freeing a long run's emulator state object by object at exit takes seconds, and SIGTERM
    must end the devstack within 5; every part has stopped and the output is flushed first.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        options = options_from(args)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        return run(options)
    except MotoIncompatible as exc:
        sys.stderr.write(f"devstack: cannot start: {exc}\n")
        return 2
