"""Traffic simulator: orders flowing through the real producer path, plus injected poison.

Each order goes through the producer API of the Lambda code (:mod:`infra.functions.orders`,
the transactional outbox): business item + outbox item in one transaction -> orders stream ->
outbox publisher -> bus -> rules -> queues -> consumers.
Orders then progress: created -> paid, or created -> cancelled; the shipping consumer ships
paid orders itself (its ``OrderShipped`` goes through the outbox too).

A share of orders is *poisoned*: instead of its valid ``OrderPaid`` going through the outbox,
a "buggy producer" puts an ``OrderPaid`` with an invalid amount straight on the bus with
``PutEvents``. The consumers reject it on validation, it is retried until ``maxReceiveCount``
and lands in the DLQs, which makes the DLQ alarms fire.

Deterministic for a seed: the same seed gives the same order IDs, correlation IDs, choices and
poison orders (timing aside).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from infra.devstack.clients import Clients
from infra.devstack.tracing import Hop, Invocation, SegmentWriter
from infra.topology import ORDERS_SOURCE, TOPOLOGY, Topology

log = logging.getLogger(__name__)

CURRENCIES = ("EUR", "USD", "GBP")
SKUS = ("BOOK-001", "MUG-002", "SHIRT-003", "LAMP-004", "PEN-005")
# A negative amount: schema-invalid (amount must be > 0), what a buggy producer might send.
POISON_AMOUNT = -13.37
POISON_IDS_KEPT = 100
MAX_BACKLOG_S = 5.0


def orders_api() -> Any:
    """The producer API of the Lambda code (imported lazily: it is another package's code)."""
    from infra.functions import orders

    return orders


@dataclass
class TrafficConfig:
    rate: float = 2.0  # new orders per second
    poison_share: float = 0.1
    cancel_share: float = 0.15
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("rate must be positive")
        for name in ("poison_share", "cancel_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")


@dataclass
class Order:
    order_id: str
    correlation_id: str
    amount: Decimal
    currency: str
    status: str = "CREATED"
    poison: bool = False
    cancel: bool = False


@dataclass
class TrafficStats:
    orders: int = 0
    events: int = 0
    poison: int = 0
    errors: int = 0
    # The first poison orders of the run (tests and demos look one up); bounded, like all else.
    poison_correlation_ids: list[str] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TrafficSimulator:
    """Creates and advances orders; call :meth:`tick` or run it as a thread."""

    def __init__(
        self,
        clients: Clients,
        config: TrafficConfig,
        *,
        topology: Topology = TOPOLOGY,
        api: Any = None,
        segments: SegmentWriter | None = None,
    ) -> None:
        self.clients = clients
        self.config = config
        self.topology = topology
        self.api = api or orders_api()
        self.segments = segments
        self.random = random.Random(config.seed)
        self.stats = TrafficStats()
        self.open_orders: list[Order] = []
        self._counter = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- identifiers (deterministic for a seed) -------------------------------------
    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.random.getrandbits(128), version=4))

    def new_order(self) -> Order:
        self._counter += 1
        priced = [
            (self.random.choice(SKUS), self.random.randint(1, 3), self.random.randint(199, 9999))
            for _ in range(self.random.randint(1, 3))
        ]
        lines = [
            {"sku": sku, "quantity": quantity, "unitPrice": Decimal(cents) / 100}
            for sku, quantity, cents in priced
        ]
        amount = sum((quantity * Decimal(cents) / 100 for _, quantity, cents in priced), Decimal(0))
        order = Order(
            order_id=f"ord-{self._counter:06d}-{self._uuid()[:8]}",
            correlation_id=f"corr-{self._uuid()}",
            amount=amount,
            currency=self.random.choice(CURRENCIES),
            poison=self.random.random() < self.config.poison_share,
            cancel=self.random.random() < self.config.cancel_share,
        )
        start = time.time()
        self.api.create_order(
            self.clients("dynamodb"),
            self.topology.orders_table,
            customer_id=f"cust-{self.random.randint(1, 500):04d}",
            lines=lines,
            currency=order.currency,
            order_id=order.order_id,
            correlation_id=order.correlation_id,
        )
        self._written(order, "OrderCreated", start)
        self.stats.orders += 1
        return order

    # --- state changes -----------------------------------------------------------------
    def _written(self, order: Order, event_type: str, start: float, failed: bool = False) -> None:
        self.stats.events += 1
        if self.segments is None:
            return
        name = self.topology.name("orders-api")
        self.segments.send(
            Invocation(
                function_name=name,
                function_arn=f"arn:aws:lambda:{self.clients.region}:000000000000:function:{name}",
                request_id=self._uuid(),
                start=start,
                end=time.time(),
                hops=[
                    Hop(order.correlation_id, [event_type], failed, "poison" if failed else None)
                ],
            )
        )

    def pay(self, order: Order) -> None:
        if order.poison:
            self.put_poison(order)
            order.status = "POISONED"
            return
        start = time.time()
        self.api.pay_order(
            self.clients("dynamodb"),
            self.topology.orders_table,
            order_id=order.order_id,
            amount=order.amount,
            currency=order.currency,
            correlation_id=order.correlation_id,
            payment_id=f"pay-{self._uuid()[:12]}",
        )
        order.status = "PAID"
        self._written(order, "OrderPaid", start)

    def cancel(self, order: Order) -> None:
        start = time.time()
        self.api.cancel_order(
            self.clients("dynamodb"),
            self.topology.orders_table,
            order_id=order.order_id,
            reason="customer changed their mind",
            refund_amount=Decimal("0"),
            currency=order.currency,
            correlation_id=order.correlation_id,
        )
        order.status = "CANCELLED"
        self._written(order, "OrderCancelled", start)

    def put_poison(self, order: Order) -> None:
        """A buggy producer bypasses the outbox and its validation: an invalid OrderPaid."""
        start = time.time()
        detail = {
            "correlationId": order.correlation_id,
            "orderId": order.order_id,
            "occurredAt": _iso(_now()),
            "paymentId": f"pay-{self._uuid()[:12]}",
            "amount": POISON_AMOUNT,
            "currency": order.currency,
        }
        response = self.clients("events").put_events(
            Entries=[
                {
                    "Source": ORDERS_SOURCE,
                    "DetailType": "OrderPaid",
                    "Detail": json.dumps(detail),
                    "EventBusName": self.topology.bus_name,
                }
            ]
        )
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"poison PutEvents failed: {response['Entries']}")
        self.stats.poison += 1
        if len(self.stats.poison_correlation_ids) < POISON_IDS_KEPT:
            self.stats.poison_correlation_ids.append(order.correlation_id)
        self._written(order, "OrderPaid", start, failed=True)
        log.info("poison OrderPaid put on the bus for %s", order.correlation_id)

    def advance(self, order: Order) -> None:
        """Move one order one step along its path."""
        if order.status == "CREATED":
            if order.cancel:
                self.cancel(order)
            else:
                self.pay(order)

    # --- driving -----------------------------------------------------------------------
    def tick(self) -> None:
        """One step: create an order and advance every order created before this tick."""
        previous, self.open_orders = self.open_orders, []
        for order in previous:
            try:
                self.advance(order)
            except Exception:
                self.stats.errors += 1
                log.exception("could not advance order %s", order.order_id)
                continue
            if order.status == "CREATED":
                self.open_orders.append(order)
        try:
            self.open_orders.append(self.new_order())
        except Exception:
            self.stats.errors += 1
            log.exception("could not create an order")

    def run(self) -> None:
        interval = 1.0 / self.config.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.tick()
            next_at += interval
            # Make up a short stall (a busy machine, a slow request) so that the rate holds,
            # but not a long one: that would be a burst.
            next_at = max(next_at, time.monotonic() - MAX_BACKLOG_S)
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="traffic", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Stop after the current step (returns at once)."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
