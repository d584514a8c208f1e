"""Hooks on moto's SQS and EventBridge backends.

- Count sends, receives, empty receives and deletes per queue (for the AWS/SQS metrics), and
  matched events and target invocations per rule (AWS/Events).
- Stamp ``DeadLetterQueueSourceArn`` on messages moto moves to a DLQ, and return it from
  ``ReceiveMessage`` (moto's response only knows a fixed list of system attributes).
- Carry a ``PutEvents`` entry's ``TraceHeader`` to the SQS messages its rules deliver, as the
  ``AWSTraceHeader`` system attribute.
- Do not deliver events through DISABLED rules (moto ignores the rule state).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any

from infra.devstack.emulator.metrics import Counters

DLQ_SOURCE = "DeadLetterQueueSourceArn"
_local = threading.local()


def _trace_header() -> str | None:
    return getattr(_local, "trace_header", None)


SEND_MESSAGE_PARAMETERS = ("self", "queue_name", "message_body", "system_attributes")


def wrap_send_message(original: Callable[..., Any], counters: Counters) -> Callable[..., Any]:
    # Where system_attributes sits among the optional arguments (moto's callers pass it by
    # keyword; a positional one is left alone).
    names = list(inspect.signature(original).parameters)
    optional_position = names.index("system_attributes") - 3 if "system_attributes" in names else 0

    def send_message(
        self: Any, queue_name: str, message_body: str, *args: Any, **kwargs: Any
    ) -> Any:
        header = _trace_header()
        if header and len(args) <= optional_position:
            system = dict(kwargs.get("system_attributes") or {})
            if not system.get("AWSTraceHeader"):
                system["AWSTraceHeader"] = {"StringValue": header, "DataType": "String"}
                kwargs["system_attributes"] = system
        message = original(self, queue_name, message_body, *args, **kwargs)
        counters.queue_sent(
            self.account_id, self.region_name, queue_name, len(message_body.encode("utf-8"))
        )
        return message

    return send_message


def wrap_receive_message(original: Callable[..., Any], counters: Counters) -> Callable[..., Any]:
    def receive_message(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        queue = self.get_queue(queue_name)
        dlq = queue.dead_letter_queue
        before = {id(m) for m in queue._messages} if dlq is not None else set()
        result = original(self, queue_name, *args, **kwargs)
        if dlq is not None:
            for message in list(dlq._messages):
                if id(message) in before and DLQ_SOURCE not in (message.system_attributes or {}):
                    message.system_attributes = {
                        **(message.system_attributes or {}),
                        DLQ_SOURCE: {"StringValue": queue.queue_arn, "DataType": "String"},
                    }
        counters.queue_received(self.account_id, self.region_name, queue_name, len(result))
        return result

    return receive_message


def wrap_delete_message(original: Callable[..., Any], counters: Counters) -> Callable[..., Any]:
    def delete_message(self: Any, queue_name: str, receipt_handle: str) -> None:
        original(self, queue_name, receipt_handle)
        counters.queue_deleted(self.account_id, self.region_name, queue_name)

    return delete_message


def wrap_receive_response(original: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``DeadLetterQueueSourceArn`` to ReceiveMessage's output when it was asked for."""

    def receive_message(self: Any) -> Any:
        result = original(self)
        wanted = set(self._get_param("MessageSystemAttributeNames", []) or []) | set(
            self._get_param("AttributeNames", []) or []
        )
        messages = getattr(result, "result", None) or {}
        if not (wanted & {"All", DLQ_SOURCE}) or not messages.get("Messages"):
            return result
        queue = self.sqs_backend.get_queue(self._get_queue_name())
        by_id = {m.id: m for m in list(queue._messages)}
        for entry in messages["Messages"]:
            stored = by_id.get(entry.get("MessageId"))
            source = ((stored.system_attributes or {}).get(DLQ_SOURCE) if stored else None) or {}
            if source.get("StringValue"):
                entry.setdefault("Attributes", {})[DLQ_SOURCE] = source["StringValue"]
        return result

    return receive_message


def wrap_put_events(original: Callable[..., Any]) -> Callable[..., Any]:
    def put_events(self: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(events) > 10 or not any(e.get("TraceHeader") for e in events or []):
            return original(self, events)
        entries: list[dict[str, Any]] = []
        for event in events:
            _local.trace_header = event.get("TraceHeader")
            try:
                entries.extend(original(self, [event]))
            finally:
                _local.trace_header = None
        return entries

    return put_events


def wrap_send_to_targets(original: Callable[..., Any], counters: Counters) -> Callable[..., Any]:
    def send_to_targets(self: Any, original_event: Any, *args: Any, **kwargs: Any) -> Any:
        if str(getattr(self, "state", "ENABLED")).upper() == "DISABLED":
            return None
        if not self.event_pattern.matches_event(original_event):
            return original(self, original_event, *args, **kwargs)
        targets = len(self.targets)
        try:
            result = original(self, original_event, *args, **kwargs)
        except Exception:
            counters.rule_delivery(
                self.account_id, self.region_name, self.event_bus_name, self.name, targets, targets
            )
            raise
        counters.rule_delivery(
            self.account_id, self.region_name, self.event_bus_name, self.name, targets, 0
        )
        return result

    return send_to_targets
