"""SQS system attributes the dashboard relies on."""

from __future__ import annotations

import json
from typing import Any

TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def _queue_arn(client: Any, url: str) -> str:
    attrs = client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attrs["Attributes"]["QueueArn"])


def _dead_lettered(client: Any, name: str, **receive: Any) -> tuple[str, dict[str, Any]]:
    sqs = client("sqs")
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    policy = json.dumps({"deadLetterTargetArn": _queue_arn(client, dlq), "maxReceiveCount": 1})
    source = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": policy})["QueueUrl"]
    sqs.send_message(QueueUrl=source, MessageBody="poison")
    sqs.receive_message(QueueUrl=source, VisibilityTimeout=0)
    sqs.receive_message(QueueUrl=source)
    message = sqs.receive_message(QueueUrl=dlq, **receive)["Messages"][0]
    return _queue_arn(client, source), message


def test_dead_lettered_message_names_its_source_queue(client, name):
    source_arn, message = _dead_lettered(client, name, MessageSystemAttributeNames=["All"])
    assert message["Attributes"]["DeadLetterQueueSourceArn"] == source_arn
    assert message["Body"] == "poison"


def test_source_queue_is_returned_only_when_asked_for(client, name):
    _arn, message = _dead_lettered(client, name, MessageSystemAttributeNames=["SentTimestamp"])
    assert list(message["Attributes"]) == ["SentTimestamp"]


def test_put_events_trace_header_reaches_the_sqs_target(client, name):
    events, sqs = client("events"), client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    events.put_rule(Name=name, EventPattern=json.dumps({"source": [name]}))
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": _queue_arn(client, url)}])
    events.put_events(
        Entries=[{"Source": name, "DetailType": "d", "Detail": "{}", "TraceHeader": TRACE_HEADER}]
    )
    message = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["AWSTraceHeader"])
    assert message["Messages"][0]["Attributes"]["AWSTraceHeader"] == TRACE_HEADER
