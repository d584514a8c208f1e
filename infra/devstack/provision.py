"""Build the topology into the local emulator (moto) with plain boto3 calls.

Every step is idempotent: it looks the resource up first and converges its settings, so
running the provisioner twice against the same server is harmless.

What the CDK stack (``infra/stack.py``) declares for real AWS is built here from the same
``infra.topology.TOPOLOGY``; ``tests/infra/devstack/test_devstack_drift.py`` compares the two.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from infra import schemas
from infra.devstack.clients import Clients
from infra.devstack.provision_alarms import AlarmProvisioner
from infra.topology import TOPOLOGY, Consumer, Topology

log = logging.getLogger(__name__)

LAMBDA_RUNTIME = "python3.11"
LAMBDA_ROLE_NAME = "lambda-execution"
OUTBOX_PUBLISHER_HANDLER = "infra.functions.publisher.handler"
DLQ_REPROCESSOR_HANDLER = "infra.functions.dlq_reprocessor.handler"
CORRELATION_INDEX = "by-correlation-id"
# Matches every event: EventBridge requires a non-empty pattern, and every event has a source.
CATCH_ALL_PATTERN: dict[str, Any] = {"source": [{"prefix": ""}]}
EVENT_LOG_TARGET_ID = "event-log"
SQS_BATCH_SIZE = 10
# Each function's own log group, as the CDK stack declares it (one month).
FUNCTION_LOG_RETENTION_DAYS = 30
STREAM_BATCH_SIZE = 100
# As the CDK stack's DynamoEventSource: retries, then the batch goes to the failures queue.
STREAM_RETRY_ATTEMPTS = 10
STREAM_MAX_RECORD_AGE_S = 86400


@dataclass
class ConsumerResources:
    name: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    function_name: str
    function_arn: str
    rule_arn: str
    alarm_name: str
    max_receive_count: int
    visibility_timeout_s: int


@dataclass
class Provisioned:
    """What the provisioner built: the names and ARNs the runner and the simulator need."""

    bus_name: str
    bus_arn: str
    archive_arn: str
    event_log_group: str
    topic_arn: str
    orders_table: str
    orders_stream_arn: str
    idempotency_table: str
    publisher_function: str
    publisher_function_arn: str
    outbox_failures_url: str
    consumers: dict[str, ConsumerResources] = field(default_factory=dict)
    schemas_registered: bool = False


def _code_zip(handler: str) -> bytes:
    """A tiny deployment package: moto stores it; the devstack runs the real code in-process."""
    module = handler.rsplit(".", 1)[0].replace(".", "/")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            f"{module}.py",
            "# The devstack runs the real handler in-process (infra/devstack/runner.py).\n"
            "def handler(event, context):\n    return {'batchItemFailures': []}\n",
        )
    return buffer.getvalue()


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class Provisioner:
    """Builds one topology through one set of clients. Use :func:`provision`."""

    def __init__(
        self,
        clients: Clients,
        topology: Topology = TOPOLOGY,
        *,
        visibility_timeout_s: int | None = None,
    ) -> None:
        self.clients = clients
        self.topology = topology
        # The devstack shortens visibility timeouts so that DLQs fill within a minute.
        self.visibility_timeout_override = visibility_timeout_s
        self.account = clients.account_id()
        self.region = clients.region
        self.alarms = AlarmProvisioner(clients("cloudwatch"), topology)

    # --- helpers ---------------------------------------------------------------------
    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"

    def visibility_timeout(self, consumer: Consumer) -> int:
        if self.visibility_timeout_override is not None:
            return self.visibility_timeout_override
        return consumer.visibility_timeout_s

    # --- the whole topology ----------------------------------------------------------
    def run(self) -> Provisioned:
        t = self.topology
        role_arn = self.lambda_role()
        bus_arn = self.bus()
        archive_arn = self.archive(bus_arn)
        self.event_log()
        schemas_registered = self.schema_registry()
        topic_arn = str(self.clients("sns").create_topic(Name=t.alerts_topic)["TopicArn"])
        stream_arn = self.orders_table()
        self.idempotency_table()
        failures_url, failures_arn = self.queue(
            t.outbox_failures_queue,
            {"MessageRetentionPeriod": str(t.dlq_retention_days * 86400)},
        )
        self.alarms.queue_depth_alarm(
            t.outbox_failures_alarm_name,
            "Outbox stream records were not published after every retry",
            t.outbox_failures_queue,
            t.dlq_alarm_period_s,
            topic_arn,
        )
        publisher_arn = self.function(
            t.outbox_publisher_function,
            OUTBOX_PUBLISHER_HANDLER,
            role_arn,
            "Publishes outbox items from the orders stream to the bus",
            {"POWERTOOLS_SERVICE_NAME": "outbox-publisher"},
        )
        self.event_source_mapping(
            publisher_arn,
            stream_arn,
            STREAM_BATCH_SIZE,
            {
                "StartingPosition": "TRIM_HORIZON",
                "MaximumRetryAttempts": STREAM_RETRY_ATTEMPTS,
                "MaximumRecordAgeInSeconds": STREAM_MAX_RECORD_AGE_S,
                "BisectBatchOnFunctionError": True,
                "DestinationConfig": {"OnFailure": {"Destination": failures_arn}},
            },
        )
        self.function(
            t.dlq_reprocessor_function,
            DLQ_REPROCESSOR_HANDLER,
            role_arn,
            "Replays failed events from the consumer DLQs with one call",
            {"POWERTOOLS_SERVICE_NAME": "dlq-reprocessor"},
        )
        result = Provisioned(
            bus_name=t.bus_name,
            bus_arn=bus_arn,
            archive_arn=archive_arn,
            event_log_group=t.event_log_group,
            topic_arn=topic_arn,
            orders_table=t.orders_table,
            orders_stream_arn=stream_arn,
            idempotency_table=t.idempotency_table,
            publisher_function=t.outbox_publisher_function,
            publisher_function_arn=publisher_arn,
            outbox_failures_url=failures_url,
            schemas_registered=schemas_registered,
        )
        for consumer in t.consumers:
            result.consumers[consumer.name] = self.consumer(consumer, role_arn, topic_arn)
        self.alarms.dlqs_composite_alarm()
        log.info("provisioned %s: %d consumers", t.prefix, len(result.consumers))
        return result

    # --- IAM -------------------------------------------------------------------------
    def lambda_role(self) -> str:
        """moto checks that a function's role exists, so the devstack needs one."""
        iam = self.clients("iam")
        try:
            return str(iam.get_role(RoleName=LAMBDA_ROLE_NAME)["Role"]["Arn"])
        except ClientError as exc:
            if _error_code(exc) != "NoSuchEntity":
                raise
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        role = iam.create_role(
            RoleName=LAMBDA_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust)
        )
        return str(role["Role"]["Arn"])

    # --- EventBridge -----------------------------------------------------------------
    def bus(self) -> str:
        events = self.clients("events")
        try:
            return str(events.describe_event_bus(Name=self.topology.bus_name)["Arn"])
        except ClientError as exc:
            if _error_code(exc) != "ResourceNotFoundException":
                raise
        return str(events.create_event_bus(Name=self.topology.bus_name)["EventBusArn"])

    def archive(self, bus_arn: str) -> str:
        """An archive of every event on the bus (no pattern = all events)."""
        events = self.clients("events")
        name = self.topology.archive_name
        retention = self.topology.archive_retention_days
        try:
            current = events.describe_archive(ArchiveName=name)
        except ClientError as exc:
            if _error_code(exc) != "ResourceNotFoundException":
                raise
            created = events.create_archive(
                ArchiveName=name,
                EventSourceArn=bus_arn,
                Description=f"Every event on {self.topology.bus_name}",
                RetentionDays=retention,
            )
            return str(created["ArchiveArn"])
        if current.get("RetentionDays") != retention:
            events.update_archive(ArchiveName=name, RetentionDays=retention)
        return str(current["ArchiveArn"])

    def rule(
        self, name: str, pattern: dict[str, Any], description: str, targets: list[dict[str, Any]]
    ) -> str:
        """put_rule and put_targets both replace what exists, so they are idempotent."""
        events = self.clients("events")
        rule_arn = str(
            events.put_rule(
                Name=name,
                EventBusName=self.topology.bus_name,
                EventPattern=json.dumps(pattern, sort_keys=True),
                State="ENABLED",
                Description=description,
            )["RuleArn"]
        )
        response = events.put_targets(
            Rule=name, EventBusName=self.topology.bus_name, Targets=targets
        )
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"put_targets on {name} failed: {response['FailedEntries']}")
        return rule_arn

    def log_group(self, name: str, retention_days: int) -> None:
        logs = self.clients("logs")
        existing = logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
        if not any(g["logGroupName"] == name for g in existing):
            logs.create_log_group(logGroupName=name)
        logs.put_retention_policy(logGroupName=name, retentionInDays=retention_days)

    def event_log(self) -> None:
        """The event-log group and the catch-all rule that copies every event into it."""
        group = self.topology.event_log_group
        self.log_group(group, self.topology.event_log_retention_days)
        self.rule(
            self.topology.event_log_rule_name,
            CATCH_ALL_PATTERN,
            "Copies every event to the event-log group (archive browsing)",
            [{"Id": EVENT_LOG_TARGET_ID, "Arn": self.arn("logs", f"log-group:{group}")}],
        )

    # --- schema registry (an emulator extension: moto has no EventSchemas) -----------
    def schema_registry(self) -> bool:
        """Register one JSON schema per event type; skip with a warning if not emulated."""
        client = self.clients("schemas")
        registry = self.topology.schema_registry_name
        try:
            try:
                client.describe_registry(RegistryName=registry)
            except ClientError as exc:
                if _error_code(exc) not in ("NotFoundException", "ResourceNotFoundException"):
                    raise
                client.create_registry(RegistryName=registry, Description="eventops event schemas")
            for detail_type in schemas.EVENT_MODELS:
                self.schema(client, registry, detail_type)
        except Exception as exc:
            # moto answers unknown services with a 404/501; anything else is a real failure
            # in the emulation, which must not stop the rest of the topology either.
            log.warning("schema registry not provisioned (EventSchemas not emulated?): %s", exc)
            return False
        return True

    @staticmethod
    def schema(client: Any, registry: str, detail_type: str) -> None:
        name = schemas.schema_name(detail_type)
        content = schemas.json_schema_text(detail_type)
        try:
            current = client.describe_schema(RegistryName=registry, SchemaName=name)
        except ClientError as exc:
            if _error_code(exc) not in ("NotFoundException", "ResourceNotFoundException"):
                raise
            client.create_schema(
                RegistryName=registry, SchemaName=name, Type="JSONSchemaDraft4", Content=content
            )
            return
        if json.loads(current.get("Content") or "{}") != json.loads(content):
            client.update_schema(
                RegistryName=registry, SchemaName=name, Type="JSONSchemaDraft4", Content=content
            )

    # --- DynamoDB --------------------------------------------------------------------
    def table(
        self,
        name: str,
        keys: list[tuple[str, str]],
        correlation_attribute: str,
        ttl_attribute: str,
        stream: bool,
    ) -> dict[str, Any]:
        ddb = self.clients("dynamodb")
        try:
            return dict(ddb.describe_table(TableName=name)["Table"])
        except ClientError as exc:
            if _error_code(exc) != "ResourceNotFoundException":
                raise
        attributes = {attr: "S" for attr, _ in keys} | {correlation_attribute: "S"}
        kwargs: dict[str, Any] = {
            "TableName": name,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": a, "KeyType": k} for a, k in keys],
            "AttributeDefinitions": [
                {"AttributeName": a, "AttributeType": t} for a, t in attributes.items()
            ],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": CORRELATION_INDEX,
                    "KeySchema": [{"AttributeName": correlation_attribute, "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        }
        if stream:
            kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
        table = ddb.create_table(**kwargs)["TableDescription"]
        ddb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute},
        )
        return dict(table)

    def orders_table(self) -> str:
        """The orders table with its outbox stream; returns the stream ARN."""
        table = self.table(
            self.topology.orders_table,
            [("pk", "HASH"), ("sk", "RANGE")],
            "correlationId",
            "ttl",
            stream=True,
        )
        return str(table["LatestStreamArn"])

    def idempotency_table(self) -> None:
        """Powertools' schema (key ``id``, TTL ``expiration``) plus the correlation index."""
        self.table(
            self.topology.idempotency_table,
            [("id", "HASH")],
            "correlation_id",
            "expiration",
            stream=False,
        )

    # --- Lambda ----------------------------------------------------------------------
    def function(
        self,
        name: str,
        handler: str,
        role_arn: str,
        description: str,
        environment: dict[str, str],
    ) -> str:
        """A function record (runtime, handler, active tracing) so discovery sees it."""
        lam = self.clients("lambda")
        self.log_group(f"/aws/lambda/{name}", FUNCTION_LOG_RETENTION_DAYS)
        try:
            return str(lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"])
        except ClientError as exc:
            if _error_code(exc) != "ResourceNotFoundException":
                raise
        created = lam.create_function(
            FunctionName=name,
            Runtime=LAMBDA_RUNTIME,
            Role=role_arn,
            Handler=handler,
            Code={"ZipFile": _code_zip(handler)},
            Description=description,
            Timeout=30,
            MemorySize=256,
            TracingConfig={"Mode": "Active"},
            Environment={"Variables": {**self.common_environment(), **environment}},
        )
        return str(created["FunctionArn"])

    def common_environment(self) -> dict[str, str]:
        """The environment every function shares, as in the CDK stack."""
        t = self.topology
        return {
            "EVENT_BUS_NAME": t.bus_name,
            "IDEMPOTENCY_TABLE": t.idempotency_table,
            "ORDERS_TABLE": t.orders_table,
            "POWERTOOLS_METRICS_NAMESPACE": t.project,
        }

    def event_source_mapping(
        self,
        function_arn: str,
        source_arn: str,
        batch_size: int,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """An event source mapping, as on AWS, for discovery (ListEventSourceMappings).

        moto would try to run the function in Docker when a message arrives; the devstack
        detaches moto's own pollers right after provisioning
        (:func:`infra.devstack.emulator.moto_fixes.detach_event_source_pollers`) and its runner
        plays the Lambda poller instead.
        """
        lam = self.clients("lambda")
        existing = lam.list_event_source_mappings(
            FunctionName=function_arn, EventSourceArn=source_arn
        ).get("EventSourceMappings", [])
        if existing:
            return
        kwargs: dict[str, Any] = {
            "EventSourceArn": source_arn,
            "FunctionName": function_arn,
            "BatchSize": batch_size,
            "Enabled": True,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            **(extra or {}),
        }
        lam.create_event_source_mapping(**kwargs)

    # --- one consumer ----------------------------------------------------------------
    def queue(self, name: str, attributes: dict[str, str]) -> tuple[str, str]:
        sqs = self.clients("sqs")
        try:
            url = str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
        except ClientError as exc:
            if _error_code(exc) not in (
                "AWS.SimpleQueueService.NonExistentQueue",
                "QueueDoesNotExist",
            ):
                raise
            url = str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
        else:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        return url, str(arn)

    def consumer(self, consumer: Consumer, role_arn: str, topic_arn: str) -> ConsumerResources:
        """Queue + DLQ + rule + queue policy + DLQ alarm + function + event source mapping."""
        t = self.topology
        dlq_url, dlq_arn = self.queue(
            t.dlq_name(consumer), {"MessageRetentionPeriod": str(t.dlq_retention_days * 86400)}
        )
        visibility = self.visibility_timeout(consumer)
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": consumer.max_receive_count}
        queue_url, queue_arn = self.queue(
            t.queue_name(consumer),
            {
                "VisibilityTimeout": str(visibility),
                "MessageRetentionPeriod": str(t.queue_retention_days * 86400),
                "RedrivePolicy": json.dumps(redrive),
            },
        )
        rule_name = t.rule_name(consumer)
        rule_arn = self.rule(
            rule_name,
            consumer.event_pattern,
            f"{consumer.description} ({consumer.name} consumer)",
            [{"Id": consumer.name, "Arn": queue_arn}],
        )
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AllowEventBridgeRule",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                }
            ],
        }
        self.clients("sqs").set_queue_attributes(
            QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)}
        )
        alarm_name = t.dlq_alarm_name(consumer)
        self.alarms.dlq_alarms(consumer, topic_arn)
        function_name = t.function_name(consumer)
        function_arn = self.function(
            function_name,
            consumer.handler,
            role_arn,
            consumer.description,
            {"CONSUMER_NAME": consumer.name, "POWERTOOLS_SERVICE_NAME": consumer.name},
        )
        self.event_source_mapping(function_arn, queue_arn, SQS_BATCH_SIZE)
        return ConsumerResources(
            name=consumer.name,
            queue_url=queue_url,
            queue_arn=queue_arn,
            dlq_url=dlq_url,
            dlq_arn=dlq_arn,
            function_name=function_name,
            function_arn=function_arn,
            rule_arn=rule_arn,
            alarm_name=alarm_name,
            max_receive_count=consumer.max_receive_count,
            visibility_timeout_s=visibility,
        )


def provision(
    clients: Clients, topology: Topology = TOPOLOGY, *, visibility_timeout_s: int | None = None
) -> Provisioned:
    """Build ``topology`` through ``clients``; idempotent. Returns names, URLs and ARNs."""
    return Provisioner(clients, topology, visibility_timeout_s=visibility_timeout_s).run()
