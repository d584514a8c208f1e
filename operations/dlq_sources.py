"""Which queues feed a dead-letter queue: whether a queue is a DLQ at all, and its
sources, the only queues a redrive may send to. The pages and ``manage.py redrive``
check the same way."""

from __future__ import annotations

from operations import topology
from operations.aws import sqs
from operations.aws.errors import AwsError


class DestinationError(ValueError):
    """The destination asked for (or its absence) does not fit the DLQ's sources."""


def is_dead_letter_queue(queue: sqs.QueueAttributes) -> bool:
    """Whether some queue names ``queue`` as its DLQ: ListDeadLetterSourceQueues, cached
    (and shared with the queue page). ``AwsError`` if that was never read successfully."""
    sources = topology.dead_letter_sources(queue)
    if sources.value is None:
        raise AwsError(
            sources.error or "Could not list the queue's dead-letter sources.",
            code=sources.error_code,
            operation="ListDeadLetterSourceQueues",
        )
    return bool(sources.value)


def source_choices(dlq_url: str) -> list[tuple[str, str]]:
    """(ARN, name) of the DLQ's source queues: the only destinations a redrive may use."""
    choices = []
    for url in sqs.dead_letter_source_queue_urls(dlq_url):
        choices.append((sqs.queue_attributes(url).arn, sqs.queue_name_from_url(url)))
    return sorted(choices, key=lambda c: c[1])


def destination(dlq_url: str, chosen: str) -> str:
    """The ARN of the source queue that messages without ``DeadLetterQueueSourceArn`` go
    to: ``chosen`` (a queue name or ARN) if it is one of the DLQ's sources; the only
    source when there is one and nothing was chosen. ``DestinationError`` otherwise: a
    DLQ with several sources needs a choice."""
    sources = source_choices(dlq_url)
    names = ", ".join(name for _, name in sources)
    if not chosen:
        if len(sources) == 1:
            return sources[0][0]
        raise DestinationError(
            f"The DLQ has {len(sources)} source queues ({names}): choose one as the "
            "destination of messages that do not name their source."
        )
    for arn, name in sources:
        if chosen in (arn, name):
            return arn
    raise DestinationError(f"{chosen} is not a source queue of this DLQ (sources: {names}).")
