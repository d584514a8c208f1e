"""The devstack: a local moto server with the eventops topology, its Lambdas and live traffic.

``python manage.py devstack`` and ``python -m infra.devstack`` both end up in :func:`main`.
Everything runs in one process:

1. a moto server (``ThreadedMotoServer``) on ``host:port``;
2. the emulator extensions (:mod:`infra.devstack.emulator`: X-Ray filters, AWS/SQS metrics,
   alarm evaluation and history, EventSchemas), installed into that moto;
3. the topology, provisioned with boto3 (:mod:`infra.devstack.provision`);
4. the Lambda handlers, run in-process by :mod:`infra.devstack.runner`;
5. the traffic simulator (:mod:`infra.devstack.traffic`);
6. a status line every ``status_interval_s``: DLQ depths and alarm states.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Protocol

from infra.devstack import handlers, moto_hooks
from infra.devstack.clients import Clients
from infra.devstack.provision import Provisioned, provision
from infra.devstack.runner import Faults, Poller, QueuePoller, Runner, StreamPoller
from infra.devstack.tracing import Invocation, SegmentWriter, TraceIds
from infra.devstack.traffic import TrafficConfig, TrafficSimulator
from infra.topology import TOPOLOGY

log = logging.getLogger("infra.devstack")

# What the web app and the Celery worker need to talk to the devstack (fake credentials).
CLIENT_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


class Output(Protocol):
    """Where status lines go: a text stream, or a management command's ``self.stdout``."""

    def write(self, text: str) -> Any: ...

    def flush(self) -> Any: ...


