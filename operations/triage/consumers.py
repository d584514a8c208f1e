"""Which function consumed a DLQ message, and where it logs.

A DLQ message's source queue is its ``DeadLetterQueueSourceArn`` (SQS sets it when it moves
a message), else the DLQ's source queues (``ListDeadLetterSourceQueues``). A source queue's
consumer is the function of its Lambda event source mapping; the function logs to its
``LoggingConfig.LogGroup``, else ``/aws/lambda/<function>``. Every step is a cached read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from operations import topology
from operations.aws import lambda_, sqs
from operations.aws.errors import AwsError
from operations.cache import cached


@dataclass(frozen=True)
class Consumer:
    function: str
    log_group: str


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def source_queue_arns(dlq_url: str) -> list[str]:
    """ARNs of the queues that send ``dlq_url`` their dead letters (cached)."""

    def fetch() -> list[str]:
        urls = sqs.dead_letter_source_queue_urls(dlq_url)
        return sorted(sqs.queue_attributes(url).arn for url in urls)

    found = cached(f"triage-sources:{_digest(dlq_url)}", fetch, max_age=topology.structure_ttl())
    if found.value is None:
        raise AwsError(found.error, code=found.error_code, operation="ListDeadLetterSourceQueues")
    return found.value


def log_group_of(function: str) -> str:
    """The function's log group (cached); Lambda's default when it cannot be read."""
    found = cached(
        f"triage-log-group:{_digest(function)}",
        lambda: lambda_.function_log_group(function),
        max_age=topology.structure_ttl(),
    )
    return found.value or f"/aws/lambda/{function}"


def consumers_by_queue(queue_arns: Iterable[str]) -> dict[str, list[Consumer]]:
    """The consumers of each queue (by ARN), from the cached event source mappings.

    ``AwsError`` if the mappings were never read successfully."""
    mappings = topology.mappings()
    if mappings.value is None:
        raise AwsError(
            mappings.error, code=mappings.error_code, operation="ListEventSourceMappings"
        )
    wanted = set(queue_arns)
    result: dict[str, list[Consumer]] = {arn: [] for arn in wanted}
    for mapping in mappings.value:
        if mapping.event_source_arn in wanted:
            function = mapping.function_name
            consumer = Consumer(function=function, log_group=log_group_of(function))
            if consumer not in result[mapping.event_source_arn]:
                result[mapping.event_source_arn].append(consumer)
    return result
