"""Requests the emulator now answers as the AWS API references say, errors included.

- CloudWatch DescribeAlarms: StateValue is one of OK, ALARM, INSUFFICIENT_DATA.
- X-Ray BatchGetTraces: 1 to 5 trace IDs ("Exceeding maximum query size: 5").
- SQS ListDeadLetterSourceQueues: MaxResults 1 to 1,000; NextToken only with MaxResults.
- SQS ReceiveMessage: MaxNumberOfMessages 1 to 10, WaitTimeSeconds 0 to 20, one message each.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.infra.devstack.test_emulator.sqs_alarms import queue_arn


def _error(call: Any, **params: Any) -> dict[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return dict(caught.value.response["Error"])


def test_describe_alarms_refuses_an_unknown_state_value(client):
    error = _error(client("cloudwatch").describe_alarms, StateValue="FIRING")
    assert error["Code"] == "ValidationError"
    assert error["Message"] == (
        "1 validation error detected: Value 'FIRING' at 'stateValue' failed to satisfy "
        "constraint: Member must satisfy enum value set: [OK, ALARM, INSUFFICIENT_DATA]"
    )


def test_describe_alarms_still_filters_by_a_known_state_value(client, name):
    cloudwatch = client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace=name,
        MetricName="Errors",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="test")
    names = [a["AlarmName"] for a in cloudwatch.describe_alarms(StateValue="ALARM")["MetricAlarms"]]
    assert name in names


def test_batch_get_traces_refuses_more_than_five_ids(client):
    ids = [f"1-5f84c7a1-{n:024x}" for n in range(6)]
    error = _error(client("xray").batch_get_traces, TraceIds=ids)
    assert (error["Code"], error["Message"]) == (
        "InvalidRequestException",
        "Exceeding maximum query size: 5",
    )


def test_batch_get_traces_accepts_five_ids(client):
    ids = [f"1-5f84c7a1-{n:024x}" for n in range(5)]
    assert client("xray").batch_get_traces(TraceIds=ids)["Traces"] == []


def _dlq_with_sources(client: Any, name: str, count: int) -> str:
    sqs = client("sqs")
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    policy = json.dumps({"deadLetterTargetArn": queue_arn(client, dlq), "maxReceiveCount": 3})
    for n in range(count):
        sqs.create_queue(QueueName=f"{name}-src{n}", Attributes={"RedrivePolicy": policy})
    return str(dlq)


def test_dead_letter_source_queues_come_in_pages_of_max_results(client, name):
    dlq = _dlq_with_sources(client, name, 5)
    pages = (
        client("sqs")
        .get_paginator("list_dead_letter_source_queues")
        .paginate(QueueUrl=dlq, PaginationConfig={"PageSize": 2})
    )
    sizes = [len(page["queueUrls"]) for page in pages]
    assert sizes == [2, 2, 1]


def test_dead_letter_source_queues_without_max_results_have_no_next_token(client, name):
    dlq = _dlq_with_sources(client, name, 3)
    page = client("sqs").list_dead_letter_source_queues(QueueUrl=dlq)
    assert len(page["queueUrls"]) == 3
    assert "NextToken" not in page


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"MaxResults": 1001},
            "Value for parameter MaxResults is invalid. Reason: MaxResults must be an integer "
            "between 1 and 1000.",
        ),
        ({"MaxResults": 2, "NextToken": "not-a-token"}, "Invalid NextToken value."),
    ],
)
def test_dead_letter_source_queues_refuse_bad_paging(client, name, params, message):
    dlq = _dlq_with_sources(client, name, 1)
    error = _error(client("sqs").list_dead_letter_source_queues, QueueUrl=dlq, **params)
    assert (error["Code"], error["Message"]) == ("InvalidParameterValue", message)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"MaxNumberOfMessages": 11},
            "Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 "
            "and 10, if provided.",
        ),
        (
            {"WaitTimeSeconds": 21},
            "Value 21 for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, "
            "if provided.",
        ),
    ],
)
def test_receive_message_errors_say_it_once(client, name, params, message):
    url = client("sqs").create_queue(QueueName=name)["QueueUrl"]
    error = _error(client("sqs").receive_message, QueueUrl=url, **params)
    assert (error["Code"], error["Message"]) == ("InvalidParameterValue", message)