@dataclass
class Options:
    host: str = "127.0.0.1"
    port: int = 5000  # 0 picks a free port
    rate: float = 2.0
    poison: float = 0.1
    transient: float = 0.05
    traffic: bool = True
    seed: int | None = None
    # Short, so that poison messages reach the DLQs within a minute.
    visibility_timeout_s: int = 2
    # How often the emulator samples metrics and evaluates alarms.
    evaluation_interval_s: float = 10.0
    status_interval_s: float = 10.0
    region: str = "us-east-1"
    # Level of the Lambda code's Powertools loggers (they log every event at INFO).
    handler_log_level: str = "ERROR"


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
    """The emulator extensions of :mod:`infra.devstack.emulator`, if that package is there.

    ``install()`` patches moto in this process; ``tick()`` samples metrics and evaluates
    alarms; ``record_lambda_invocation`` feeds the AWS/Lambda metrics.
    """

    def __init__(self) -> None:
        self.module: Any = None
        self.installed = False

    def install(self) -> bool:
        try:
            emulator: Any = importlib.import_module("infra.devstack.emulator")
        except ImportError as exc:
            log.warning("no emulator extensions (%s): no alarms, AWS metrics or schemas", exc)
            return False
        self.module = emulator
        emulator.install()
        self.installed = True
        return True

    def tick(self) -> None:
        if self.installed:
            self.module.tick()

    def record_invocation(self, invocation: Invocation) -> None:
        if not self.installed:
            return
        # Lambda counts an error only when the function fails; a partial batch failure
        # (batchItemFailures) is a successful invocation.
        self.module.record_lambda_invocation(
            invocation.function_name,
            duration_ms=(invocation.end - invocation.start) * 1000,
            error=invocation.fault,
        )

    def uninstall(self) -> None:
        if self.installed and hasattr(self.module, "uninstall"):
            self.module.uninstall()
        self.installed = False


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

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class Devstack:
    """Starts and stops every part; usable as a context manager."""

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        self.server: Any = None
        self.endpoint = ""
        self.clients: Clients | None = None
        self.provisioned: Provisioned | None = None
        self.emulator = Emulator()
        self.trace_ids = TraceIds()
        self.runner: Runner | None = None
        self.traffic: TrafficSimulator | None = None
        self._ticker: _Ticker | None = None
        self._saved_env: dict[str, str | None] = {}
        self._undo_moto: list[Callable[[], None]] = []

    # --- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        o = self.options
        self._start_server()
        self._set_environment()
        self.emulator.install()
        self._undo_moto = [
            moto_hooks.add_account_to_event_envelope(),
            moto_hooks.serialize_dynamodb_writes(),
            moto_hooks.cache_request_routing(),
        ]
        self.clients = Clients(self.endpoint, o.region)
        self.provisioned = provision(self.clients, visibility_timeout_s=o.visibility_timeout_s)
        # moto would otherwise run the functions itself (in Docker) and eat the messages.
        moto_hooks.detach_event_source_pollers()
        segments = SegmentWriter(self.clients, self.trace_ids)
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
        if self.traffic is not None:
            self.traffic.stop()
        if self.runner is not None:
            self.runner.stop()
        if self._ticker is not None:
            self._ticker.stop()
        if self.server is not None:
            self.server.stop()
            self.server = None
        self.emulator.uninstall()
        for undo in reversed(self._undo_moto):
            undo()
        self._undo_moto = []
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
                    handlers.consumer_handler(name, built),
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
    """Run the devstack until Ctrl-C, SIGTERM or ``stop`` is set; prints status lines."""
    stop = stop or threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
    devstack = Devstack(options)
    try:
        devstack.start()
        out.write(f"devstack: moto server on {devstack.endpoint}\n")
        out.write("  point the dashboard and the Celery worker at it with:\n")
        out.write(f"    AWS_ENDPOINT_URL={devstack.endpoint}\n")
        for name, value in CLIENT_ENVIRONMENT.items():
            out.write(f"    {name}={value}\n")
        out.flush()
        while not stop.wait(options.status_interval_s):
            try:
                out.write(f"devstack: {devstack.status().line()}\n")
            except Exception as exc:  # the status line must never stop the devstack
                out.write(f"devstack: status unavailable: {exc}\n")
            out.flush()
    finally:
        out.write("devstack: stopping\n")
        out.flush()
        devstack.stop()
    return 0


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The command-line options (shared with ``manage.py devstack``)."""
    parser = parser or argparse.ArgumentParser(
        prog="python -m infra.devstack", description=__doc__.splitlines()[0] if __doc__ else None
    )
    defaults = Options()
    parser.add_argument("--host", default=defaults.host, help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=defaults.port, help="moto port (5000)")
    parser.add_argument("--rate", type=float, default=defaults.rate, help="new orders per second")
    parser.add_argument(
        "--poison", type=float, default=defaults.poison, help="share of poison orders (0-1)"
    )
    parser.add_argument(
        "--transient",
        type=float,
        default=defaults.transient,
        help="share of Lambda invocations that fail as a whole (0-1)",
    )
    parser.add_argument("--no-traffic", action="store_true", help="provision only, no orders")
    parser.add_argument("--seed", type=int, default=None, help="seed for a repeatable run")
    parser.add_argument(
        "--visibility-timeout",
        type=int,
        default=defaults.visibility_timeout_s,
        help="visibility timeout of the consumer queues, seconds (short so DLQs fill fast)",
    )
    parser.add_argument(
        "--evaluation-interval",
        type=float,
        default=defaults.evaluation_interval_s,
        help="seconds between metric samples and alarm evaluations",
    )
    parser.add_argument(
        "--status-interval", type=float, default=defaults.status_interval_s, help="seconds"
    )
    parser.add_argument(
        "--handler-log-level",
        default=defaults.handler_log_level,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        help="log level of the Lambda handlers (ERROR shows each rejected poison message)",
    )
    return parser


def options_from(args: argparse.Namespace | dict[str, Any]) -> Options:
    values = vars(args) if isinstance(args, argparse.Namespace) else args
    options = Options(
        host=values["host"],
        port=values["port"],
        rate=values["rate"],
        poison=values["poison"],
        transient=values["transient"],
        traffic=not values["no_traffic"],
        seed=values["seed"],
        visibility_timeout_s=values["visibility_timeout"],
        evaluation_interval_s=values["evaluation_interval"],
        status_interval_s=values["status_interval"],
        handler_log_level=values["handler_log_level"],
    )
    TrafficConfig(rate=options.rate, poison_share=options.poison)  # validates the shares
    Faults(options.transient)
    return options


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        options = options_from(args)
    except ValueError as exc:
        build_parser().error(str(exc))
    return run(options)
