"""The in-process handlers' log lines reach their log groups in the emulator, bounded."""

from __future__ import annotations

import io
import json

from aws_lambda_powertools import Logger

from infra.devstack.clients import Clients
from infra.devstack.function_logs import MAX_BATCH_EVENTS, FunctionLogs, _batches

GROUP = "/aws/lambda/eventops-billing"


def test_a_logged_exception_reaches_the_log_group_with_its_keys(moto_clients: Clients) -> None:
    moto_clients("logs").create_log_group(logGroupName=GROUP)
    shipper = FunctionLogs(moto_clients)
    logger = Logger(service="test-function-logs", stream=io.StringIO())
    shipper.attach(logger, GROUP)
    logger.thread_safe_append_keys(message_id="m-1", correlation_id="c-1")
    try:
        raise ValueError("amount must be positive")
    except ValueError:
        logger.exception("poison message")
    logger.thread_safe_remove_keys(["message_id", "correlation_id"])
    logger.error("another record")

    assert shipper.flush() == 2
    shipper.stop()
    events = moto_clients("logs").filter_log_events(logGroupName=GROUP)["events"]
    first = json.loads(events[0]["message"])
    assert (first["message_id"], first["exception_name"]) == ("m-1", "ValueError")
    assert "message_id" not in json.loads(events[1]["message"])


def test_stopping_detaches_from_the_logger(moto_clients: Clients) -> None:
    moto_clients("logs").create_log_group(logGroupName=GROUP)
    shipper = FunctionLogs(moto_clients)
    logger = Logger(service="test-function-logs-detach", stream=io.StringIO())
    shipper.attach(logger, GROUP)
    shipper.stop()
    logger.error("after the devstack stopped")
    assert shipper.flush() == 0


def test_at_most_max_pending_lines_wait(moto_clients: Clients) -> None:
    shipper = FunctionLogs(moto_clients, max_pending=3)
    for i in range(5):
        shipper.add(GROUP, i, f"line {i}")
    assert shipper.dropped == 2
    assert [line for _, _, line in shipper.pending] == ["line 2", "line 3", "line 4"]


def test_batches_respect_the_count_and_size_limits() -> None:
    small = [{"timestamp": i, "message": "x"} for i in range(MAX_BATCH_EVENTS + 1)]
    assert [len(b) for b in _batches(small)] == [MAX_BATCH_EVENTS, 1]
    big = [{"timestamp": i, "message": "y" * 300_000} for i in range(3)]
    assert [len(b) for b in _batches(big)] == [1, 1, 1]
