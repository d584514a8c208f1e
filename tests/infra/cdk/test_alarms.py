"""Every DLQ has an alarm on ApproximateNumberOfMessagesVisible that notifies SNS."""

from __future__ import annotations

from aws_cdk.assertions import Match

from infra.topology import TOPOLOGY


def _alarms_on(cfn, queue_id, metric):
    return [
        alarm["Properties"]
        for alarm in cfn.of_type("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["MetricName"] == metric
        and alarm["Properties"]["Dimensions"]
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
    ]


def _topic_ref(cfn):
    (topic_id,) = cfn.of_type("AWS::SNS::Topic")
    return {"Ref": topic_id}


def test_every_dlq_has_a_depth_alarm_notifying_the_alerts_topic(cfn):
    topic = _topic_ref(cfn)
    for dlq in cfn.dlq_ids():
        (alarm,) = _alarms_on(cfn, dlq, "ApproximateNumberOfMessagesVisible")
        assert alarm["AlarmActions"] == [topic], dlq
        assert alarm["OKActions"] == [topic], dlq


def test_dlq_alarm_fires_on_one_message_within_60_seconds(template):
    for consumer in TOPOLOGY.consumers:
        template.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "AlarmName": TOPOLOGY.dlq_alarm_name(consumer),
                "Namespace": "AWS/SQS",
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Statistic": "Maximum",
                "Period": 60,
                "EvaluationPeriods": 1,
                "Threshold": 0,
                "ComparisonOperator": "GreaterThanThreshold",
                "TreatMissingData": "notBreaching",
            },
        )


def test_dlq_alarm_names_come_from_topology(cfn):
    names = {
        alarm["AlarmName"]
        for dlq in cfn.dlq_ids()
        for alarm in _alarms_on(cfn, dlq, "ApproximateNumberOfMessagesVisible")
    }
    assert names == {TOPOLOGY.dlq_alarm_name(c) for c in TOPOLOGY.consumers}


def test_every_dlq_alarms_on_message_age_before_expiry(cfn):
    retention_s = TOPOLOGY.dlq_retention_days * 86400
    for dlq in cfn.dlq_ids():
        (alarm,) = _alarms_on(cfn, dlq, "ApproximateAgeOfOldestMessage")
        assert 0 < alarm["Threshold"] < retention_s
        assert alarm["AlarmActions"] == [_topic_ref(cfn)]


def test_outbox_failure_queue_has_a_depth_alarm(template, cfn):
    queue_id = cfn.queue_id(TOPOLOGY.outbox_failures_queue)
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": TOPOLOGY.outbox_failures_alarm_name,
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}],
            "AlarmActions": Match.any_value(),
        },
    )
