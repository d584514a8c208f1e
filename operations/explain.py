"""How an AWS error reads: one classifier, worded for a page and for a command.

Three kinds matter to the person reading, because each asks for something else:

- ``TRANSIENT``: throttling, timeouts, 5xx. Nothing to do but wait; pages retry on
  their next refresh, commands can be run again.
- ``PERMISSION``: AccessDenied. Someone must grant an IAM action to a role: the
  text names both.
- ``UNAVAILABLE``: the endpoint does not offer the API at all (an emulator's "not
  implemented", a partition or Region without the service). Waiting will not help;
  that part of the page stays empty here.

Anything else (a bad parameter, a missing resource) reads as AWS said it.
"""

from __future__ import annotations

import re
from enum import StrEnum

from operations.aws import client as aws_client
from operations.aws import context as aws_context
from operations.aws.errors import AwsError


class Kind(StrEnum):
    TRANSIENT = "transient"
    PERMISSION = "permission"
    UNAVAILABLE = "unavailable"
    OTHER = "other"


# Codes by which an endpoint says it does not offer an API (as opposed to failing it).
UNAVAILABLE_CODES = frozenset(
    {
        "NotImplemented",
        "NotImplementedError",
        "UnknownOperationException",
        "UnknownOperation",
        "InvalidAction",
        "UnsupportedOperation",
        "UnsupportedOperationException",
        "501",
    }
)
_NOT_IMPLEMENTED = re.compile(r"not (yet )?(been )?implemented|unknown operation", re.IGNORECASE)
# "User: arn:aws:sts::123456789012:assumed-role/eventops-dashboard/eventops-alice is not
# authorized to perform: sqs:ListQueues ..." (AWS names the principal and the action).
_PRINCIPAL = re.compile(r"User: (arn:\S+) is not authorized to perform: ([\w-]+:\w+)")
_ASSUMED_ROLE = re.compile(r":assumed-role/([^/\s]+)/")

# IAM action prefix of each API the dashboard calls, by API name.
_IAM_SERVICE = {
    "ListQueues": "sqs",
    "GetQueueAttributes": "sqs",
    "GetQueueUrl": "sqs",
    "ListDeadLetterSourceQueues": "sqs",
    "ReceiveMessage": "sqs",
    "SendMessage": "sqs",
    "SendMessageBatch": "sqs",
    "DeleteMessage": "sqs",
    "DeleteMessageBatch": "sqs",
    "StartMessageMoveTask": "sqs",
    "ListMessageMoveTasks": "sqs",
    "CancelMessageMoveTask": "sqs",
    "DescribeAlarms": "cloudwatch",
    "DescribeAlarmHistory": "cloudwatch",
    "GetMetricData": "cloudwatch",
    "ListEventBuses": "events",
    "DescribeEventBus": "events",
    "ListRules": "events",
    "ListTargetsByRule": "events",
    "ListArchives": "events",
    "DescribeArchive": "events",
    "StartReplay": "events",
    "DescribeReplay": "events",
    "CancelReplay": "events",
    "PutEvents": "events",
    "DescribeLogGroups": "logs",
    "FilterLogEvents": "logs",
    "StartQuery": "logs",
    "GetQueryResults": "logs",
    "GetTraceSummaries": "xray",
    "BatchGetTraces": "xray",
    "ListEventSourceMappings": "lambda",
    "GetFunctionConfiguration": "lambda",
    "ListTagsForResource": "cloudwatch",
    "Query": "dynamodb",
    "GetItem": "dynamodb",
    "ListRegistries": "schemas",
    "ListSchemas": "schemas",
    "DescribeSchema": "schemas",
}


def permission_for(operation: str) -> str:
    """The IAM action an API call needs ("cloudwatch:DescribeAlarms")."""
    service = _IAM_SERVICE.get(operation)
    return f"{service}:{operation}" if service else operation


def kind_of(error: AwsError) -> Kind:
    """Which of the three kinds ``error`` is (``OTHER`` when none)."""
    if error.access_denied:
        return Kind.PERMISSION
    if error.code in UNAVAILABLE_CODES or _NOT_IMPLEMENTED.search(error.message):
        return Kind.UNAVAILABLE
    if error.transient:
        return Kind.TRANSIENT
    return Kind.OTHER


def _target() -> aws_context.Target:
    acting = aws_context.current()
    return acting.target if acting is not None else aws_client.default_target()


def missing_permission(error: AwsError) -> tuple[str, str]:
    """(the IAM action, who lacks it) of an AccessDenied, from AWS's own message when it
    says, else from the API name and the environment's role."""
    found = _PRINCIPAL.search(error.message)
    action = found.group(2) if found else permission_for(error.operation)
    if found:
        role = _ASSUMED_ROLE.search(found.group(1))
        who = f"the role {role.group(1)}" if role else found.group(1)
    else:
        role_arn = _target().role_arn
        who = f"the role {role_arn}" if role_arn else "the dashboard's AWS credentials"
    return action or "this call", who


def where() -> str:
    """The endpoint calls go to, as a person would name it."""
    target = _target()
    return target.endpoint_url or f"AWS {target.region or aws_client.FALLBACK_REGION}"


def describe(error: AwsError, *, command: bool = False) -> str:
    """One line about ``error`` for a page or, with ``command``, for command output
    (which nothing refreshes)."""
    kind = kind_of(error)
    if kind is Kind.PERMISSION:
        action, who = missing_permission(error)
        return f"Permission missing: {who} is not allowed {action}. An administrator can grant it."
    if kind is Kind.UNAVAILABLE:
        api = error.operation or "This call"
        return f"{api} is not available at this endpoint ({where()}); this part stays empty here."
    if kind is Kind.TRANSIENT:
        if command:
            return f"AWS is not answering right now ({error}). Run the command again in a minute."
        return f"AWS is not answering right now ({error}). Retrying on the next refresh."
    return str(error)
