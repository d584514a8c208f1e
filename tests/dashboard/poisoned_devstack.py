"""A running devstack with one poison OrderPaid in billing's DLQ, for end-to-end page tests."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def wait_for(predicate: Callable[[], Any], timeout: float = 90.0, interval: float = 0.5) -> Any:
    """Poll ``predicate`` until it returns something truthy; the value (or the last one)."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value


@contextmanager
def poison_in_billing(seed: int) -> Iterator[tuple[Any, Any, Any]]:
    """A devstack (no background traffic) once one poison OrderPaid reached billing's DLQ:
    (devstack, billing consumer, the order). moto's state lives in this process, so it is
    reset after: a later devstack must not find these DLQ messages and take them for its own."""
    from infra.devstack.main import Devstack, Options
    from infra.devstack.tracing import SegmentWriter
    from infra.devstack.traffic import TrafficConfig, TrafficSimulator

    options = Options(port=0, traffic=False, transient=0.0, seed=seed, visibility_timeout_s=1)
    with Devstack(options) as devstack:
        assert devstack.clients is not None and devstack.provisioned is not None
        segments = SegmentWriter(devstack.clients, devstack.trace_ids)
        config = TrafficConfig(rate=1.0, poison_share=1.0, seed=seed)
        simulator = TrafficSimulator(devstack.clients, config, segments=segments)
        order = simulator.new_order()
        simulator.pay(order)
        billing = devstack.provisioned.consumers["billing"]
        sqs = devstack.clients("sqs")

        def in_dlq() -> int:
            attributes = sqs.get_queue_attributes(
                QueueUrl=billing.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            return int(attributes["ApproximateNumberOfMessages"])

        assert wait_for(in_dlq) >= 1, "the poison OrderPaid never reached the billing DLQ"
        try:
            yield devstack, billing, order
        finally:
            reset = urllib.request.Request(f"{devstack.endpoint}/moto-api/reset", method="POST")
            urllib.request.urlopen(reset, timeout=10).close()
