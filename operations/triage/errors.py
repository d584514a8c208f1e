"""The error a consumer recorded for a DLQ message.

This module is the contract the pages, the scan and the failure groups use:
``errors_for(dlq_url, messages)`` returns one ``ConsumerError`` per message ID. The sources,
best first: the consumer's own structured log line for the message (Logs Insights, then
FilterLogEvents), the X-Ray fault of the message's trace, Lambda's DLQ attributes
(``ErrorCode``/``ErrorMessage``), then "no error recorded".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from operations.dlq import DlqMessage

NO_ERROR = "(no error recorded)"


class Source(StrEnum):
    LOGS = "logs"
    XRAY = "xray"
    ATTRIBUTES = "attributes"
    NONE = "none"


@dataclass(frozen=True)
class ConsumerError:
    """What a consumer said about one message; ``consumer`` is its function name, if known."""

    message_id: str
    source: Source
    consumer: str = ""
    exception_name: str = ""
    message: str = ""
    location: str = ""
    correlation_id: str = ""
    logged_at: datetime | None = None

    @property
    def recorded(self) -> bool:
        return self.source is not Source.NONE

    @property
    def summary(self) -> str:
        """One line for a table cell: ``ValueError: amount must be positive``."""
        if not self.recorded:
            return NO_ERROR
        if self.exception_name and self.message:
            return f"{self.exception_name}: {self.message}"
        return self.exception_name or self.message or NO_ERROR


def from_attributes(message: DlqMessage) -> ConsumerError:
    """The last fallbacks: Lambda's DLQ attributes or an on-failure payload, else nothing."""
    error = message.error
    if not error:
        return ConsumerError(message_id=message.message_id, source=Source.NONE)
    code = message.attributes.get("ErrorCode", "")
    text = message.attributes.get("ErrorMessage", "") or error
    return ConsumerError(
        message_id=message.message_id,
        source=Source.ATTRIBUTES,
        exception_name=code if code and code != text else "",
        message=text,
        correlation_id=message.correlation_id,
    )


def errors_for(dlq_url: str, messages: Iterable[DlqMessage]) -> dict[str, ConsumerError]:
    """The recorded error of each message, by message ID."""
    return {message.message_id: from_attributes(message) for message in messages}
