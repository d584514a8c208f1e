"""The single declaration of the event system.

Both the CDK app (``infra/stack.py``, real AWS) and the devstack provisioner
(``infra/devstack/``, the local emulator) are built from this module, so the two
cannot drift apart. The dashboard never imports it: it discovers resources
through AWS APIs so that it works on any account.

Plain data only: no boto3, no CDK, no Django.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HOUR = 3600
DAY = 24 * HOUR

ORDERS_SOURCE = "eventops.orders"

# Event types, grouped by the idempotency window their consumers keep.
PAYMENT_EVENTS = ("OrderPaid", "OrderCancelled")
ORDER_EVENTS = ("OrderCreated", "OrderPaid", "OrderShipped", "OrderCancelled")

# The DLQ alarms watch visible plus in-flight messages (metric math). Looking at a DLQ
# (ReceiveMessage) hides its messages for the visibility timeout: an alarm on visible
# messages alone would go OK meanwhile, and a pager would auto-resolve. Query Ids must
# start with a lowercase letter.
DLQ_ALARM_METRICS: tuple[tuple[str, str], ...] = (
    ("visible", "ApproximateNumberOfMessagesVisible"),
    ("inflight", "ApproximateNumberOfMessagesNotVisible"),
)
DLQ_ALARM_EXPRESSION_ID = "messages"
DLQ_ALARM_EXPRESSION = "visible + inflight"


@dataclass(frozen=True)
class Consumer:
    """One consumer: rule -> queue (with DLQ and alarm) -> Lambda."""

    name: str
    description: str
    event_pattern: dict[str, Any]
    # Dotted path of the Lambda handler (the asset root is the repository root).
    handler: str
    max_receive_count: int = 3
    visibility_timeout_s: int = 30
    # How long a processed event ID is remembered, by event type.
    idempotency_windows_s: dict[str, int] = field(default_factory=dict)
    default_idempotency_window_s: int = HOUR
    # What to do when its DLQ fills: set on its alarms as the ``runbook`` tag and in their
    # descriptions (the dashboard shows it); empty: ``Topology.runbook_base_url``/<name>.
    runbook: str = ""

    def idempotency_window_for(self, event_type: str) -> int:
        return self.idempotency_windows_s.get(event_type, self.default_idempotency_window_s)


@dataclass(frozen=True)
class Producer:
    """A producer that writes business data and an outbox record in one transaction."""

    name: str
    source: str
    event_types: tuple[str, ...]


@dataclass(frozen=True)
class Topology:
    project: str
    environment: str
    consumers: tuple[Consumer, ...]
    producers: tuple[Producer, ...]
    archive_retention_days: int = 90
    event_log_retention_days: int = 90
    dlq_retention_days: int = 14
    queue_retention_days: int = 4
    outbox_ttl_s: int = DAY
    dlq_alarm_period_s: int = 60
    # Alarm before DLQ messages expire: a message can sit up to queue_retention_days in its
    # source queue first, and expiry counts from the original enqueue time.
    dlq_age_alarm_threshold_s: int = 7 * DAY
    # Where the consumers' runbooks live unless a consumer names its own (a placeholder:
    # deployments override it with the CDK context value ``runbook_base_url``).
    runbook_base_url: str = "https://runbooks.example.com/eventops"

    # --- names -----------------------------------------------------------------
    def name(self, *parts: str) -> str:
        """``<project>-<environment>-<parts...>``, the prefix every resource shares."""
        return "-".join((self.project, self.environment, *parts))

    @property
    def prefix(self) -> str:
        return self.name()

    @property
    def bus_name(self) -> str:
        return self.name("bus")

    @property
    def archive_name(self) -> str:
        return self.name("archive")

    @property
    def event_log_group(self) -> str:
        # EventBridge can only target log groups whose name starts with /aws/events/.
        return f"/aws/events/{self.name('bus')}"

    @property
    def event_log_rule_name(self) -> str:
        return self.name("event-log")

    @property
    def schema_registry_name(self) -> str:
        return self.name("events")

    @property
    def orders_table(self) -> str:
        return self.name("orders")

    @property
    def idempotency_table(self) -> str:
        return self.name("idempotency")

    @property
    def alerts_topic(self) -> str:
        return self.name("alerts")

    @property
    def outbox_publisher_function(self) -> str:
        return self.name("outbox-publisher")

    @property
    def dlq_reprocessor_function(self) -> str:
        return self.name("dlq-reprocessor")

    # Dotted Lambda handler paths (the asset root is the repository root), like Consumer.handler.
    @property
    def outbox_publisher_handler(self) -> str:
        return "infra.functions.publisher.handler"

    @property
    def dlq_reprocessor_handler(self) -> str:
        return "infra.functions.dlq_reprocessor.handler"

    @property
    def outbox_failures_queue(self) -> str:
        """On-failure destination of the outbox stream: records whose retries ran out."""
        return self.name("outbox-publisher", "failures")

    @property
    def outbox_failures_alarm_name(self) -> str:
        return self.name("outbox-publisher", "failures-not-empty")

    def queue_name(self, consumer: Consumer) -> str:
        return self.name(consumer.name)

    def dlq_name(self, consumer: Consumer) -> str:
        return self.name(consumer.name, "dlq")

    def rule_name(self, consumer: Consumer) -> str:
        return self.name(consumer.name, "rule")

    def function_name(self, consumer: Consumer) -> str:
        return self.name(consumer.name, "consumer")

    def dlq_alarm_name(self, consumer: Consumer) -> str:
        return self.name(consumer.name, "dlq-not-empty")

    def runbook(self, consumer: Consumer, base_url: str = "") -> str:
        """The consumer's runbook URL: its own, else ``<base>/<consumer name>``."""
        base = (base_url or self.runbook_base_url).rstrip("/")
        return consumer.runbook or f"{base}/{consumer.name}"

    def dlq_age_alarm_name(self, consumer: Consumer) -> str:
        return self.name(consumer.name, "dlq-oldest-message-age")

    @property
    def dlqs_composite_alarm_name(self) -> str:
        """The composite alarm that is in ALARM while any consumer's DLQ holds messages."""
        return self.name("consumer-dlqs-not-empty")

    @property
    def dlqs_composite_alarm_rule(self) -> str:
        """``ALARM("<dlq alarm>") OR ...`` over every consumer's DLQ-not-empty alarm."""
        return " OR ".join(f'ALARM("{self.dlq_alarm_name(c)}")' for c in self.consumers)

    def consumer(self, name: str) -> Consumer:
        for consumer in self.consumers:
            if consumer.name == name:
                return consumer
        raise KeyError(name)


