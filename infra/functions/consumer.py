"""The idempotent consumer base: SQS batch -> validated event -> business code, once.

For every SQS message of a batch (Powertools ``BatchProcessor``, partial failures):

1. The correlation ID is read from ``detail.correlationId`` (fallback: the SQS
   message attribute ``correlation_id``). It is appended to the structured logs,
   and put as the X-Ray annotation ``correlation_id`` on a subsegment named
   ``## <consumer>.message`` (never on the Lambda facade segment).
2. The body, an EventBridge envelope, is validated with the Powertools parser
   (``EventBridgeModel``), then its ``detail`` against the ``infra.schemas`` model
   of its ``detail-type``. A message that fails is poison: it is logged with the
   validation error and reported as a batch item failure, so SQS retries it up to
   ``maxReceiveCount`` and then moves it to the DLQ.
3. The business code runs under Powertools idempotency keyed on the event ``id``
   (key ``<consumer>#<md5 of id>``), with ``expires_after_seconds`` taken from
   ``Consumer.idempotency_window_for(detail-type)``: one persistence layer and
   config per window. The record carries ``correlation_id``, ``consumer``,
   ``event_type`` and ``event_id``. A redelivered event returns the stored result
   without running the business code again.
4. Any exception is a batch item failure (the message is retried, the idempotency
   record of a failed attempt is deleted by Powertools). Every failed record is logged
   with ``logger.exception`` (``exception_name``, ``exception``: the traceback) and the
   appended ``message_id`` and ``correlation_id``: the dashboard finds a DLQ message's
   real error by its message ID in the consumer's log group.

``build_consumer_handler`` builds a handler from explicit configuration (devstack
runs all consumers in one process); ``lambda_handler`` builds it from the
environment on the first invocation (Lambda).
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import ValidationError

from infra.functions.config import ConfigurationError, env, new_client
from infra.functions.idempotency import CorrelatedPersistenceLayer
from infra.schemas import EventDetail, UnknownEventType, model_for
from infra.topology import ORDERS_SOURCE, TOPOLOGY, Consumer

CORRELATION_ATTRIBUTE = "correlation_id"
LOG_KEYS = ("correlation_id", "event_id", "event_type", "message_id")
# Values taken from an unvalidated body are cut to a sane length before they are indexed.
ANNOTATION_MAX = 256


class PoisonMessage(Exception):
    """A message that no retry can fix (it will end in the DLQ)."""


class InvalidMessage(PoisonMessage):
    """The body is not a valid event of a known type (schema validation failed)."""


class BusinessRuleViolation(PoisonMessage):
    """The event is well-formed but breaks a business rule (e.g. an inconsistent amount)."""


@dataclass(frozen=True)
class ConsumerEvent:
    """A validated event, as handed to a consumer's ``process`` function."""

    event_id: str
    event_type: str
    source: str
    detail: EventDetail
    correlation_id: str
    envelope: dict[str, Any]
    message_id: str
    receive_count: int
    replay_name: str | None = None
    resources: tuple[str, ...] = ()


@dataclass
class ConsumerContext:
    """What a consumer's business code may use: its configuration and AWS clients."""

    consumer: Consumer
    orders_table: str
    logger: Logger
    _dynamodb: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def dynamodb(self) -> Any:
        """The consumer's DynamoDB client (created on first use)."""
        with self._lock:
            if self._dynamodb is None:
                self._dynamodb = new_client("dynamodb")
            return self._dynamodb


ProcessFunction = Callable[[ConsumerEvent, ConsumerContext], "dict[str, Any] | None"]
FaultHook = Callable[[ConsumerEvent], None]
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class _FallbackContext:
    """Stands in for the Lambda context when the handler runs outside Lambda (devstack).

    Powertools uses the remaining time to expire an in-progress idempotency lock; the
    visibility timeout is when SQS would redeliver anyway.
    """

    def __init__(self, seconds: int) -> None:
        self._millis = seconds * 1000

    def get_remaining_time_in_millis(self) -> int:
        return self._millis


def correlation_id_of(body: Any, record: SQSRecord) -> str:
    """``detail.correlationId`` of a (possibly invalid) body, else the message attribute."""
    if isinstance(body, dict) and isinstance(body.get("detail"), dict):
        value = body["detail"].get("correlationId")
        if isinstance(value, str) and value:
            return value
    attribute = record.message_attributes[CORRELATION_ATTRIBUTE]
    if attribute is not None and attribute.string_value:
        return attribute.string_value
    return ""


def _validation_text(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
    )


class OrdersEnvelope(EventBridgeModel):
    """The EventBridge envelope; ``account`` and ``region`` may be absent.

    Consumers never read them, and moto's SQS rule targets leave ``account`` out, so
    requiring them would make every devstack message poison.
    """

    account: str = ""
    region: str = ""


