"""The consumer's real error for a DLQ message: its log line, X-Ray, then the attributes."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from operations import dlq
from operations.aws import client as aws_client
from operations.aws.sqs import SqsMessage
from operations.triage import logs as consumer_logs
from operations.triage.errors import Source, errors_for, lookup

FUNCTION = "orders-consumer"
GROUP = f"/aws/lambda/{FUNCTION}"
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/var/task/infra/functions/consumer.py", line 270, in _validated_and_processed\n'
    "    event = self._event(body, record, correlation_id)\n"
    '  File "/var/task/infra/functions/consumer.py", line 172, in validate_message\n'
    '    raise InvalidMessage(f"{envelope.detail_type}: {_validation_text(exc)}") from exc\n'
    "infra.functions.consumer.InvalidMessage: OrderPaid: amount: must be positive, got -5"
)


def powertools_line(message_id: str, **extra: Any) -> str:
    line = {
        "level": "ERROR",
        "location": "_validated_and_processed:272",
        "message": "poison message: validation failed",
        "timestamp": "2026-01-01 00:00:00,000+0000",
        "service": FUNCTION,
        "message_id": message_id,
        "correlation_id": f"corr-{message_id}",
        "exception_name": "InvalidMessage",
        "exception": TRACEBACK,
    }
    line.update(extra)
    return json.dumps(line)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


class World:
    def __init__(self) -> None:
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.logs = boto3.client("logs", region_name="us-east-1")
        self.dlq_url = self.sqs.create_queue(QueueName="orders-dlq")["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
        self.sqs.create_queue(QueueName="orders", Attributes={"RedrivePolicy": policy})
        self.source_arn = dlq_arn.replace("orders-dlq", "orders")
        iam = boto3.client("iam", region_name="us-east-1")
        role = iam.create_role(
            RoleName="consumer-role",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        lam = boto3.client("lambda", region_name="us-east-1")
        lam.create_function(
            FunctionName=FUNCTION,
            Runtime="python3.11",
            Role=role,
            Handler="handler.handler",
            Code={"ZipFile": _zip()},
        )
        lam.create_event_source_mapping(EventSourceArn=self.source_arn, FunctionName=FUNCTION)
        self.logs.create_log_group(logGroupName=GROUP)
        self.logs.create_log_stream(logGroupName=GROUP, logStreamName="s1")

    def put(self, **attributes: str) -> str:
        extra = {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}
        kwargs: dict[str, Any] = {"QueueUrl": self.dlq_url, "MessageBody": '{"detail": {}}'}
        if extra:
            kwargs["MessageAttributes"] = extra
        return str(self.sqs.send_message(**kwargs)["MessageId"])

    def log(self, *lines: str) -> None:
        now = int(time.time() * 1000)
        events = [{"timestamp": now + i, "message": line} for i, line in enumerate(lines)]
        self.logs.put_log_events(logGroupName=GROUP, logStreamName="s1", logEvents=events)

    def messages(self) -> list[dlq.DlqMessage]:
        return dlq.peek(self.dlq_url, limit=50, visibility_seconds=0).messages


@pytest.fixture
def world(aws: None, settings: Any) -> World:
    settings.EVENTOPS_CACHE_TTL = 60
    return World()


def test_the_consumers_log_line_gives_the_real_exception(world: World) -> None:
    poison = world.put()
    other = world.put()
    world.log(
        powertools_line(poison),
        json.dumps({"level": "INFO", "message": "event processed", "message_id": other}),
    )
    errors = errors_for(world.dlq_url, world.messages())
    found = errors[poison]
    assert (found.source, found.consumer, found.exception_name) == (
        Source.LOGS,
        FUNCTION,
        "InvalidMessage",
    )
    assert found.message == "OrderPaid: amount: must be positive, got -5"
    assert found.location == "consumer.py:172 in validate_message"
    assert found.summary.startswith("InvalidMessage: OrderPaid: amount")
    assert errors[other].source is Source.NONE


def test_the_newest_failure_of_a_message_wins(world: World) -> None:
    poison = world.put()
    world.log(
        powertools_line(poison, exception_name="TimeoutError", exception=""),
        powertools_line(poison),
    )
    assert errors_for(world.dlq_url, world.messages())[poison].exception_name == "InvalidMessage"


def test_lambda_attributes_when_nothing_was_logged(world: World) -> None:
    message_id = world.put(ErrorCode="200", ErrorMessage="Task timed out")
    error = errors_for(world.dlq_url, world.messages())[message_id]
    assert error.source is Source.ATTRIBUTES and error.summary == "200: Task timed out"


def test_a_lookup_is_cached_for_the_same_messages(world: World) -> None:
    poison = world.put()
    world.log(powertools_line(poison))
    messages = world.messages()
    errors_for(world.dlq_url, messages)
    calls: Counter[str] = Counter()
    aws_client.reset()  # the next clients carry the counter
    aws_client.session().events.register(
        "before-call.*.*", lambda model, **kw: calls.update([model.name])
    )
    again = errors_for(world.dlq_url, messages)
    assert again[poison].source is Source.LOGS
    assert sum(calls.values()) == 0


def test_without_a_consumer_it_says_so_and_falls_back(world: World) -> None:
    boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="lonely-dlq")
    url = world.sqs.get_queue_url(QueueName="lonely-dlq")["QueueUrl"]
    world.sqs.send_message(QueueUrl=url, MessageBody="x")
    messages = dlq.peek(url, limit=10, visibility_seconds=0).messages
    found = lookup(url, messages)
    assert found.errors == {}
    assert errors_for(url, messages)[messages[0].message_id].source is Source.NONE


def _traced(message_id: str, trace_id: str) -> dlq.DlqMessage:
    return dlq.describe(
        SqsMessage(
            message_id=message_id,
            receipt_handle="rh",
            body="{}",
            attributes={"AWSTraceHeader": f"Root={trace_id};Parent=53995c3f42cd8ad8;Sampled=1"},
            message_attributes={},
        )
    )


def test_the_xray_fault_when_the_logs_have_nothing(world: World) -> None:
    trace_id = "1-5759e988-bd862e3fe1be46a994272793"
    start = time.time() - 5
    segment = {
        "trace_id": trace_id,
        "id": "6226467e3f845502",
        "name": FUNCTION,
        "start_time": start,
        "end_time": start + 1,
        "fault": True,
        "cause": {
            "exceptions": [
                {
                    "type": "ConnectionError",
                    "message": "ledger unreachable",
                    "stack": [{"path": "billing.py", "line": 42, "label": "charge"}],
                }
            ]
        },
    }
    xray = boto3.client("xray", region_name="us-east-1")
    xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(segment)])
    message = _traced("m-traced", trace_id)
    error = errors_for(world.dlq_url, [message])["m-traced"]
    assert (error.source, error.exception_name, error.message) == (
        Source.XRAY,
        "ConnectionError",
        "ledger unreachable",
    )
    assert error.location == "billing.py:42 in charge"


# --- Logs Insights and its fallback, with the exact requests (Stubber) ---------------------


@pytest.fixture
def logs_stub() -> Iterator[Stubber]:
    client = boto3.client("logs", region_name="us-east-1")
    aws_client.override("logs", client)
    try:
        with Stubber(client) as stubber:
            yield stubber
            stubber.assert_no_pending_responses()
    finally:
        aws_client.reset()


def test_one_insights_query_per_batch_with_the_exact_request(logs_stub: Stubber) -> None:
    ids = ["id-1", "id-2"]
    query = (
        'fields @timestamp, @message, @log | filter message_id in ["id-1", "id-2"] '
        'and level in ["ERROR", "CRITICAL"] | sort @timestamp desc | limit 20'
    )
    logs_stub.add_response(
        "start_query",
        {"queryId": "q-1"},
        {
            "logGroupNames": [GROUP, "/aws/lambda/other"],
            "startTime": 1_700_000_000,
            "endTime": 1_700_003_601,
            "queryString": query,
            "limit": 20,
        },
    )
    logs_stub.add_response("get_query_results", {"status": "Running", "results": []})
    row = [
        {"field": "@timestamp", "value": "2023-11-14 22:13:20.000"},
        {"field": "@message", "value": powertools_line("id-2")},
        {"field": "@log", "value": f"123456789012:{GROUP}"},
    ]
    logs_stub.add_response(
        "get_query_results", {"status": "Complete", "results": [row]}, {"queryId": "q-1"}
    )
    search = consumer_logs.find_failures(
        [GROUP, "/aws/lambda/other"],
        ids,
        start_ms=1_700_000_000_000,
        end_ms=1_700_003_600_500,
        sleep=lambda _: None,
    )
    assert list(search.found) == ["id-2"]
    assert search.found["id-2"].log_group == GROUP
    assert search.found["id-2"].timestamp_ms == 1_700_000_000_000


def test_filter_log_events_when_insights_is_refused(logs_stub: Stubber) -> None:
    logs_stub.add_client_error("start_query", "AccessDeniedException", "not allowed")
    pattern = '{ ($.level = "ERROR" || $.level = "CRITICAL") && ($.message_id = "id-1") }'
    logs_stub.add_response(
        "filter_log_events",
        {"events": [{"timestamp": 5, "message": powertools_line("id-1"), "eventId": "e"}]},
        {
            "logGroupName": GROUP,
            "startTime": 1000,
            "endTime": 9000,
            "filterPattern": pattern,
            "limit": 1000,
        },
    )
    search = consumer_logs.find_failures(
        [GROUP], ["id-1"], start_ms=1000, end_ms=9000, sleep=lambda _: None
    )
    assert search.found["id-1"].exception_name == "InvalidMessage"
    assert "FilterLogEvents" in search.notes[0]


def test_ids_that_could_break_the_query_are_never_sent(logs_stub: Stubber) -> None:
    search = consumer_logs.find_failures(
        [GROUP], ['x"] | filter 1=1'], start_ms=0, end_ms=1, sleep=lambda _: None
    )
    assert search.found == {} and search.notes == []


def test_a_line_without_a_traceback_keeps_its_logged_error() -> None:
    line = json.dumps(
        {
            "level": "ERROR",
            "location": "handle:10",
            "message": "poison message: business rule",
            "message_id": "m",
            "rule_error": "refund 30 exceeds 20",
        }
    )
    failure = consumer_logs.parse_line(line, 1, GROUP)
    assert failure is not None
    assert (failure.message, failure.location) == ("refund 30 exceeds 20", "handle:10")
    assert consumer_logs.parse_line(line.replace("ERROR", "INFO")) is None


def test_logged_at_is_when_the_line_was_written() -> None:
    failure = consumer_logs.parse_line(powertools_line("m"), 1_700_000_000_000)
    assert failure is not None
    assert consumer_logs.logged_at(failure) == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def test_a_later_peek_looks_up_only_the_messages_not_known_yet(world: World) -> None:
    first, second = world.put(), world.put()
    world.log(powertools_line(first), powertools_line(second))
    messages = {m.message_id: m for m in world.messages()}
    errors_for(world.dlq_url, [messages[first]])
    queries: list[str] = []
    aws_client.reset()
    aws_client.session().events.register(
        "provide-client-params.logs.StartQuery",
        lambda params, **kw: queries.append(params["queryString"]),
    )
    both = errors_for(world.dlq_url, [messages[first], messages[second]])
    assert {e.source for e in both.values()} == {Source.LOGS}
    assert len(queries) == 1 and second in queries[0] and first not in queries[0]