def _pattern(*detail_types: str) -> dict[str, Any]:
    return {"source": [ORDERS_SOURCE], "detail-type": list(detail_types)}


TOPOLOGY = Topology(
    project="eventops",
    environment="demo",
    producers=(Producer(name="orders", source=ORDERS_SOURCE, event_types=ORDER_EVENTS),),
    consumers=(
        Consumer(
            name="billing",
            description="Charges and refunds payments",
            event_pattern=_pattern("OrderPaid", "OrderCancelled"),
            handler="infra.functions.consumers.billing.handler",
            max_receive_count=3,
            visibility_timeout_s=30,
            idempotency_windows_s=dict.fromkeys(PAYMENT_EVENTS, 72 * HOUR),
        ),
        Consumer(
            name="shipping",
            description="Books shipments for paid orders",
            event_pattern=_pattern("OrderPaid", "OrderCancelled"),
            handler="infra.functions.consumers.shipping.handler",
            max_receive_count=5,
            visibility_timeout_s=60,
            idempotency_windows_s=dict.fromkeys(PAYMENT_EVENTS, 72 * HOUR),
            default_idempotency_window_s=24 * HOUR,
        ),
        Consumer(
            name="notifications",
            description="Emails the customer at each step",
            event_pattern=_pattern(*ORDER_EVENTS),
            handler="infra.functions.consumers.notifications.handler",
            max_receive_count=3,
            visibility_timeout_s=20,
            idempotency_windows_s=dict.fromkeys(ORDER_EVENTS, HOUR),
        ),
        Consumer(
            name="analytics",
            description="Counts orders for reporting",
            event_pattern={"source": [ORDERS_SOURCE]},
            handler="infra.functions.consumers.analytics.handler",
            max_receive_count=2,
            visibility_timeout_s=30,
            default_idempotency_window_s=6 * HOUR,
        ),
    ),
)
