"""Every consumer queue has a DLQ; queue settings come from the topology."""

from __future__ import annotations

from infra.topology import DAY, TOPOLOGY


def test_every_source_queue_has_a_dlq(cfn):
    source_ids = cfn.source_queue_ids()
    assert len(source_ids) == len(TOPOLOGY.consumers)
    for logical_id in source_ids:
        target = cfn.props(logical_id)["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"]
        assert cfn.resources[target[0]]["Type"] == "AWS::SQS::Queue", logical_id


def test_redrive_policy_uses_topology_dlq_and_max_receive_count(cfn):
    for consumer in TOPOLOGY.consumers:
        redrive = cfn.props(cfn.queue_id(TOPOLOGY.queue_name(consumer)))["RedrivePolicy"]
        assert redrive["deadLetterTargetArn"] == cfn.arn_of(
            cfn.queue_id(TOPOLOGY.dlq_name(consumer))
        )
        assert redrive["maxReceiveCount"] == consumer.max_receive_count


def test_dlq_retention_is_14_days(cfn):
    retention = {cfn.props(dlq)["MessageRetentionPeriod"] for dlq in cfn.dlq_ids()}
    assert retention == {1209600}
    assert TOPOLOGY.dlq_retention_days * DAY == 1209600


def test_queue_visibility_timeout_comes_from_topology(cfn):
    for consumer in TOPOLOGY.consumers:
        props = cfn.props(cfn.queue_id(TOPOLOGY.queue_name(consumer)))
        assert props["VisibilityTimeout"] == consumer.visibility_timeout_s, consumer.name


def test_every_queue_is_a_source_a_dlq_or_the_outbox_failure_destination(cfn):
    accounted = (
        cfn.source_queue_ids() | cfn.dlq_ids() | {cfn.queue_id(TOPOLOGY.outbox_failures_queue)}
    )
    assert set(cfn.of_type("AWS::SQS::Queue")) == accounted


def test_rule_delivers_the_topology_pattern_to_its_queue(cfn):
    rules = {
        r["Properties"]["Name"]: r["Properties"] for r in cfn.of_type("AWS::Events::Rule").values()
    }
    for consumer in TOPOLOGY.consumers:
        rule = rules[TOPOLOGY.rule_name(consumer)]
        assert rule["EventPattern"] == consumer.event_pattern
        assert rule["Targets"] == [
            {"Id": consumer.name, "Arn": cfn.arn_of(cfn.queue_id(TOPOLOGY.queue_name(consumer)))}
        ]


def test_queue_policy_lets_eventbridge_send_only_from_its_rule(cfn):
    policies = cfn.of_type("AWS::SQS::QueuePolicy").values()
    rule_ids = {r["Properties"]["Name"]: key for key, r in cfn.of_type("AWS::Events::Rule").items()}
    for consumer in TOPOLOGY.consumers:
        queue_id = cfn.queue_id(TOPOLOGY.queue_name(consumer))
        (policy,) = [p for p in policies if p["Properties"]["Queues"] == [{"Ref": queue_id}]]
        allows = [
            s
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
            if s["Effect"] == "Allow" and s["Principal"] == {"Service": "events.amazonaws.com"}
        ]
        assert len(allows) == 1 and "sqs:SendMessage" in cfn.actions(allows[0])
        assert allows[0]["Condition"] == {
            "ArnEquals": {"aws:SourceArn": cfn.arn_of(rule_ids[TOPOLOGY.rule_name(consumer)])}
        }
