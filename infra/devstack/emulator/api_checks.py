"""Request checks and paging where moto differs from AWS in ways the dashboard depends on.

- CloudWatch ``DescribeAlarms`` refuses a ``StateValue`` outside OK / ALARM / INSUFFICIENT_DATA
  (moto returns nothing).
- X-Ray ``BatchGetTraces`` refuses more than 5 trace IDs (``InvalidRequestException``,
  "Exceeding maximum query size: 5"), as AWS does.
- SQS ``ListDeadLetterSourceQueues`` honours ``MaxResults`` (1 to 1,000) and ``NextToken``;
  it answers a ``NextToken`` only when ``MaxResults`` was given, as the API reference says.
- SQS ``ReceiveMessage`` errors for ``MaxNumberOfMessages`` and ``WaitTimeSeconds`` carry AWS's
  message once (moto repeats botocore's "An error occurred (...) when calling ..." inside it,
  so clients showed it twice, and it got the WaitTimeSeconds bounds backwards).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from moto.cloudwatch.exceptions import ValidationError
from moto.core.responses import ActionResult
from moto.sqs.exceptions import InvalidParameterValue

from infra.devstack.emulator._patches import Patcher

ALARM_STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
MAX_TRACE_IDS = 5
MAX_SOURCE_QUEUES = 1000


def wrap_describe_alarms(original: Callable[..., Any]) -> Callable[..., Any]:
    def describe_alarms(self: Any) -> Any:
        state = self._get_param("StateValue")
        if state is not None and state not in ALARM_STATES:
            allowed = ", ".join(ALARM_STATES)
            raise ValidationError(
                f"1 validation error detected: Value '{state}' at 'stateValue' failed to "
                f"satisfy constraint: Member must satisfy enum value set: [{allowed}]"
            )
        return original(self)

    return describe_alarms


def wrap_batch_get_traces(original: Callable[..., Any]) -> Callable[..., Any]:
    def batch_get_traces(self: Any) -> Any:
        trace_ids = self._get_param("TraceIds")
        if isinstance(trace_ids, list) and len(trace_ids) > MAX_TRACE_IDS:
            return self._error(
                "InvalidRequestException", f"Exceeding maximum query size: {MAX_TRACE_IDS}"
            )
        return original(self)

    return batch_get_traces


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        offset = None
    if not isinstance(offset, int) or offset < 0:
        raise InvalidParameterValue("Invalid NextToken value.")
    return offset


def list_dead_letter_source_queues(self: Any) -> ActionResult:
    """moto's ListDeadLetterSourceQueues, paged like AWS."""
    max_results = self._get_param("MaxResults")
    if max_results is not None and not 1 <= int(max_results) <= MAX_SOURCE_QUEUES:
        raise InvalidParameterValue(
            "Value for parameter MaxResults is invalid. Reason: MaxResults must be an integer "
            f"between 1 and {MAX_SOURCE_QUEUES}."
        )
    offset = _offset(self._get_param("NextToken"))
    queues = self.sqs_backend.list_dead_letter_source_queues(self._get_queue_name())
    urls = sorted(queue.url(urlparse(self.uri)) for queue in queues)
    limit = int(max_results) if max_results is not None else MAX_SOURCE_QUEUES
    result: dict[str, Any] = {"queueUrls": urls[offset : offset + limit]}
    if max_results is not None and offset + limit < len(urls):
        result["NextToken"] = base64.urlsafe_b64encode(
            json.dumps({"offset": offset + limit}).encode()
        ).decode()
    return ActionResult(result)


def wrap_receive_message(original: Callable[..., Any]) -> Callable[..., Any]:
    def receive_message(self: Any) -> Any:
        count = self._get_param("MaxNumberOfMessages")
        if count is not None and not 1 <= int(count) <= 10:
            raise InvalidParameterValue(
                f"Value {count} for parameter MaxNumberOfMessages is invalid. "
                "Reason: Must be between 1 and 10, if provided."
            )
        wait = self._get_param("WaitTimeSeconds")
        if wait is not None and not 0 <= int(wait) <= 20:
            raise InvalidParameterValue(
                f"Value {wait} for parameter WaitTimeSeconds is invalid. "
                "Reason: Must be >= 0 and <= 20, if provided."
            )
        return original(self)

    return receive_message


def register(patcher: Patcher) -> None:
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.sqs.responses import SQSResponse
    from moto.xray.responses import XRayResponse

    patcher.setattr(
        CloudWatchResponse,
        "describe_alarms",
        wrap_describe_alarms(CloudWatchResponse.describe_alarms),
    )
    patcher.setattr(
        XRayResponse, "batch_get_traces", wrap_batch_get_traces(XRayResponse.batch_get_traces)
    )
    patcher.setattr(SQSResponse, "list_dead_letter_source_queues", list_dead_letter_source_queues)
    patcher.setattr(
        SQSResponse, "receive_message", wrap_receive_message(SQSResponse.receive_message)
    )
