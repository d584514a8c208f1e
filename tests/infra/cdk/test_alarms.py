"""Every DLQ has an alarm on its visible plus in-flight messages that notifies SNS, an age
alarm before expiry, and one composite alarm gathers the consumers' DLQ alarms."""

from __future__ import annotations

from typing import Any

from infra.topology import DLQ_ALARM_EXPRESSION, DLQ_ALARM_EXPRESSION_ID, TOPOLOGY


def _on_queue(queue_id: str) -> list[dict[str, Any]]:
    return [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]


def _alarms_on(cfn, queue_id, metric):
    """Alarms watching ``metric`` of the queue, directly or inside their metric math."""
    found = []
    for alarm in cfn.of_type("AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        watched = [(props.get("MetricName"), props.get("Dimensions"))]
        watched += [
            (q["MetricStat"]["Metric"]["MetricName"], q["MetricStat"]["Metric"]["Dimensions"])
            for q in props.get("Metrics", [])
            if "MetricStat" in q
        ]
        if (metric, _on_queue(queue_id)) in watched:
            found.append(props)
    return found


def _topic_ref(cfn):
    (topic_id,) = cfn.of_type("AWS::SNS::Topic")
    return {"Ref": topic_id}


def _depth_alarm(cfn, queue_id):
    """The queue's depth alarm: the one on visible messages (in its metric math)."""
    (alarm,) = _alarms_on(cfn, queue_id, "ApproximateNumberOfMessagesVisible")
    return alarm


def test_every_dlq_has_a_depth_alarm_notifying_the_alerts_topic(cfn):
    topic = _topic_ref(cfn)
    for dlq in cfn.dlq_ids():
        alarm = _depth_alarm(cfn, dlq)
        assert alarm["AlarmActions"] == [topic], dlq
        assert alarm["OKActions"] == [topic], dlq


def test_dlq_alarm_counts_visible_and_in_flight_messages(cfn):
    for dlq in cfn.dlq_ids():
        alarm = _depth_alarm(cfn, dlq)
        returned = [q for q in alarm["Metrics"] if q.get("ReturnData")]
        assert returned == [
            {
                "Id": DLQ_ALARM_EXPRESSION_ID,
                "Expression": DLQ_ALARM_EXPRESSION,
                "Label": "Messages visible or in flight",
                "ReturnData": True,
            }
        ]
        assert _alarms_on(cfn, dlq, "ApproximateNumberOfMessagesNotVisible") == [alarm]


def test_dlq_alarm_fires_on_one_message_within_60_seconds(cfn):
    for dlq in cfn.dlq_ids():
        alarm = _depth_alarm(cfn, dlq)
        settings = {key: alarm[key] for key in ("Threshold", "ComparisonOperator")}
        assert settings == {"Threshold": 0, "ComparisonOperator": "GreaterThanThreshold"}
        assert (alarm["EvaluationPeriods"], alarm["TreatMissingData"]) == (1, "notBreaching")
        stats = [q["MetricStat"] for q in alarm["Metrics"] if "MetricStat" in q]
        assert {(s["Period"], s["Stat"]) for s in stats} == {(60, "Maximum")}


def test_dlq_alarm_names_come_from_topology(cfn):
    names = {_depth_alarm(cfn, dlq)["AlarmName"] for dlq in cfn.dlq_ids()}
    assert names == {TOPOLOGY.dlq_alarm_name(c) for c in TOPOLOGY.consumers}


def test_every_dlq_alarms_on_message_age_before_expiry(cfn):
    retention_s = TOPOLOGY.dlq_retention_days * 86400
    for dlq in cfn.dlq_ids():
        (alarm,) = _alarms_on(cfn, dlq, "ApproximateAgeOfOldestMessage")
        assert 0 < alarm["Threshold"] < retention_s
        assert alarm["AlarmActions"] == [_topic_ref(cfn)]


def test_outbox_failure_queue_has_a_depth_alarm(cfn):
    alarm = _depth_alarm(cfn, cfn.queue_id(TOPOLOGY.outbox_failures_queue))
    assert alarm["AlarmName"] == TOPOLOGY.outbox_failures_alarm_name
    assert alarm["AlarmActions"] == [_topic_ref(cfn)]


def test_composite_alarm_is_in_alarm_when_any_consumer_dlq_alarm_is(cfn):
    (composite,) = cfn.of_type("AWS::CloudWatch::CompositeAlarm").values()
    rule = composite["Properties"]["AlarmRule"]
    assert composite["Properties"]["AlarmName"] == TOPOLOGY.dlqs_composite_alarm_name
    assert rule.split(" OR ") == [
        f'ALARM("{TOPOLOGY.dlq_alarm_name(c)}")' for c in TOPOLOGY.consumers
    ]


def test_composite_alarm_is_created_after_its_children(cfn):
    (composite,) = cfn.of_type("AWS::CloudWatch::CompositeAlarm").values()
    children = {
        logical_id
        for logical_id, alarm in cfn.of_type("AWS::CloudWatch::Alarm").items()
        if alarm["Properties"]["AlarmName"]
        in {TOPOLOGY.dlq_alarm_name(c) for c in TOPOLOGY.consumers}
    }
    assert set(composite["DependsOn"]) == children
