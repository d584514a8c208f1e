"""CloudWatch adapter: DescribeAlarms pages, GetMetricData chunks (exact requests via Stubber)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import ANY, Stubber

from operations import topology
from operations.aws import client as aws_client
from operations.aws import cloudwatch
from operations.aws.cloudwatch import Alarm, AlarmMetric, MetricQuery
from operations.aws.errors import AwsError

START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
END = START + timedelta(hours=1)


@pytest.fixture
def stub():
    cw = aws_client.client("cloudwatch")
    with Stubber(cw) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def _query(index: int) -> MetricQuery:
    return MetricQuery(
        id=f"m{index}",
        namespace="AWS/SQS",
        metric_name="ApproximateAgeOfOldestMessage",
        dimensions=(("QueueName", f"q{index}"),),
        stat="Maximum",
        period=60,
    )


def test_get_metric_data_sends_one_call_per_500_queries(stub):
    queries = [_query(i) for i in range(501)]
    for chunk in (queries[:500], queries[500:]):
        stub.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [
                    {"Id": q.id, "Timestamps": [END], "Values": [5.0]} for q in chunk
                ]
            },
            {
                "MetricDataQueries": ANY,
                "StartTime": START,
                "EndTime": END,
                "ScanBy": "TimestampAscending",
            },
        )

    series = cloudwatch.get_metric_data(queries, START, END)

    assert len(series) == 501
    assert series["m500"].latest == 5.0


def test_get_metric_data_request_names_metric_dimensions_and_period(stub):
    expected = {
        "MetricDataQueries": [
            {
                "Id": "m0",
                "Label": "m0",
                "ReturnData": True,
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SQS",
                        "MetricName": "ApproximateAgeOfOldestMessage",
                        "Dimensions": [{"Name": "QueueName", "Value": "q0"}],
                    },
                    "Period": 60,
                    "Stat": "Maximum",
                },
            }
        ],
        "StartTime": START,
        "EndTime": END,
        "ScanBy": "TimestampAscending",
    }
    stub.add_response("get_metric_data", {"MetricDataResults": []}, expected)

    series = cloudwatch.get_metric_data([_query(0)], START, END)

    assert series["m0"].values == []


def test_metric_query_ids_must_start_lowercase():
    bad = MetricQuery("Age", "AWS/SQS", "X", (), "Maximum", 60)

    with pytest.raises(ValueError, match="lowercase"):
        cloudwatch.get_metric_data([bad], START, END)


def test_describe_alarms_reads_pages_of_100_with_composites(stub):
    base = {"AlarmTypes": ["MetricAlarm", "CompositeAlarm"], "MaxRecords": 100}
    first = [
        {
            "AlarmName": f"heron-{i:03d}",
            "StateValue": "OK",
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": f"heron-{i:03d}-dlq"}],
        }
        for i in range(100)
    ]
    stub.add_response("describe_alarms", {"MetricAlarms": first, "NextToken": "t2"}, base)
    composite = {"AlarmName": "heron-all", "StateValue": "ALARM", "AlarmRule": 'ALARM("heron-007")'}
    stub.add_response(
        "describe_alarms", {"CompositeAlarms": [composite]}, {**base, "NextToken": "t2"}
    )

    alarms = cloudwatch.describe_alarms()

    assert len(alarms) == 101
    assert alarms[-1].kind == "composite" and alarms[-1].children == ("heron-007",)


def test_describe_alarms_access_denied_is_an_aws_error(stub):
    stub.add_client_error("describe_alarms", "AccessDenied", "not authorized", 403)

    with pytest.raises(AwsError) as caught:
        cloudwatch.describe_alarms()

    assert caught.value.access_denied
    assert caught.value.operation == "DescribeAlarms"


def test_alarms_map_to_queues_directly_and_through_composites():
    direct = Alarm(
        name="heron-dlq-depth",
        arn="",
        kind="metric",
        state="ALARM",
        state_reason="",
        state_updated=None,
        actions_enabled=True,
        metrics=(AlarmMetric("AWS/SQS", "X", (("QueueName", "heron-dlq"),)),),
    )
    parent = Alarm(
        "heron-all",
        "",
        "composite",
        "OK",
        "",
        None,
        True,
        rule='ALARM("heron-dlq-depth") OR ALARM(other)',
    )
    unrelated = Alarm(
        "cpu", "", "metric", "OK", "", None, True, metrics=(AlarmMetric("AWS/EC2", "CPU", ()),)
    )

    mapped = topology.alarms_by_queue([direct, parent, unrelated])

    assert [a.name for a in mapped["heron-dlq"]] == ["heron-dlq-depth", "heron-all"]
    assert len(mapped) == 1


def test_metric_alarms_from_moto_keep_their_queue_dimension(aws):
    boto3.client("cloudwatch", region_name="us-east-1").put_metric_alarm(
        AlarmName="heron-dlq-depth",
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[{"Name": "QueueName", "Value": "heron-dlq"}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )

    (alarm,) = cloudwatch.describe_alarms("heron")

    assert alarm.metrics[0].dimension("QueueName") == "heron-dlq"
