"""The eventops CDK stack, built from ``infra.topology.TOPOLOGY`` and ``infra.schemas``.

``python -m infra.app`` synthesizes it into ``infra/cdk.out/``; ``cdk deploy`` (npm CDK CLI,
``cdk.json`` at the repository root) deploys it. :func:`synth_template` returns the
CloudFormation template as a dict for tests that compare it with other builds of the
same topology (the devstack drift test).
"""

from __future__ import annotations

import copy
import functools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_eventschemas as eventschemas
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import schemas
from infra.constructs import (
    ConsumerPipeline,
    FunctionDefaults,
    FunctionDependsOnPolicyOnly,
    log_retention,
    queue_depth_alarm,
    traced_function,
)
from infra.topology import DAY, TOPOLOGY, Topology

INFRA_DIR = Path(__file__).resolve().parent
DEFAULT_OUTDIR = INFRA_DIR / "cdk.out"

# Lambda handlers that are not per-consumer (those come from the topology).
OUTBOX_PUBLISHER_HANDLER = "infra.functions.publisher.handler"
DLQ_REPROCESSOR_HANDLER = "infra.functions.dlq_reprocessor.handler"

# Public Powertools for AWS Lambda (Python) v3 layer, Python 3.11, x86_64. The layer is
# built "with extra dependencies": pydantic v2 (parser) and aws-xray-sdk (tracer) included.
POWERTOOLS_LAYER_ACCOUNT = "017000801446"
POWERTOOLS_LAYER_NAME = "AWSLambdaPowertoolsPythonV3-python311-x86_64"
POWERTOOLS_LAYER_VERSION = 27
# Context key (``cdk deploy -c powertools_layer_arn=...``) that replaces the layer ARN.
POWERTOOLS_LAYER_CONTEXT = "powertools_layer_arn"
# Context key: keep tables and log groups when the stack is deleted.
RETAIN_DATA_CONTEXT = "retain_data"
# Where the consumers' runbooks live (``-c runbook_base_url=https://...``), unless one
# names its own in the topology.
RUNBOOK_BASE_CONTEXT = "runbook_base_url"

CORRELATION_INDEX = "by-correlation-id"
# Matches every event: EventBridge requires a non-empty pattern, and every event has a source.
CATCH_ALL_PATTERN: dict[str, Any] = {"source": [{"prefix": ""}]}
EVENT_LOG_TARGET_ID = "event-log"
STREAM_BATCH_SIZE = 100
STREAM_RETRY_ATTEMPTS = 10

# What the Lambda code asset holds, relative to infra/: never the whole repository.
LAMBDA_MODULES = ("__init__.py", "topology.py", "schemas.py")
LAMBDA_PACKAGE = "functions"


def stage_lambda_code(dest: Path) -> Path:
    """Copy the Lambda sources (and nothing else) into ``dest/infra/``; returns ``dest``.

    The asset root is ``dest`` so that handlers keep their dotted paths
    (``infra.functions...``). Only ``.py`` files are copied (no byte caches or docs), so
    the asset hash changes only when the code does.
    """
    if dest.exists():
        shutil.rmtree(dest)
    package = dest / "infra"
    package.mkdir(parents=True)
    for name in LAMBDA_MODULES:
        shutil.copyfile(INFRA_DIR / name, package / name)
    shutil.copytree(
        INFRA_DIR / LAMBDA_PACKAGE,
        package / LAMBDA_PACKAGE,
        ignore=_not_python_source,
        copy_function=shutil.copyfile,
    )
    return dest


def _not_python_source(directory: str, names: list[str]) -> list[str]:
    """``copytree`` filter: keep packages and ``.py`` files only (no caches, docs, tests)."""
    return [
        name
        for name in names
        if name.startswith((".", "__pycache__"))
        or name in ("tests", "test")
        or (Path(directory, name).is_file() and not name.endswith(".py"))
    ]