def validate_message(body: Any) -> tuple[EventBridgeModel, EventDetail]:
    """Parse an SQS body as an ``eventops.orders`` event; raises InvalidMessage."""
    if not isinstance(body, dict):
        raise InvalidMessage("body is not a JSON object (an EventBridge event envelope)")
    try:
        envelope = parse(event=body, model=OrdersEnvelope)
    except ValidationError as exc:
        raise InvalidMessage(f"envelope: {_validation_text(exc)}") from exc
    if envelope.source != ORDERS_SOURCE:
        raise InvalidMessage(f"unexpected source {envelope.source!r}")
    try:
        model = model_for(envelope.detail_type)
    except UnknownEventType:
        raise InvalidMessage(f"unknown detail-type {envelope.detail_type!r}") from None
    if not isinstance(envelope.detail, dict):
        raise InvalidMessage("detail is not an object")
    try:
        detail = parse(event=envelope.detail, model=model)
    except ValidationError as exc:
        raise InvalidMessage(f"{envelope.detail_type}: {_validation_text(exc)}") from exc
    return envelope, detail


class IdempotentConsumer:
    """One consumer's SQS batch handler: ``(event, context) -> {"batchItemFailures": [...]}``.

    Thread-safe: devstack may call it from several threads. Clients, persistence
    layers and idempotency configs are created on first use.
    """

    def __init__(
        self,
        consumer: Consumer,
        process: ProcessFunction,
        *,
        idempotency_table: str,
        orders_table: str,
        logger: Logger | None = None,
        tracer: Tracer | None = None,
        before_process: FaultHook | None = None,
    ) -> None:
        self.consumer = consumer
        self.process = process
        self.idempotency_table = idempotency_table
        self.before_process = before_process
        self.logger = logger or Logger(service=TOPOLOGY.function_name(consumer))
        self.tracer = tracer or Tracer(service=TOPOLOGY.function_name(consumer))
        self.context = ConsumerContext(consumer, orders_table, self.logger)
        self._runners: dict[int, tuple[Callable[..., Any], IdempotencyConfig]] = {}
        self._lock = threading.Lock()
        pattern_types = consumer.event_pattern.get("detail-type")
        self._accepted = frozenset(pattern_types) if pattern_types else None

    def __call__(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        # A processor per invocation: BatchProcessor keeps per-batch state.
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        lambda_context = context or _FallbackContext(self.consumer.visibility_timeout_s)

        def record_handler(record: SQSRecord) -> Any:
            return self.handle_record(record, lambda_context)

        return dict(
            process_partial_response(
                event=event, record_handler=record_handler, processor=processor, context=context
            )
        )

    def handle_record(self, record: SQSRecord, lambda_context: Any) -> Any:
        try:
            body: Any = json.loads(record.body, parse_float=Decimal)
        except ValueError:
            body = None
        correlation_id = correlation_id_of(body, record)
        raw_type = body.get("detail-type") if isinstance(body, dict) else None
        keys = {
            "correlation_id": correlation_id,
            "event_id": body.get("id") if isinstance(body, dict) else None,
            "event_type": raw_type,
            "message_id": record.message_id,
        }
        self.logger.thread_safe_append_keys(**keys)
        try:
            with self.tracer.provider.in_subsegment(f"## {self.consumer.name}.message") as segment:
                # Annotations are indexed for filter expressions; they must go on a
                # subsegment, the Lambda facade segment does not accept them.
                if correlation_id:
                    segment.put_annotation("correlation_id", correlation_id[:ANNOTATION_MAX])
                segment.put_annotation("consumer", self.consumer.name)
                if isinstance(raw_type, str) and raw_type:
                    segment.put_annotation("event_type", raw_type[:ANNOTATION_MAX])
                return self._validated_and_processed(body, record, correlation_id, lambda_context)
        finally:
            self.logger.thread_safe_remove_keys(LOG_KEYS)

    def _validated_and_processed(
        self, body: Any, record: SQSRecord, correlation_id: str, lambda_context: Any
    ) -> Any:
        try:
            event = self._event(body, record, correlation_id)
        except InvalidMessage as exc:
            # logger.exception: the line carries exception_name and the traceback, with the
            # appended message_id and correlation_id (the dashboard reads them from the logs).
            self.logger.exception(
                "poison message: validation failed",
                extra={"validation_error": str(exc), "receive_count": _receive_count(record)},
            )
            raise
        except Exception:
            self.logger.exception("message could not be read; it will be retried")
            raise
        if self._accepted is not None and event.event_type not in self._accepted:
            self.logger.warning("event type not handled by this consumer; acknowledged")
            return {"ignored": event.event_type}
        run, config = self._runner(self.consumer.idempotency_window_for(event.event_type))
        config.register_lambda_context(lambda_context)
        try:
            with CorrelatedPersistenceLayer.record_attributes(
                correlation_id=event.correlation_id,
                consumer=self.consumer.name,
                event_type=event.event_type,
                event_id=event.event_id,
            ):
                return run(message={"id": event.event_id}, event=event)
        except BusinessRuleViolation as exc:
            self.logger.exception("poison message: business rule", extra={"rule_error": str(exc)})
            raise
        except IdempotencyAlreadyInProgressError:
            self.logger.info("event is being processed by another invocation; will retry")
            raise
        except Exception:
            self.logger.exception("processing failed; the message will be retried")
            raise

    @staticmethod
    def _event(body: Any, record: SQSRecord, correlation_id: str) -> ConsumerEvent:
        envelope, detail = validate_message(body)
        return ConsumerEvent(
            event_id=envelope.id,
            event_type=envelope.detail_type,
            source=envelope.source,
            detail=detail,
            correlation_id=detail.correlationId or correlation_id,
            envelope=body,
            message_id=record.message_id,
            receive_count=_receive_count(record),
            replay_name=envelope.replay_name,
            resources=tuple(envelope.resources),
        )

    def _run(self, *, message: dict[str, Any], event: ConsumerEvent) -> dict[str, Any]:
        if self.before_process is not None:
            self.before_process(event)
        result = self.process(event, self.context) or {}
        self.logger.info("event processed", extra={"result": result})
        return result

    def _on_duplicate(self, response: Any, idempotent_data: DataRecord) -> Any:
        self.logger.info("duplicate delivery: returning the stored result")
        return response

    def _runner(self, window_s: int) -> tuple[Callable[..., Any], IdempotencyConfig]:
        """The idempotent runner for one idempotency window (one persistence config each)."""
        with self._lock:
            if window_s not in self._runners:
                # Each layer registers request hooks on its client, so it gets its own.
                persistence = CorrelatedPersistenceLayer(
                    self.idempotency_table, boto3_client=new_client("dynamodb")
                )
                config = IdempotencyConfig(
                    event_key_jmespath="id",
                    raise_on_no_idempotency_key=True,
                    expires_after_seconds=window_s,
                    response_hook=self._on_duplicate,
                )
                run = idempotent_function(
                    self._run,
                    data_keyword_argument="message",
                    persistence_store=persistence,
                    config=config,
                    key_prefix=self.consumer.name,
                )
                self._runners[window_s] = (run, config)
            return self._runners[window_s]


def _receive_count(record: SQSRecord) -> int:
    """``ApproximateReceiveCount``, or 0 where the caller left it out (devstack, tests)."""
    raw: Any = (record.raw_event.get("attributes") or {}).get("ApproximateReceiveCount")
    try:
        return int(raw)
    except (TypeError, ValueError):
        return 0


def process_function(consumer_name: str) -> ProcessFunction:
    """The ``process`` function of ``infra.functions.consumers.<consumer_name>``."""
    try:
        TOPOLOGY.consumer(consumer_name)
    except KeyError:
        raise ConfigurationError(f"unknown consumer {consumer_name!r}") from None
    module = importlib.import_module(f"infra.functions.consumers.{consumer_name}")
    process: ProcessFunction = module.process
    return process


def build_consumer_handler(
    consumer_name: str,
    *,
    idempotency_table: str,
    orders_table: str = TOPOLOGY.orders_table,
    logger: Logger | None = None,
    tracer: Tracer | None = None,
    before_process: FaultHook | None = None,
) -> IdempotentConsumer:
    """The SQS handler of one consumer of the topology, from explicit configuration.

    ``before_process(event)`` runs inside the idempotent section, before the business
    code; raising there is a processing failure (devstack injects transient errors
    with it). No AWS client is created until the first message.
    """
    return IdempotentConsumer(
        TOPOLOGY.consumer(consumer_name),
        process_function(consumer_name),
        idempotency_table=idempotency_table,
        orders_table=orders_table,
        logger=logger,
        tracer=tracer,
        before_process=before_process,
    )


def lambda_handler(consumer_name: str | None = None) -> Handler:
    """A Lambda handler that builds its consumer from the environment on first call.

    Reads ``CONSUMER_NAME`` (must match ``consumer_name`` when both are given),
    ``IDEMPOTENCY_TABLE`` and ``ORDERS_TABLE`` (default: the topology's names).
    """
    built: list[IdempotentConsumer] = []
    lock = threading.Lock()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        with lock:
            if not built:
                name = env("CONSUMER_NAME", consumer_name or "")
                if consumer_name and name != consumer_name:
                    raise ConfigurationError(
                        f"CONSUMER_NAME={name!r} but this is the {consumer_name!r} handler"
                    )
                built.append(
                    build_consumer_handler(
                        name,
                        idempotency_table=env("IDEMPOTENCY_TABLE", TOPOLOGY.idempotency_table),
                        orders_table=env("ORDERS_TABLE", TOPOLOGY.orders_table),
                    )
                )
        return built[0](event, context)

    return handler


# Generic entry point: ``infra.functions.consumer.handler`` with CONSUMER_NAME set.
handler = lambda_handler()
