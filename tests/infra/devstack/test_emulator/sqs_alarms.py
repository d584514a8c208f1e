"""SQS queues with DLQs and the alarms on them, for the emulator's alarm tests."""

from __future__ import annotations

import json
from typing import Any


def queue_arn(client: Any, url: str) -> str:
    attrs = client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attrs["Attributes"]["QueueArn"])


def dlq_pair(client: Any, name: str) -> tuple[str, str]:
    """A source queue whose messages go to its DLQ after one receive."""
    sqs = client("sqs")
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    policy = json.dumps({"deadLetterTargetArn": queue_arn(client, dlq), "maxReceiveCount": 1})
    source = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": policy})["QueueUrl"]
    return source, dlq


def dead_letter(client: Any, source: str, count: int) -> None:
    sqs = client("sqs")
    for n in range(count):
        sqs.send_message(QueueUrl=source, MessageBody=f"poison {n}")
    for _ in range(count):
        sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10, VisibilityTimeout=0)
    sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10)  # moves them to the DLQ


def sns_inbox(client: Any, name: str) -> tuple[str, str]:
    """An SNS topic with an SQS queue subscribed, to read the notifications."""
    topic = client("sns").create_topic(Name=f"{name}-alerts")["TopicArn"]
    inbox = client("sqs").create_queue(QueueName=f"{name}-inbox")["QueueUrl"]
    client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(client, inbox))
    return topic, inbox


def dlq_alarm(client: Any, name: str, topic: str | None = None, **overrides: Any) -> str:
    alarm = f"{name}-dlq-not-empty"
    params: dict[str, Any] = {
        "AlarmName": alarm,
        "Namespace": "AWS/SQS",
        "MetricName": "ApproximateNumberOfMessagesVisible",
        "Dimensions": [{"Name": "QueueName", "Value": f"{name}-dlq"}],
        "Statistic": "Maximum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
    }
    if topic:
        params.update(AlarmActions=[topic], OKActions=[topic])
    params.update(overrides)
    client("cloudwatch").put_metric_alarm(**params)
    return alarm


def describe_alarm(client: Any, alarm: str, kind: str = "MetricAlarms") -> dict[str, Any]:
    types = ["CompositeAlarm"] if kind == "CompositeAlarms" else ["MetricAlarm"]
    found = client("cloudwatch").describe_alarms(AlarmNames=[alarm], AlarmTypes=types)[kind]
    return dict(found[0])


def drain(client: Any, url: str) -> None:
    """Receive and delete what the queue shows (one receive, as the DLQs here are small)."""
    sqs = client("sqs")
    for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