class EventOpsStack(cdk.Stack):
    """Bus, archive, schemas, event log, tables, consumers, Lambdas and the dashboard role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        lambda_code_dir: Path,
        topology: Topology = TOPOLOGY,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        t = topology
        self.topology = t
        retain = str(self.node.try_get_context(RETAIN_DATA_CONTEXT) or "").lower() == "true"
        data_removal = cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY

        # --- bus, archive, schemas ---------------------------------------------------
        self.bus = events.EventBus(self, "Bus", event_bus_name=t.bus_name)
        self.archive = events.CfnArchive(
            self,
            "Archive",
            archive_name=t.archive_name,
            source_arn=self.bus.event_bus_arn,
            description=f"Every event on {t.bus_name}",
            retention_days=t.archive_retention_days,
        )
        self.registry = eventschemas.CfnRegistry(
            self,
            "SchemaRegistry",
            registry_name=t.schema_registry_name,
            description=f"Event schemas of {t.prefix}, exported from infra/schemas.py",
        )
        self.schemas: dict[str, eventschemas.CfnSchema] = {}
        for detail_type in schemas.EVENT_MODELS:
            schema = eventschemas.CfnSchema(
                self,
                f"Schema{detail_type}",
                registry_name=self.registry.attr_registry_name,
                schema_name=schemas.schema_name(detail_type),
                type="JSONSchemaDraft4",
                content=schemas.json_schema_text(detail_type),
                description=f"detail of {detail_type} events",
            )
            self.schemas[detail_type] = schema
        eventschemas.CfnDiscoverer(
            self,
            "SchemaDiscoverer",
            source_arn=self.bus.event_bus_arn,
            cross_account=False,
            description=f"Discovers schemas of events on {t.bus_name}",
        )

        # --- event log: how the dashboard browses archive contents ------------------
        self.event_log = logs.LogGroup(
            self,
            "EventLog",
            log_group_name=t.event_log_group,
            retention=log_retention(t.event_log_retention_days),
            removal_policy=data_removal,
        )
        # The group's ARN without the trailing ``:*`` that ``log_group_arn`` carries.
        self.event_log_arn = self.format_arn(
            service="logs",
            resource="log-group",
            resource_name=t.event_log_group,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        log_policy = logs.CfnResourcePolicy(
            self,
            "EventLogResourcePolicy",
            policy_name=t.name("event-log"),
            policy_document=self.to_json_string(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "EventBridgeWritesEventLog",
                            "Effect": "Allow",
                            "Principal": {
                                "Service": ["events.amazonaws.com", "delivery.logs.amazonaws.com"]
                            },
                            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                            "Resource": self.event_log.log_group_arn,
                        }
                    ],
                }
            ),
        )
        event_log_rule = events.CfnRule(
            self,
            "EventLogRule",
            name=t.event_log_rule_name,
            description="Copies every event to the event-log group (archive browsing)",
            event_bus_name=self.bus.event_bus_name,
            event_pattern=CATCH_ALL_PATTERN,
            state="ENABLED",
            targets=[events.CfnRule.TargetProperty(id=EVENT_LOG_TARGET_ID, arn=self.event_log_arn)],
        )
        event_log_rule.add_resource_dependency(log_policy)

        # --- alerts ------------------------------------------------------------------
        self.alerts_topic = sns.Topic(
            self, "AlertsTopic", topic_name=t.alerts_topic, display_name=f"{t.prefix} alerts"
        )
        self._optional_subscription(
            "AlertEmail",
            sns.SubscriptionProtocol.EMAIL,
            description="Optional e-mail address subscribed to the alerts topic",
        )
        # The dashboard's POST /hooks/sns records every alarm change (its history outlives
        # AWS's 14 days); it confirms the subscription itself when the topic's ARN is in its
        # EVENTOPS_SNS_TOPIC_ARNS.
        self._optional_subscription(
            "DashboardSnsHookUrl",
            sns.SubscriptionProtocol.HTTPS,
            condition_id="HasDashboardSnsHook",
            subscription_id="DashboardSnsHookSubscription",
            description="Optional HTTPS URL of the dashboard's /hooks/sns, subscribed to the "
            "alerts topic",
            allowed_pattern=r"^(https://[^\s]+/hooks/sns)?$",
            constraint_description="empty, or the dashboard's https://.../hooks/sns URL",
        )

        # --- tables ------------------------------------------------------------------
        self.orders_table = dynamodb.Table(
            self,
            "OrdersTable",
            table_name=t.orders_table,
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            stream=dynamodb.StreamViewType.NEW_IMAGE,
            time_to_live_attribute="ttl",
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=data_removal,
        )
        self.orders_table.add_global_secondary_index(
            index_name=CORRELATION_INDEX,
            partition_key=dynamodb.Attribute(
                name="correlationId", type=dynamodb.AttributeType.STRING
            ),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        # Powertools idempotency schema: key ``id``, TTL ``expiration``.
        self.idempotency_table = dynamodb.Table(
            self,
            "IdempotencyTable",
            table_name=t.idempotency_table,
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute="expiration",
            removal_policy=data_removal,
        )
        self.idempotency_table.add_global_secondary_index(
            index_name=CORRELATION_INDEX,
            partition_key=dynamodb.Attribute(
                name="correlation_id", type=dynamodb.AttributeType.STRING
            ),
            projection_type=dynamodb.ProjectionType.ALL,
        )

        # --- Lambda defaults -----------------------------------------------------------
        layer_version = cdk.CfnParameter(
            self,
            "PowertoolsLayerVersion",
            type="Number",
            default=POWERTOOLS_LAYER_VERSION,
            min_value=1,
            description=f"Version of the public {POWERTOOLS_LAYER_NAME} layer "
            f"(ignored when the {POWERTOOLS_LAYER_CONTEXT} context value is set)",
        )
        layer_arn = self.node.try_get_context(POWERTOOLS_LAYER_CONTEXT) or cdk.Fn.sub(
            f"arn:${{AWS::Partition}}:lambda:${{AWS::Region}}:{POWERTOOLS_LAYER_ACCOUNT}:layer:"
            f"{POWERTOOLS_LAYER_NAME}:${{Version}}",
            {"Version": layer_version.value_as_string},
        )
        self.powertools_layer = lambda_.LayerVersion.from_layer_version_arn(
            self, "PowertoolsLayer", str(layer_arn)
        )
        defaults = FunctionDefaults(
            code=lambda_.Code.from_asset(str(lambda_code_dir)),
            layers=[self.powertools_layer],
            environment={
                "EVENT_BUS_NAME": self.bus.event_bus_name,
                "IDEMPOTENCY_TABLE": self.idempotency_table.table_name,
                "ORDERS_TABLE": self.orders_table.table_name,
                "POWERTOOLS_METRICS_NAMESPACE": t.project,
            },
        )

        # --- consumers: one construct each, so none exists without its DLQ and alarm -
        self.consumers: dict[str, ConsumerPipeline] = {}
        for consumer in t.consumers:
            self.consumers[consumer.name] = ConsumerPipeline(
                self,
                f"Consumer{consumer.name.title()}",
                topology=t,
                consumer=consumer,
                bus=self.bus,
                alerts_topic=self.alerts_topic,
                idempotency_table=self.idempotency_table,
                orders_table=self.orders_table,
                function_defaults=defaults,
                runbook_base_url=str(self.node.try_get_context(RUNBOOK_BASE_CONTEXT) or ""),
            )

        # Any consumer's DLQ not empty: one alarm over the per-consumer ones, so the
        # dashboard's alarm tree shows them together. No actions: the children notify.
        self.dlqs_alarm = cloudwatch.CompositeAlarm(
            self,
            "ConsumerDlqsNotEmpty",
            composite_alarm_name=t.dlqs_composite_alarm_name,
            alarm_description="Some consumer's DLQ holds messages (see its child alarms)",
            alarm_rule=cloudwatch.AlarmRule.from_string(t.dlqs_composite_alarm_rule),
        )
        for pipeline in self.consumers.values():
            # The rule names its children by name, so CloudFormation needs the order.
            self.dlqs_alarm.node.add_dependency(pipeline.dlq_alarm)

        # --- outbox publisher: orders stream -> PutEvents ----------------------------
        self.outbox_failures = sqs.Queue(
            self,
            "OutboxFailures",
            queue_name=t.outbox_failures_queue,
            retention_period=cdk.Duration.days(t.dlq_retention_days),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        queue_depth_alarm(
            self,
            "OutboxFailuresAlarm",
            queue=self.outbox_failures,
            alarm_name=t.outbox_failures_alarm_name,
            period_s=t.dlq_alarm_period_s,
            topic=self.alerts_topic,
            description="Outbox stream records were not published after every retry",
        )
        self.outbox_publisher = traced_function(
            self,
            "OutboxPublisher",
            defaults=defaults,
            function_name=t.outbox_publisher_function,
            handler=OUTBOX_PUBLISHER_HANDLER,
            description="Publishes outbox items from the orders stream to the bus",
            timeout_s=60,
            environment={"POWERTOOLS_SERVICE_NAME": "outbox-publisher"},
        )
        self.outbox_publisher.add_event_source(
            event_sources.DynamoEventSource(
                self.orders_table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=STREAM_BATCH_SIZE,
                bisect_batch_on_error=True,
                retry_attempts=STREAM_RETRY_ATTEMPTS,
                max_record_age=cdk.Duration.seconds(DAY),
                report_batch_item_failures=True,
                on_failure=event_sources.SqsDlq(self.outbox_failures),
            )
        )
        self.bus.grant_put_events_to(self.outbox_publisher)
        # It marks outbox items PUBLISHED once PutEvents accepted them.
        self.orders_table.grant_read_write_data(self.outbox_publisher)

        # --- DLQ reprocessor: starts SQS's own move task of a DLQ (one API call) ---------
        self.dlq_reprocessor = traced_function(
            self,
            "DlqReprocessor",
            defaults=defaults,
            function_name=t.dlq_reprocessor_function,
            handler=DLQ_REPROCESSOR_HANDLER,
            description="Redrives a DLQ with one call: SQS StartMessageMoveTask",
            timeout_s=30,
            environment={"POWERTOOLS_SERVICE_NAME": "dlq-reprocessor"},
        )
        for pipeline in self.consumers.values():
            # StartMessageMoveTask needs these on the source (the DLQ): SQS moves the
            # messages as the caller. The destination (the DLQ's source queue) needs SendMessage.
            pipeline.dlq.grant(
                self.dlq_reprocessor,
                "sqs:StartMessageMoveTask",
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
            )
            pipeline.queue.grant(self.dlq_reprocessor, "sqs:SendMessage")

        # --- the dashboard's role ------------------------------------------------------
        self.dashboard_policy = self._dashboard_policy()
        principal = cdk.CfnParameter(
            self,
            "DashboardPrincipalArn",
            type="String",
            default="",
            description="IAM principal ARN allowed to assume the dashboard role "
            "(empty: any principal of this account that IAM policy allows)",
        )
        no_principal = cdk.CfnCondition(
            self,
            "NoDashboardPrincipal",
            expression=cdk.Fn.condition_equals(principal.value_as_string, ""),
        )
        trusted = cdk.Fn.condition_if(
            no_principal.logical_id,
            cdk.Fn.sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root"),
            principal.value_as_string,
        )
        self.dashboard_role = iam.Role(
            self,
            "DashboardRole",
            role_name=t.name("dashboard"),
            description="eventops dashboard: read the event system, redrive DLQs, replay",
            assumed_by=iam.ArnPrincipal(trusted.to_string()),
            managed_policies=[self.dashboard_policy],
            max_session_duration=cdk.Duration.hours(1),
        )
        # The dashboard assumes this role as the person who acts (SourceIdentity), so that
        # CloudTrail names them: the trust policy must allow setting it.
        self.dashboard_role.assume_role_policy.add_statements(  # type: ignore[union-attr]
            iam.PolicyStatement(
                actions=["sts:SetSourceIdentity"],
                principals=[iam.ArnPrincipal(trusted.to_string())],
            )
        )

        cdk.Aspects.of(self).add(FunctionDependsOnPolicyOnly())

        # --- outputs -------------------------------------------------------------------
        outputs = {
            "BusName": self.bus.event_bus_name,
            "BusArn": self.bus.event_bus_arn,
            "ArchiveArn": self.archive.attr_arn,
            "EventLogGroupName": self.event_log.log_group_name,
            "AlertsTopicArn": self.alerts_topic.topic_arn,
            "DashboardRoleArn": self.dashboard_role.role_arn,
            "DashboardPolicyArn": self.dashboard_policy.managed_policy_arn,
        }
        for name, value in outputs.items():
            cdk.CfnOutput(self, name, value=value)

    # ------------------------------------------------------------------------------------
    def _dashboard_policy(self) -> iam.ManagedPolicy:
        """Least privilege for the dashboard: reads everywhere it discovers, writes scoped.

        Writes: SendMessage only on source queues, message handling only on DLQs,
        replays only on the archive, PutEvents only on the bus. List/Describe calls that
        IAM cannot scope to a resource use ``*``.
        """
        t = self.topology
        source_queues = [p.queue.queue_arn for p in self.consumers.values()]
        dlqs = [p.dlq.queue_arn for p in self.consumers.values()]
        project_queues = self.format_arn(
            service="sqs", resource=f"{t.prefix}-*", arn_format=cdk.ArnFormat.NO_RESOURCE_NAME
        )
        replays = self.format_arn(service="events", resource="replay", resource_name="*")
        rules = self.format_arn(service="events", resource="rule", resource_name=f"{t.bus_name}/*")
        registry = self.format_arn(
            service="schemas", resource="registry", resource_name=t.schema_registry_name
        )
        registry_schemas = self.format_arn(
            service="schemas", resource="schema", resource_name=f"{t.schema_registry_name}/*"
        )
        tables = [self.orders_table.table_arn, self.idempotency_table.table_arn]
        statements = [
            _allow(
                "CloudWatchRead",
                [
                    "cloudwatch:GetMetricData",
                    "cloudwatch:DescribeAlarms",
                    "cloudwatch:DescribeAlarmHistory",
                    # An alarm's runbook tag (operations/runbooks.py).
                    "cloudwatch:ListTagsForResource",
                    "cloudwatch:ListMetrics",
                ],
                ["*"],
            ),
            _allow("SqsDiscover", ["sqs:ListQueues"], ["*"]),
            _allow(
                "SqsReadProjectQueues",
                [
                    "sqs:GetQueueAttributes",
                    "sqs:GetQueueUrl",
                    "sqs:ListDeadLetterSourceQueues",
                ],
                [project_queues],
            ),
            _allow("SqsRedriveToSourceQueues", ["sqs:SendMessage"], source_queues),
            _allow(
                "SqsHandleDlqMessages",
                [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:StartMessageMoveTask",
                    "sqs:ListMessageMoveTasks",
                    "sqs:CancelMessageMoveTask",
                ],
                dlqs,
            ),
            _allow(
                "EventBridgeDiscover",
                [
                    "events:ListEventBuses",
                    "events:ListRules",
                    "events:ListTargetsByRule",
                    "events:ListArchives",
                    "events:ListReplays",
                    "events:TestEventPattern",
                ],
                ["*"],
            ),
            _allow(
                "EventBridgeDescribe",
                ["events:DescribeEventBus", "events:DescribeRule", "events:DescribeArchive"],
                [self.bus.event_bus_arn, rules, self.archive.attr_arn],
            ),
            _allow(
                "EventBridgeReplayArchive",
                ["events:StartReplay", "events:DescribeReplay", "events:CancelReplay"],
                [self.archive.attr_arn, replays],
            ),
            _allow("EventBridgeRepublish", ["events:PutEvents"], [self.bus.event_bus_arn]),
            _allow(
                "XRayRead",
                [
                    "xray:GetTraceSummaries",
                    "xray:BatchGetTraces",
                    "xray:StartTraceRetrieval",
                    "xray:ListRetrievedTraces",
                ],
                ["*"],
            ),
            _allow("LogsDiscover", ["logs:DescribeLogGroups"], ["*"]),
            _allow(
                "LogsReadEventLog",
                ["logs:FilterLogEvents", "logs:StartQuery", "logs:GetLogEvents"],
                # Both spellings: IAM checks log-group actions against either form.
                [self.event_log_arn, self.event_log.log_group_arn],
            ),
            _allow(
                "LogsReadConsumerLogs",
                ["logs:FilterLogEvents", "logs:StartQuery"],
                # The consumers' own lines for a DLQ message (its real error), both spellings.
                [
                    arn
                    for p in self.consumers.values()
                    for arn in (
                        self.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name=f"/aws/lambda/{t.function_name(p.consumer)}",
                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                        ),
                        p.function.log_group.log_group_arn,
                    )
                ],
            ),
            _allow(
                "LambdaReadConsumers",
                ["lambda:GetFunctionConfiguration"],
                [p.function.function_arn for p in self.consumers.values()],
            ),
            # Logs Insights query IDs are not resources IAM can scope.
            _allow("LogsQueryResults", ["logs:GetQueryResults", "logs:StopQuery"], ["*"]),
            _allow("SchemasDiscover", ["schemas:ListRegistries"], ["*"]),
            _allow(
                "SchemasRead",
                [
                    "schemas:DescribeRegistry",
                    "schemas:ListSchemas",
                    "schemas:DescribeSchema",
                    "schemas:ListSchemaVersions",
                ],
                [registry, registry_schemas],
            ),
            _allow(
                "DynamoDbReadTables",
                ["dynamodb:GetItem", "dynamodb:Query"],
                [*tables, *(f"{arn}/index/*" for arn in tables)],
            ),
            # The dashboard finds the tables by name suffix and the consumers' Lambdas
            # through their event source mappings; neither call takes a resource.
            _allow("DynamoDbDiscover", ["dynamodb:ListTables"], ["*"]),
            _allow("LambdaDiscover", ["lambda:ListEventSourceMappings"], ["*"]),
        ]
        return iam.ManagedPolicy(
            self,
            "DashboardPolicy",
            managed_policy_name=t.name("dashboard"),
            description="Least-privilege access of the eventops dashboard",
            statements=statements,
        )

    def _optional_subscription(
        self,
        parameter_id: str,
        protocol: sns.SubscriptionProtocol,
        *,
        description: str,
        condition_id: str = "",
        subscription_id: str = "",
        **parameter: Any,
    ) -> None:
        """A stack parameter whose value, when not empty, is subscribed to the alerts topic."""
        value = cdk.CfnParameter(
            self, parameter_id, type="String", default="", description=description, **parameter
        )
        given = cdk.CfnCondition(
            self,
            condition_id or f"Has{parameter_id}",
            expression=cdk.Fn.condition_not(cdk.Fn.condition_equals(value.value_as_string, "")),
        )
        subscription = sns.Subscription(
            self,
            subscription_id or f"{parameter_id}Subscription",
            topic=self.alerts_topic,
            protocol=protocol,
            endpoint=value.value_as_string,
        )
        _set_condition(subscription, given)


def _allow(sid: str, actions: list[str], resources: list[str]) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid=sid, effect=iam.Effect.ALLOW, actions=actions, resources=resources
    )


def _set_condition(construct: Construct, condition: cdk.CfnCondition) -> None:
    default_child = construct.node.default_child
    if not isinstance(default_child, cdk.CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource")
    default_child.cfn_options.condition = condition


# --- building and synthesizing ------------------------------------------------------------
def build_app(outdir: Path) -> tuple[cdk.App, EventOpsStack]:
    """An App (deterministic synthesis: no analytics, no bootstrap-version rule) and the stack.

    The Lambda code is staged under ``outdir`` so the asset holds only what the
    functions import.
    """
    outdir.mkdir(parents=True, exist_ok=True)
    app = cdk.App(outdir=str(outdir), analytics_reporting=False)
    code_dir = stage_lambda_code(outdir / "lambda-src")
    stack = EventOpsStack(
        app,
        TOPOLOGY.prefix,
        lambda_code_dir=code_dir,
        description=f"eventops event system ({TOPOLOGY.environment})",
        synthesizer=cdk.DefaultStackSynthesizer(generate_bootstrap_version_rule=False),
    )
    return app, stack


@functools.lru_cache(maxsize=1)
def _synthesized_template() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="eventops-cdk-") as tmp:
        app, stack = build_app(Path(tmp))
        assembly = app.synth()
        template: dict[str, Any] = assembly.get_stack_by_name(stack.stack_name).template
        return template


def synth_template() -> dict[str, Any]:
    """The CloudFormation template as a dict, synthesized in-process (once per process).

    Takes a few seconds the first time (jsii starts Node.js); returns a fresh copy
    on every call so callers may modify it.
    """
    return copy.deepcopy(_synthesized_template())


# --- a name-level view of the template (for drift checks) ----------------------------------
def _name_of(resources: dict[str, Any], reference: Any) -> str:
    """The physical name behind ``{"Ref": id}`` / ``{"Fn::GetAtt": [id, ...]}``, or a literal.

    Log-group ARNs built with ``Fn::Join`` resolve to the group name after ``log-group:``.
    """
    if isinstance(reference, str):
        return reference
    if "Ref" in reference or "Fn::GetAtt" in reference:
        logical_id = reference.get("Ref") or reference["Fn::GetAtt"][0]
        props = resources[logical_id].get("Properties", {})
        for key in ("QueueName", "Name", "TableName", "TopicName", "LogGroupName", "FunctionName"):
            if key in props:
                return str(props[key])
        raise ValueError(f"{logical_id} has no physical name")
    if "Fn::Join" in reference:
        last = reference["Fn::Join"][1][-1]
        if isinstance(last, str) and ":log-group:" in last:
            return last.split(":log-group:", 1)[1]
    raise ValueError(f"cannot resolve {reference!r} to a name")


# The settings of a metric alarm that the inventory compares (and the drift test with it).
ALARM_FIELDS = (
    "Namespace",
    "MetricName",
    "Statistic",
    "Period",
    "EvaluationPeriods",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
)


def metric_queries(
    queries: list[dict[str, Any]] | None, name_of: Any = str
) -> list[dict[str, Any]] | None:
    """An alarm's ``Metrics`` in one comparable shape (dimensions as a dict, values resolved by
    ``name_of``), as the template declares them or ``DescribeAlarms`` returns them."""
    if queries is None:
        return None
    shaped = []
    for query in queries:
        one: dict[str, Any] = {
            "Id": query["Id"],
            "Expression": query.get("Expression"),
            "ReturnData": query.get("ReturnData", True),
        }
        stat = query.get("MetricStat")
        if stat:
            metric = stat["Metric"]
            one["MetricStat"] = {
                "Namespace": metric["Namespace"],
                "MetricName": metric["MetricName"],
                "Dimensions": {d["Name"]: name_of(d["Value"]) for d in metric["Dimensions"]},
                "Period": stat["Period"],
                "Stat": stat["Stat"],
            }
        shaped.append(one)
    return shaped


def template_inventory(template: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Queues, rules, alarms, archives, log groups, tables and functions keyed by name.

    Intrinsic references are resolved to physical names, so the result compares directly
    with what boto3 ``Describe``/``Get`` calls return (the devstack drift test). With no
    argument it uses :func:`synth_template`.
    """
    resources: dict[str, Any] = (template or synth_template())["Resources"]

    def of_type(cfn_type: str) -> list[dict[str, Any]]:
        return [r["Properties"] for r in resources.values() if r["Type"] == cfn_type]

    queues = {}
    for props in of_type("AWS::SQS::Queue"):
        redrive = props.get("RedrivePolicy")
        queues[props["QueueName"]] = {
            "VisibilityTimeout": props.get("VisibilityTimeout"),
            "MessageRetentionPeriod": props.get("MessageRetentionPeriod"),
            "RedrivePolicy": None
            if redrive is None
            else {
                "deadLetterTargetQueue": _name_of(resources, redrive["deadLetterTargetArn"]),
                "maxReceiveCount": redrive["maxReceiveCount"],
            },
        }
    rules = {
        props["Name"]: {
            "EventBusName": _name_of(resources, props["EventBusName"]),
            "EventPattern": props["EventPattern"],
            "Targets": {t["Id"]: _name_of(resources, t["Arn"]) for t in props["Targets"]},
        }
        for props in of_type("AWS::Events::Rule")
    }

    def name_of(reference: Any) -> str:
        return _name_of(resources, reference)

    alarms = {
        props["AlarmName"]: {
            **{key: props.get(key) for key in ALARM_FIELDS},
            "Dimensions": {d["Name"]: name_of(d["Value"]) for d in props.get("Dimensions", [])},
            "Metrics": metric_queries(props.get("Metrics"), name_of),
            "AlarmActions": [name_of(a) for a in props.get("AlarmActions", [])],
            "OKActions": [name_of(a) for a in props.get("OKActions", [])],
        }
        for props in of_type("AWS::CloudWatch::Alarm")
    }
    composite_alarms = {
        props["AlarmName"]: {
            "AlarmRule": props["AlarmRule"],
            "AlarmActions": [name_of(a) for a in props.get("AlarmActions", [])],
            "OKActions": [name_of(a) for a in props.get("OKActions", [])],
        }
        for props in of_type("AWS::CloudWatch::CompositeAlarm")
    }
    archives = {
        props["ArchiveName"]: {
            "EventSourceBus": _name_of(resources, props["SourceArn"]),
            "RetentionDays": props.get("RetentionDays"),
            "EventPattern": props.get("EventPattern"),
        }
        for props in of_type("AWS::Events::Archive")
    }
    log_groups = {
        props["LogGroupName"]: {"RetentionInDays": props.get("RetentionInDays")}
        for props in of_type("AWS::Logs::LogGroup")
    }
    tables = {
        props["TableName"]: {
            "KeySchema": props["KeySchema"],
            "GlobalSecondaryIndexes": {
                index["IndexName"]: index["KeySchema"]
                for index in props.get("GlobalSecondaryIndexes", [])
            },
            "TimeToLiveAttribute": props.get("TimeToLiveSpecification", {}).get("AttributeName"),
            "StreamViewType": props.get("StreamSpecification", {}).get("StreamViewType"),
        }
        for props in of_type("AWS::DynamoDB::Table")
    }
    functions = {
        props["FunctionName"]: {
            "Handler": props["Handler"],
            "Runtime": props["Runtime"],
            "TracingMode": props.get("TracingConfig", {}).get("Mode"),
        }
        for props in of_type("AWS::Lambda::Function")
    }
    return {
        "queues": queues,
        "rules": rules,
        "alarms": alarms,
        "composite_alarms": composite_alarms,
        "archives": archives,
        "log_groups": log_groups,
        "tables": tables,
        "functions": functions,
    }
