"""The devstack's options and its command line (shared with ``manage.py devstack``)."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from infra.devstack.emulator.retention import DEFAULT_LIMIT, DEFAULT_TRACE_RETENTION, Limits
from infra.devstack.runner import Faults
from infra.devstack.traffic import TrafficConfig

DESCRIPTION = "A local moto server with the eventops topology, its Lambdas and live traffic."


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
    # How much history the emulator keeps (emulator/retention.py).
    trace_retention_hours: float = DEFAULT_TRACE_RETENTION.total_seconds() / 3600
    metric_retention_hours: float = 6.0
    history_limit: int = DEFAULT_LIMIT

    def limits(self) -> Limits:
        return Limits(
            trace_retention=timedelta(hours=self.trace_retention_hours), limit=self.history_limit
        )


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The command-line options (shared with ``manage.py devstack``)."""
    parser = parser or argparse.ArgumentParser(
        prog="python -m infra.devstack", description=DESCRIPTION
    )
    defaults = Options()
    parser.add_argument("--host", default=defaults.host, help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=defaults.port, help="moto port (5000)")
    parser.add_argument(
        "--region",
        default=defaults.region,
        help="the AWS Region the topology is provisioned in (us-east-1); make demo runs a "
        "second devstack in another Region, so the dashboard has two environments",
    )
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
    parser.add_argument(
        "--trace-retention-hours",
        type=float,
        default=defaults.trace_retention_hours,
        help="hours the emulator keeps X-Ray traces (AWS: 30 days)",
    )
    parser.add_argument(
        "--metric-retention-hours",
        type=float,
        default=defaults.metric_retention_hours,
        help="hours the emulator keeps the AWS/SQS, AWS/Lambda and AWS/Events samples it writes",
    )
    parser.add_argument(
        "--history-limit",
        type=int,
        default=defaults.history_limit,
        help="most X-Ray traces, log events per group, archived events per archive and stream "
        "records per table the emulator keeps",
    )
    return parser


def options_from(args: argparse.Namespace | dict[str, Any]) -> Options:
    """Options from parsed arguments; raises ValueError for a value out of range."""
    values = vars(args) if isinstance(args, argparse.Namespace) else args
    defaults = Options()
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
        region=values.get("region") or defaults.region,
        trace_retention_hours=values.get("trace_retention_hours", defaults.trace_retention_hours),
        metric_retention_hours=values.get(
            "metric_retention_hours", defaults.metric_retention_hours
        ),
        history_limit=values.get("history_limit", defaults.history_limit),
    )
    TrafficConfig(rate=options.rate, poison_share=options.poison)  # validates the shares
    Faults(options.transient)
    options.limits()
    if not re.match(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$", options.region):
        raise ValueError(f"{options.region!r} is not an AWS Region (like eu-west-1)")
    if options.metric_retention_hours <= 0:
        raise ValueError("the metric retention must be positive")
    return options
