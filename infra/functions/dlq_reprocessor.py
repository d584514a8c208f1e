"""DLQ reprocessor: redrive one DLQ with a single API call, SQS's own message move task.

Event: ``{"dlq_arn": "<DLQ ARN>", "rate": <optional 1-500>, "destination": "<optional
queue ARN>"}``. It calls ``StartMessageMoveTask`` for the DLQ (``rate`` becomes
``MaxNumberOfMessagesPerSecond``; without ``destination`` SQS sends each message back to
its original source queue) and returns the task handle:
``{"task_handle", "source_arn", "destination_arn", "rate"}``.

SQS moves the messages itself: it keeps bodies and attributes, never drops one, and
allows one active task per queue (a second start is refused, and the error is raised).
There is no hand-written receive/send/delete loop here any more. Follow or cancel the
task with ``ListMessageMoveTasks`` / ``CancelMessageMoveTask``. The dashboard's redrive
is the audited path (an Operation row, a lock per DLQ, progress, cancel); this handler
is for automation that only needs the move started.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from infra.functions.config import new_client

logger = logging.getLogger(__name__)

# arn:<partition>:sqs:<region>:<account>:<queue name>
QUEUE_ARN = re.compile(r"^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,80}(\.fifo)?$")
MAX_RATE = 500  # messages per second, StartMessageMoveTask's limit


def _queue_arn(value: object, field: str) -> str:
    if not isinstance(value, str) or not QUEUE_ARN.match(value):
        raise ValueError(f'"{field}" must be an SQS queue ARN, not {value!r}')
    return value


def _rate(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RATE:
        raise ValueError(f'"rate" must be a whole number of messages per second, 1-{MAX_RATE}')
    return value


def start_move(
    dlq_arn: str, *, rate: int | None = None, destination: str = "", sqs: Any | None = None
) -> dict[str, Any]:
    """Start the move task of ``dlq_arn``; returns its handle and what was asked."""
    request: dict[str, Any] = {"SourceArn": dlq_arn}
    if destination:
        request["DestinationArn"] = destination
    if rate is not None:
        request["MaxNumberOfMessagesPerSecond"] = rate
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html
    response = (sqs or new_client("sqs")).start_message_move_task(**request)
    handle = str(response["TaskHandle"])
    logger.info("started the move task of %s: %s", dlq_arn, handle)
    return {
        "task_handle": handle,
        "source_arn": dlq_arn,
        "destination_arn": destination,
        "rate": rate,
    }


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda handler: ``{"dlq_arn": ..., "rate": optional, "destination": optional}``."""
    if "dlq_arn" not in event:
        raise ValueError('the event needs "dlq_arn": the ARN of the DLQ to redrive')
    destination = event.get("destination") or ""
    return start_move(
        _queue_arn(event["dlq_arn"], "dlq_arn"),
        rate=_rate(event.get("rate")),
        destination=_queue_arn(destination, "destination") if destination else "",
    )
