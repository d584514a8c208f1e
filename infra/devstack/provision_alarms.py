"""The devstack's CloudWatch alarms, as ``infra/stack.py`` declares them for AWS.

Part of :mod:`infra.devstack.provision`: the DLQ alarms (metric math over visible plus
in-flight messages), the DLQ age alarms, and the composite alarm over the consumers' DLQ
alarms. Every call is idempotent.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from infra.topology import (
    DLQ_ALARM_EXPRESSION,
    DLQ_ALARM_EXPRESSION_ID,
    DLQ_ALARM_METRICS,
    Consumer,
    Topology,
)

log = logging.getLogger(__name__)


class AlarmProvisioner:
    """Puts one topology's alarms through one CloudWatch client."""

    def __init__(self, cloudwatch: Any, topology: Topology) -> None:
        self.cloudwatch = cloudwatch
        self.topology = topology

    def queue_depth_alarm(
        self, name: str, description: str, queue_name: str, period_s: int, topic_arn: str
    ) -> None:
        """Alarm while the queue holds any message, visible or in flight (metric math).

        As ``infra.constructs.queue_depth_alarm``: a peek hides messages without fixing
        anything, so it must not resolve the alarm.
        """
        metrics: list[dict[str, Any]] = [
            {"Id": DLQ_ALARM_EXPRESSION_ID, "Expression": DLQ_ALARM_EXPRESSION, "ReturnData": True}
        ]
        metrics += [
            {
                "Id": query_id,
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SQS",
                        "MetricName": metric,
                        "Dimensions": [{"Name": "QueueName", "Value": queue_name}],
                    },
                    "Period": period_s,
                    "Stat": "Maximum",
                },
                "ReturnData": False,
            }
            for query_id, metric in DLQ_ALARM_METRICS
        ]
        self.put_alarm(
            {"AlarmName": name, "AlarmDescription": description, "Metrics": metrics}, topic_arn
        )

    def queue_alarm(
        self,
        name: str,
        description: str,
        queue_name: str,
        metric: str,
        period_s: int,
        threshold: float,
        topic_arn: str,
    ) -> None:
        """An alarm on one AWS/SQS metric of one queue; ALARM and OK both notify the topic."""
        self.put_alarm(
            {
                "AlarmName": name,
                "AlarmDescription": description,
                "Namespace": "AWS/SQS",
                "MetricName": metric,
                "Dimensions": [{"Name": "QueueName", "Value": queue_name}],
                "Statistic": "Maximum",
                "Period": period_s,
                "Threshold": threshold,
            },
            topic_arn,
        )

    def put_alarm(self, params: dict[str, Any], topic_arn: str) -> None:
        """Put a "greater than the threshold" alarm, notifying ``topic_arn`` on ALARM and OK.

        put_metric_alarm replaces an alarm of the same name (and moto resets its state), so
        on a re-run the previous state is restored: the emulator's evaluator owns the state.
        """
        cloudwatch = self.cloudwatch
        name = params["AlarmName"]
        previous = cloudwatch.describe_alarms(AlarmNames=[name]).get("MetricAlarms", [])
        defaults = {
            "EvaluationPeriods": 1,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [topic_arn],
            "OKActions": [topic_arn],
            "ActionsEnabled": True,
        }
        cloudwatch.put_metric_alarm(**{**defaults, **params})
        if previous and previous[0].get("StateValue") not in (None, "INSUFFICIENT_DATA"):
            cloudwatch.set_alarm_state(
                AlarmName=name,
                StateValue=previous[0]["StateValue"],
                StateReason=previous[0].get("StateReason") or "kept across re-provisioning",
            )

    def dlq_alarms(self, consumer: Consumer, topic_arn: str) -> None:
        """The DLQ-not-empty alarm and the oldest-message-age alarm of one consumer."""
        t = self.topology
        dlq = t.dlq_name(consumer)
        self.queue_depth_alarm(
            t.dlq_alarm_name(consumer),
            f"{dlq} holds messages the {consumer.name} consumer failed "
            f"{consumer.max_receive_count} times",
            dlq,
            t.dlq_alarm_period_s,
            topic_arn,
        )
        self.queue_alarm(
            t.dlq_age_alarm_name(consumer),
            f"The oldest message in {dlq} is close to its {t.dlq_retention_days}-day expiry",
            dlq,
            "ApproximateAgeOfOldestMessage",
            300,
            t.dlq_age_alarm_threshold_s,
            topic_arn,
        )

    def dlqs_composite_alarm(self) -> bool:
        """The composite alarm over every consumer's DLQ alarm (no actions: children notify).

        Stock moto has no PutCompositeAlarm (the emulator adds it); without it the devstack
        goes on without the composite alarm. Returns whether it exists.
        """
        t = self.topology
        try:
            self.cloudwatch.put_composite_alarm(
                AlarmName=t.dlqs_composite_alarm_name,
                AlarmDescription="Some consumer's DLQ holds messages (see its child alarms)",
                AlarmRule=t.dlqs_composite_alarm_rule,
            )
        except (ClientError, NotImplementedError) as exc:
            log.warning("no composite alarm %s: %s", t.dlqs_composite_alarm_name, exc)
            return False
        return True
