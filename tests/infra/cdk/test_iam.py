"""The dashboard's IAM scoping, and no write action on a wildcard anywhere in the stack."""

from __future__ import annotations

import json

from infra.topology import TOPOLOGY

WRITE_ACTIONS = (
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:StartMessageMoveTask",
    "sqs:CancelMessageMoveTask",
    "events:PutEvents",
    "events:StartReplay",
    "events:CancelReplay",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
)
DLQ_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:StartMessageMoveTask",
    "sqs:ListMessageMoveTasks",
    "sqs:CancelMessageMoveTask",
)


def _keys(values):
    """Resources as comparable strings (they are intrinsic functions, i.e. dicts)."""
    return sorted(json.dumps(value, sort_keys=True) for value in values)


def test_dashboard_sends_messages_only_to_source_queues(cfn):
    granted = cfn.statements_with("sqs:SendMessage", cfn.dashboard_statements())
    assert _keys(granted) == _keys(cfn.arn_of(q) for q in cfn.source_queue_ids())
    assert not set(cfn.source_queue_ids()) & cfn.dlq_ids()


def test_dashboard_receives_and_deletes_only_on_dlqs(cfn):
    statements = cfn.dashboard_statements()
    expected = _keys(cfn.arn_of(q) for q in cfn.dlq_ids())
    for action in DLQ_ACTIONS:
        assert _keys(cfn.statements_with(action, statements)) == expected, action


def test_put_events_only_on_the_bus(cfn):
    (bus_id,) = cfn.of_type("AWS::Events::EventBus")
    granted = cfn.statements_with("events:PutEvents", cfn.all_statements())
    assert granted and set(_keys(granted)) == set(_keys([cfn.arn_of(bus_id)]))


def test_dashboard_replays_only_from_the_archive(cfn):
    (archive_id,) = cfn.of_type("AWS::Events::Archive")
    for action in ("events:StartReplay", "events:DescribeReplay", "events:CancelReplay"):
        granted = cfn.statements_with(action, cfn.dashboard_statements())
        assert cfn.arn_of(archive_id) in granted, action
        assert "*" not in granted and len(granted) == 2, action


def test_no_write_action_is_granted_on_a_wildcard_resource(cfn):
    for action in WRITE_ACTIONS:
        assert "*" not in cfn.statements_with(action, cfn.all_statements()), action
    wildcard_actions = [
        a for s in cfn.all_statements() for a in cfn.actions(s) if a.endswith(":*") or a == "*"
    ]
    assert wildcard_actions == []


def test_dashboard_reads_items_only_from_the_two_tables(cfn):
    tables = [
        key
        for key, t in cfn.of_type("AWS::DynamoDB::Table").items()
        if t["Properties"]["TableName"] in (TOPOLOGY.orders_table, TOPOLOGY.idempotency_table)
    ]
    for action in ("dynamodb:GetItem", "dynamodb:Query"):
        granted = cfn.statements_with(action, cfn.dashboard_statements())
        assert len(granted) == 2 * len(tables) == 4, action
        assert all(json.dumps(g).count("Fn::GetAtt") == 1 for g in granted), action


def test_dashboard_reads_only_the_event_log_group_and_the_consumers_logs(cfn):
    (log_group_id,) = [
        key
        for key, g in cfn.of_type("AWS::Logs::LogGroup").items()
        if g["Properties"]["LogGroupName"] == TOPOLOGY.event_log_group
    ]
    consumers = len(TOPOLOGY.consumers)
    for action in ("logs:FilterLogEvents", "logs:StartQuery"):
        granted = cfn.statements_with(action, cfn.dashboard_statements())
        assert cfn.arn_of(log_group_id) in granted, action
        # Two spellings of the event log and of each consumer function's log group.
        assert len(granted) == 2 + 2 * consumers and "*" not in granted, action


def test_dashboard_reads_the_configuration_of_the_consumers_only(cfn):
    granted = cfn.statements_with("lambda:GetFunctionConfiguration", cfn.dashboard_statements())
    assert len(granted) == len(TOPOLOGY.consumers) and "*" not in granted


def test_dashboard_role_trusts_the_parameter_principal_and_uses_the_policy(cfn):
    (role,) = [
        r["Properties"]
        for r in cfn.of_type("AWS::IAM::Role").values()
        if r["Properties"].get("RoleName") == TOPOLOGY.name("dashboard")
    ]
    statements = role["AssumeRolePolicyDocument"]["Statement"]
    assert all(
        {"Ref": "DashboardPrincipalArn"} in s["Principal"]["AWS"]["Fn::If"] for s in statements
    )
    (policy_id,) = cfn.of_type("AWS::IAM::ManagedPolicy")
    assert role["ManagedPolicyArns"] == [{"Ref": policy_id}]


def test_dashboard_role_lets_the_dashboard_set_the_source_identity(cfn):
    """The dashboard assumes its role as the person who acts (SourceIdentity)."""
    (role,) = [
        r["Properties"]
        for r in cfn.of_type("AWS::IAM::Role").values()
        if r["Properties"].get("RoleName") == TOPOLOGY.name("dashboard")
    ]
    actions = {
        action
        for s in role["AssumeRolePolicyDocument"]["Statement"]
        for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert {"sts:AssumeRole", "sts:SetSourceIdentity"} <= actions


def _reprocessor_statements(cfn):
    (function,) = [
        f["Properties"]
        for f in cfn.of_type("AWS::Lambda::Function").values()
        if f["Properties"].get("FunctionName") == TOPOLOGY.dlq_reprocessor_function
    ]
    role_id = function["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in cfn.of_type("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_reprocessor_starts_move_tasks_on_the_dlqs_only(cfn):
    statements = _reprocessor_statements(cfn)
    expected = _keys(cfn.arn_of(q) for q in cfn.dlq_ids())
    # StartMessageMoveTask moves as the caller: it needs these on the DLQ too.
    for action in ("sqs:StartMessageMoveTask", "sqs:ReceiveMessage", "sqs:DeleteMessage"):
        assert _keys(cfn.statements_with(action, statements)) == expected, action


def test_reprocessor_sends_only_to_source_queues_and_has_no_loop_left(cfn):
    statements = _reprocessor_statements(cfn)
    granted = cfn.statements_with("sqs:SendMessage", statements)
    assert _keys(granted) == _keys(cfn.arn_of(q) for q in cfn.source_queue_ids())
    # The hand-written move loop (and its visibility changes) is gone.
    assert cfn.statements_with("sqs:ChangeMessageVisibility", statements) == []
