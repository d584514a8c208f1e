"""AWS/SQS, AWS/Lambda and AWS/Events metrics written into moto's CloudWatch by tick()."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.cloudwatch.models import CloudWatchBackend

from infra.devstack.emulator.metrics import MetricWriter


def _series(client: Any, namespace: str, metric: str, dims: dict[str, str], stat: str) -> list:
    now = datetime.now(UTC)
    result = client("cloudwatch").get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {
                        "Namespace": namespace,
                        "MetricName": metric,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                    },
                    "Period": 60,
                    "Stat": stat,
                },
            }
        ],
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=1),
    )
    return result["MetricDataResults"][0]["Values"]


def _queue(client: Any, name: str) -> str:
    return client("sqs").create_queue(QueueName=name)["QueueUrl"]


def test_queue_depth_appears_in_get_metric_data_after_a_tick(client, stack, name):
    url = _queue(client, name)
    for n in range(3):
        client("sqs").send_message(QueueUrl=url, MessageBody=f"m{n}")
    dims = {"QueueName": name}
    assert _series(client, "AWS/SQS", "ApproximateNumberOfMessagesVisible", dims, "Maximum") == []
    stack.emulator.tick()
    assert _series(client, "AWS/SQS", "ApproximateNumberOfMessagesVisible", dims, "Maximum") == [
        3.0
    ]


def test_sent_received_deleted_and_empty_receives_are_counted(client, stack, name):
    sqs, url = client("sqs"), _queue(client, name)
    sqs.send_message(QueueUrl=url, MessageBody="12345")
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "x"}])
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=received[0]["ReceiptHandle"])
    sqs.receive_message(QueueUrl=url)
    stack.emulator.tick()
    dims = {"QueueName": name}
    counts = {
        metric: _series(client, "AWS/SQS", metric, dims, "Sum")
        for metric in (
            "NumberOfMessagesSent",
            "NumberOfMessagesReceived",
            "NumberOfMessagesDeleted",
            "NumberOfEmptyReceives",
        )
    }
    assert counts == {
        "NumberOfMessagesSent": [2.0],
        "NumberOfMessagesReceived": [2.0],
        "NumberOfMessagesDeleted": [1.0],
        "NumberOfEmptyReceives": [1.0],
    }
    assert _series(client, "AWS/SQS", "SentMessageSize", dims, "Maximum") == [5.0]


def test_in_flight_messages_and_age_of_oldest_are_sampled(client, stack, name):
    sqs, url = client("sqs"), _queue(client, name)
    sqs.send_message(QueueUrl=url, MessageBody="a")
    sqs.send_message(QueueUrl=url, MessageBody="b")
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=300)
    stack.emulator.tick(datetime.now(UTC) + timedelta(seconds=30))
    dims = {"QueueName": name}
    not_visible = _series(client, "AWS/SQS", "ApproximateNumberOfMessagesNotVisible", dims, "Sum")
    age = _series(client, "AWS/SQS", "ApproximateAgeOfOldestMessage", dims, "Maximum")
    assert not_visible == [1.0]
    assert 29 <= age[0] <= 40


def test_two_samples_in_one_minute_keep_one_datapoint(client, stack, name):
    sqs, url = client("sqs"), _queue(client, name)
    sqs.send_message(QueueUrl=url, MessageBody="a")
    now = datetime.now(UTC).replace(second=10)
    stack.emulator.tick(now)
    sqs.send_message(QueueUrl=url, MessageBody="b")
    stack.emulator.tick(now + timedelta(seconds=20))
    visible = _series(
        client, "AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": name}, "SampleCount"
    )
    sent = _series(client, "AWS/SQS", "NumberOfMessagesSent", {"QueueName": name}, "Sum")
    assert visible == [1.0]
    assert sent == [2.0]


def test_lambda_invocations_errors_and_duration(client, stack, name):
    stack.emulator.record_lambda_invocation(name, 120.0, error=True)
    stack.emulator.record_lambda_invocation(name, 80.0)
    stack.emulator.record_lambda_invocation(name, 0.0, throttled=True)
    stack.emulator.tick()
    dims = {"FunctionName": name}
    assert [
        _series(client, "AWS/Lambda", m, dims, "Sum")
        for m in ("Invocations", "Errors", "Throttles")
    ] == [[2.0], [1.0], [1.0]]
    assert _series(client, "AWS/Lambda", "Duration", dims, "Average") == [100.0]


def test_rule_metrics_count_matches_and_disabled_rules_deliver_nothing(client, stack, name):
    events, sqs = client("events"), client("sqs")
    events.create_event_bus(Name=name)
    url = _queue(client, name)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    for rule, state in (("live", "ENABLED"), ("off", "DISABLED")):
        events.put_rule(
            Name=rule, EventBusName=name, EventPattern=json.dumps({"source": ["s"]}), State=state
        )
        events.put_targets(Rule=rule, EventBusName=name, Targets=[{"Id": "q", "Arn": arn}])
    events.put_events(
        Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}", "EventBusName": name}]
    )
    stack.emulator.tick()
    matched = _series(
        client, "AWS/Events", "MatchedEvents", {"RuleName": "live", "EventBusName": name}, "Sum"
    )
    assert matched == [1.0]
    assert len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]) == 1


def test_get_metric_data_aligns_periods_and_matches_dimension_sets_exactly(client, name):
    cloudwatch = client("cloudwatch")
    at = datetime.now(UTC).replace(second=42, microsecond=0) - timedelta(minutes=3)
    for dims in ([("A", "1")], [("A", "1"), ("B", "2")]):
        cloudwatch.put_metric_data(
            Namespace=name,
            MetricData=[
                {
                    "MetricName": "m",
                    "Value": float(len(dims)),
                    "Timestamp": at,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dims],
                }
            ],
        )
    now = datetime.now(UTC)
    result = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {
                        "Namespace": name,
                        "MetricName": "m",
                        "Dimensions": [{"Name": "B", "Value": "2"}, {"Name": "A", "Value": "1"}],
                    },
                    "Period": 60,
                    "Stat": "Sum",
                },
            }
        ],
        StartTime=now - timedelta(minutes=10),
        EndTime=now,
    )["MetricDataResults"][0]
    assert result["Values"] == [2.0]
    assert result["Timestamps"][0].astimezone(UTC) == at.replace(second=0)


def test_writer_prunes_its_datapoints_after_the_retention():
    backend = CloudWatchBackend("us-east-1", "123456789012")
    start = datetime(2026, 1, 1, 12, 0)
    MetricWriter(backend, start).gauge("AWS/SQS", "X", (("QueueName", "q"),), 1.0, "Count")
    later = MetricWriter(backend, start + timedelta(hours=2))
    later.gauge("AWS/SQS", "X", (("QueueName", "q"),), 2.0, "Count")
    assert later.prune(timedelta(hours=1)) == 1
    assert [d.value for d in backend.metric_data] == [2.0]


def test_list_metrics_names_each_queue_metric_once(client, stack, name):
    _queue(client, name)
    now = datetime.now(UTC)
    stack.emulator.tick(now - timedelta(minutes=2))
    stack.emulator.tick(now)
    metrics = client("cloudwatch").list_metrics(
        Namespace="AWS/SQS", Dimensions=[{"Name": "QueueName", "Value": name}]
    )["Metrics"]
    names = [m["MetricName"] for m in metrics]
    assert len(names) == len(set(names)) == 8
    assert "ApproximateAgeOfOldestMessage" in names
