"""CDK constructs for the eventops event system.

``ConsumerPipeline`` is the one way to declare a consumer: rule -> queue (with its
DLQ and redrive policy) -> Lambda, plus the DLQ alarms. A consumer cannot exist
without its DLQ and alarm because there is no other construct that makes one.

Every name comes from ``infra.topology``; nothing here hard-codes a resource name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsii
from aws_cdk import CfnResource, Duration, IAspect, RemovalPolicy, Stack, Tags
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

from infra.topology import (
    DLQ_ALARM_EXPRESSION,
    DLQ_ALARM_EXPRESSION_ID,
    DLQ_ALARM_METRICS,
    Consumer,
    Topology,
)

RUNTIME = lambda_.Runtime.PYTHON_3_11
ARCHITECTURE = lambda_.Architecture.X86_64
# The largest SQS batch a Lambda event source takes without a batching window.
SQS_BATCH_SIZE = 10
# The alarm tag the dashboard reads a runbook URL from (operations/runbooks.py).
RUNBOOK_TAG = "runbook"
FUNCTION_LOG_RETENTION = logs.RetentionDays.ONE_MONTH

# CloudWatch Logs only accepts these retention values; CDK exposes them as an enum.
_RETENTION_BY_DAYS: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}

# Topology event-pattern keys -> keyword of ``events.EventPattern``.
_PATTERN_FIELDS = {
    "source": "source",
    "detail-type": "detail_type",
    "detail": "detail",
    "account": "account",
    "region": "region",
    "resources": "resources",
    "id": "id",
    "time": "time",
    "version": "version",
}


def log_retention(days: int) -> logs.RetentionDays:
    """The ``RetentionDays`` member for ``days``; ValueError if CloudWatch has no such value."""
    try:
        return _RETENTION_BY_DAYS[days]
    except KeyError:
        raise ValueError(f"CloudWatch Logs cannot retain for {days} days") from None


def event_pattern(pattern: Mapping[str, Any]) -> events.EventPattern:
    """Convert a topology event pattern (EventBridge JSON keys) into a CDK ``EventPattern``."""
    unknown = set(pattern) - set(_PATTERN_FIELDS)
    if unknown:
        raise ValueError(f"unsupported event pattern keys: {sorted(unknown)}")
    return events.EventPattern(**{_PATTERN_FIELDS[key]: value for key, value in pattern.items()})


def function_timeout_s(visibility_timeout_s: int) -> int:
    """A consumer's timeout: well inside the queue's visibility timeout.

    Lambda refuses an SQS event source whose queue visibility timeout is shorter than
    the function timeout; half of it leaves room for the poller's own overhead.
    """
    return max(3, visibility_timeout_s // 2)


@jsii.implements(IAspect)
class FunctionDependsOnPolicyOnly:
    """Make each Lambda depend on its role's default policy only, not also on the role.

    CDK renders both; the role is already ordered by the ``Fn::GetAtt`` in ``Role``, so
    cfn-lint reports the second one (W3005). The policy stays: the SQS and stream event
    source mappings need its permissions when they are created.
    """

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, lambda_.Function) or node.role is None:
            return
        function = node.node.default_child
        policy = node.role.node.try_find_child("DefaultPolicy")
        if not isinstance(function, CfnResource) or policy is None:
            return
        policy_resource = policy.node.default_child
        if isinstance(policy_resource, CfnResource):
            function.add_override("DependsOn", [Stack.of(node).get_logical_id(policy_resource)])


@dataclass(frozen=True)
class FunctionDefaults:
    """What every eventops Lambda shares: code asset, Powertools layer, common environment."""

    code: lambda_.Code
    layers: Sequence[lambda_.ILayerVersion]
    environment: Mapping[str, str]


def traced_function(
    scope: Construct,
    construct_id: str,
    *,
    defaults: FunctionDefaults,
    function_name: str,
    handler: str,
    description: str,
    timeout_s: int,
    environment: Mapping[str, str],
) -> lambda_.Function:
    """A Python 3.11 Lambda with active X-Ray tracing and its own log group.

    The log group is declared explicitly (not ``log_retention``) so that no extra
    custom-resource Lambda ends up in the template.
    """
    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        log_group_name=f"/aws/lambda/{function_name}",
        retention=FUNCTION_LOG_RETENTION,
        removal_policy=RemovalPolicy.DESTROY,
    )
    return lambda_.Function(
        scope,
        construct_id,
        function_name=function_name,
        description=description,
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        handler=handler,
        code=defaults.code,
        layers=list(defaults.layers),
        tracing=lambda_.Tracing.ACTIVE,
        memory_size=256,
        timeout=Duration.seconds(timeout_s),
        environment={**defaults.environment, **environment},
        log_group=log_group,
    )


def queue_depth_alarm(
    scope: Construct,
    construct_id: str,
    *,
    queue: sqs.IQueue,
    alarm_name: str,
    period_s: int,
    topic: sns.ITopic,
    description: str,
) -> cloudwatch.Alarm:
    """Alarm when ``queue`` holds any message, visible or in flight; ALARM and OK notify ``topic``.

    Metric math over ``ApproximateNumberOfMessagesVisible`` + ``...NotVisible``: someone
    peeking at the queue hides its messages without fixing anything, and must not resolve the
    alarm. Not ``NumberOfMessagesSent``: automatic moves into a DLQ do not count as sent.
    """
    period = Duration.seconds(period_s)
    by_name = {
        "ApproximateNumberOfMessagesVisible": queue.metric_approximate_number_of_messages_visible,
        "ApproximateNumberOfMessagesNotVisible": (
            queue.metric_approximate_number_of_messages_not_visible
        ),
    }
    messages = cloudwatch.MathExpression(
        expression=DLQ_ALARM_EXPRESSION,
        using_metrics={
            query_id: by_name[metric](period=period, statistic=cloudwatch.Stats.MAXIMUM)
            for query_id, metric in DLQ_ALARM_METRICS
        },
        label="Messages visible or in flight",
        period=period,
    )
    alarm = cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_name=alarm_name,
        alarm_description=description,
        metric=messages,
        threshold=0,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluation_periods=1,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    resource = alarm.node.default_child
    if isinstance(resource, CfnResource):
        # CDK names the expression "expr_1"; the devstack provisioner uses the topology's Id.
        resource.add_property_override("Metrics.0.Id", DLQ_ALARM_EXPRESSION_ID)
    alarm.add_alarm_action(cw_actions.SnsAction(topic))
    alarm.add_ok_action(cw_actions.SnsAction(topic))
    return alarm


class ConsumerPipeline(Construct):
    """One consumer: rule -> queue -> Lambda, with DLQ, redrive policy and DLQ alarms."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topology: Topology,
        consumer: Consumer,
        bus: events.IEventBus,
        alerts_topic: sns.ITopic,
        idempotency_table: dynamodb.ITable,
        orders_table: dynamodb.ITable,
        function_defaults: FunctionDefaults,
        runbook_base_url: str = "",
    ) -> None:
        super().__init__(scope, construct_id)
        self.consumer = consumer
        self.runbook = topology.runbook(consumer, runbook_base_url)

        self.dlq = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=topology.dlq_name(consumer),
            retention_period=Duration.days(topology.dlq_retention_days),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=topology.queue_name(consumer),
            visibility_timeout=Duration.seconds(consumer.visibility_timeout_s),
            retention_period=Duration.days(topology.queue_retention_days),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dlq, max_receive_count=consumer.max_receive_count
            ),
        )

        # The SqsQueue target also writes the queue policy: events.amazonaws.com may
        # SendMessage, on the condition that aws:SourceArn is this rule.
        self.rule = events.Rule(
            self,
            "Rule",
            rule_name=topology.rule_name(consumer),
            description=f"{consumer.description} ({consumer.name} consumer)",
            event_bus=bus,
            event_pattern=event_pattern(consumer.event_pattern),
        )
        self.rule.add_target(targets.SqsQueue(self.queue))
        rule_resource = self.rule.node.default_child
        if isinstance(rule_resource, CfnResource):
            # A readable target ID (the devstack provisioner uses the same).
            rule_resource.add_property_override("Targets.0.Id", consumer.name)

        self.function = traced_function(
            self,
            "Function",
            defaults=function_defaults,
            function_name=topology.function_name(consumer),
            handler=consumer.handler,
            description=consumer.description,
            timeout_s=function_timeout_s(consumer.visibility_timeout_s),
            environment={
                "CONSUMER_NAME": consumer.name,
                "POWERTOOLS_SERVICE_NAME": consumer.name,
            },
        )
        self.function.add_event_source(
            event_sources.SqsEventSource(
                self.queue, batch_size=SQS_BATCH_SIZE, report_batch_item_failures=True
            )
        )
        idempotency_table.grant_read_write_data(self.function)
        # Consumers keep their own state (ledger, shipment, counters) in the orders table.
        orders_table.grant_read_write_data(self.function)

        self.dlq_alarm = queue_depth_alarm(
            self,
            "DlqNotEmptyAlarm",
            queue=self.dlq,
            alarm_name=topology.dlq_alarm_name(consumer),
            period_s=topology.dlq_alarm_period_s,
            topic=alerts_topic,
            description=f"{topology.dlq_name(consumer)} holds messages the "
            f"{consumer.name} consumer failed {consumer.max_receive_count} times. "
            f"Runbook: {self.runbook}",
        )
        self.dlq_age_alarm = cloudwatch.Alarm(
            self,
            "DlqOldestMessageAlarm",
            alarm_name=topology.dlq_age_alarm_name(consumer),
            alarm_description=f"The oldest message in {topology.dlq_name(consumer)} is close "
            f"to its {topology.dlq_retention_days}-day expiry. Runbook: {self.runbook}",
            metric=self.dlq.metric_approximate_age_of_oldest_message(
                period=Duration.minutes(5), statistic=cloudwatch.Stats.MAXIMUM
            ),
            threshold=topology.dlq_age_alarm_threshold_s,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.dlq_age_alarm.add_alarm_action(cw_actions.SnsAction(alerts_topic))
        self.dlq_age_alarm.add_ok_action(cw_actions.SnsAction(alerts_topic))
        # The dashboard reads the runbook from this tag (operations/runbooks.py).
        for alarm in (self.dlq_alarm, self.dlq_age_alarm):
            Tags.of(alarm).add(RUNBOOK_TAG, self.runbook)


__all__ = [
    "ConsumerPipeline",
    "FunctionDefaults",
    "FunctionDependsOnPolicyOnly",
    "event_pattern",
    "function_timeout_s",
    "log_retention",
    "queue_depth_alarm",
    "traced_function",
]
