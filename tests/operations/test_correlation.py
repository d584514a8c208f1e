"""Correlation lookup: input validation, each source against moto, the timeline, the command."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO

import boto3
import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command

from operations import correlation
from operations.aws import xray
from operations.correlation import InvalidLookup
from operations.models import Operation, TouchedCorrelation

BUS = "eventops-demo-bus"
CID = "corr-billing-7"
SIX_HOURS = timedelta(hours=6)


@pytest.fixture(autouse=True)
def _empty_cache():
    """Panels and discovery are cached: every test starts from nothing."""
    cache.clear()
    yield
    cache.clear()


def envelope(cid: str, detail_type: str = "OrderPaid", event_id: str | None = None) -> dict:
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "eventops.orders",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [],
        "detail": {"correlationId": cid, "orderId": "o-1", "occurredAt": "2026-11-26T14:00:00Z"},
    }


@pytest.fixture
def event_log(aws):
    logs = boto3.client("logs", region_name="us-east-1")
    group = f"/aws/events/{BUS}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    events = boto3.client("events", region_name="us-east-1")
    events.create_event_bus(Name=BUS)
    pattern = {"source": ["eventops.orders"], "detail-type": ["OrderPaid", "OrderCancelled"]}
    events.put_rule(
        Name="eventops-demo-billing-rule", EventBusName=BUS, EventPattern=json.dumps(pattern)
    )
    events.put_rule(
        Name="eventops-demo-shipping-only-shipped",
        EventBusName=BUS,
        EventPattern=json.dumps({"detail-type": ["OrderShipped"]}),
    )

    def put(*bodies: dict) -> None:
        now_ms = int(time.time() * 1000)
        logs.put_log_events(
            logGroupName=group,
            logStreamName="s",
            logEvents=[{"timestamp": now_ms, "message": json.dumps(b)} for b in bodies],
        )

    return put


@pytest.fixture
def dlq(aws):
    sqs = boto3.client("sqs", region_name="us-east-1")
    dead = sqs.create_queue(QueueName="eventops-demo-billing-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sqs.create_queue(
        QueueName="eventops-demo-billing",
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "3"})
        },
    )
    return sqs, dead


def correlation_table(name: str, attribute: str, key: list, definitions: list) -> None:
    boto3.client("dynamodb", region_name="us-east-1").create_table(
        TableName=name,
        KeySchema=key,
        AttributeDefinitions=[*definitions, {"AttributeName": attribute, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-correlation-id",
                "KeySchema": [{"AttributeName": attribute, "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


# --- input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "kind", "value"),
    [
        ("order-42_x:1.2", "correlation_id", "order-42_x:1.2"),
        (
            "1-5f84c7a1-1234567890abcdef12345678",
            "xray_trace_id",
            "1-5f84c7a1-1234567890abcdef12345678",
        ),
        ("5F84C7A11234567890ABCDEF12345678", "w3c_trace_id", "1-5f84c7a1-1234567890abcdef12345678"),
        (
            "3b2f0a3c-1d2e-4f50-8a9b-0c1d2e3f4a5b",
            "event_id",
            "3b2f0a3c-1d2e-4f50-8a9b-0c1d2e3f4a5b",
        ),
    ],
)
def test_lookup_input_is_classified_and_normalised(raw, kind, value):
    lookup = correlation.parse_lookup(f"  {raw} ")
    assert (lookup.kind, lookup.value) == (kind, value)


@pytest.mark.parametrize(
    "hostile",
    [
        '" OR annotation.x = "1',
        'quote"inside',
        "back\\slash",
        "x" * 10_000,
        "ünïcødé",
        "🙂",
        "a b",
        "",
        "   ",
    ],
)
def test_hostile_lookup_input_is_rejected_with_a_message(hostile):
    with pytest.raises(InvalidLookup) as caught:
        correlation.parse_lookup(hostile)
    assert str(caught.value)


def test_since_accepts_minutes_hours_days_up_to_thirty_days():
    assert correlation.parse_since("90m") == timedelta(minutes=90)
    assert correlation.parse_since("30d") == timedelta(days=30)


@pytest.mark.parametrize("bad", ["31d", "0m", "6 h", "1w", "-1h"])
def test_since_out_of_range_or_malformed_is_rejected(bad):
    with pytest.raises(InvalidLookup):
        correlation.parse_since(bad)


def test_filter_pattern_quotes_the_term():
    assert correlation.filter_pattern("c-1") == '"c-1"'
    assert correlation.filter_pattern('a"b\\') == '"a\\"b\\\\"'


# --- waterfall -------------------------------------------------------------------------


def test_waterfall_positions_segments_on_a_thousand_unit_axis():
    child = xray.Segment(id="c", name="charge", start=10.5, end=11.0, fault=True)
    root = xray.Segment(id="r", name="billing", start=10.0, end=11.0, children=(child,))
    rows = correlation.waterfall(xray.Trace(id="t", duration=1.0, segments=(root,)))
    assert [(r.depth, r.x, r.width) for r in rows] == [(0, 0, 1000), (1, 500, 500)]
    assert rows[1].state == "fault" and rows[1].duration_ms == 500.0


# --- panels against moto ----------------------------------------------------------------


@pytest.mark.django_db
def test_events_panel_lists_events_with_the_rules_they_matched(event_log):
    event_log(envelope(CID), envelope("someone-else"))
    found = correlation.events_panel(correlation.parse_lookup(CID), SIX_HOURS)
    assert [row["event"].correlation_id for row in found.rows] == [CID]
    assert found.rows[0]["rules"] == ["eventops-demo-billing-rule"]


@pytest.mark.django_db
def test_event_id_resolves_to_its_correlation_id(event_log):
    event_id = str(uuid.uuid4())
    event_log(envelope(CID, event_id=event_id))
    lookup = correlation.parse_lookup(event_id)
    assert lookup.kind == "event_id"
    assert correlation.resolve(lookup, SIX_HOURS) == CID


@pytest.mark.django_db
def test_dlq_panel_finds_messages_by_body_and_attribute_and_releases_them(dlq):
    sqs, dead = dlq
    sqs.send_message(QueueUrl=dead, MessageBody=json.dumps(envelope(CID)))
    sqs.send_message(
        QueueUrl=dead,
        MessageBody="not json",
        MessageAttributes={"correlation_id": {"DataType": "String", "StringValue": CID}},
    )
    sqs.send_message(QueueUrl=dead, MessageBody=json.dumps(envelope("other")))
    found = correlation.dlq_panel(correlation.parse_lookup(CID), SIX_HOURS)
    assert sorted(m.message.correlation_id for m in found.rows) == [CID, CID]
    visible = sqs.get_queue_attributes(
        QueueUrl=dead, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert visible["Attributes"]["ApproximateNumberOfMessages"] == "3"


@pytest.mark.django_db
def test_idempotency_panel_shows_status_and_expiry_per_consumer(aws):
    correlation_table(
        "eventops-demo-idempotency",
        "correlation_id",
        [{"AttributeName": "id", "KeyType": "HASH"}],
        [{"AttributeName": "id", "AttributeType": "S"}],
    )
    expiry = int(time.time()) + 3600
    boto3.client("dynamodb", region_name="us-east-1").put_item(
        TableName="eventops-demo-idempotency",
        Item={
            "id": {"S": "billing#abc"},
            "status": {"S": "COMPLETED"},
            "expiration": {"N": str(expiry)},
            "correlation_id": {"S": CID},
            "consumer": {"S": "billing"},
            "event_type": {"S": "OrderPaid"},
        },
    )
    found = correlation.idempotency_panel(correlation.parse_lookup(CID), SIX_HOURS)
    assert [(r.consumer, r.status) for r in found.rows] == [("billing", "COMPLETED")]
    assert found.rows[0].expires_at == datetime.fromtimestamp(expiry, tz=UTC)


@pytest.mark.django_db
def test_outbox_panel_shows_the_outbox_record_state(aws):
    key = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    defs = [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ]
    correlation_table("eventops-demo-orders", "correlationId", key, defs)
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    for pk, sk, status in (("OUTBOX#o-1", "EVENT#e-1", "PUBLISHED"), ("ORDER#o-1", "ORDER", "")):
        ddb.put_item(
            TableName="eventops-demo-orders",
            Item={
                "pk": {"S": pk},
                "sk": {"S": sk},
                "correlationId": {"S": CID},
                "status": {"S": status},
                "eventType": {"S": "OrderPaid"},
                "createdAt": {"S": "2026-11-26T14:00:00Z"},
            },
        )
    found = correlation.outbox_panel(correlation.parse_lookup(CID), SIX_HOURS)
    assert [(r.order_id, r.event_id, r.status) for r in found.rows] == [("o-1", "e-1", "PUBLISHED")]


@pytest.mark.django_db
def test_operations_panel_lists_operations_that_touched_the_id():
    op = Operation.objects.create(kind="redrive", target="q", reason="fix", requested_by_name="ann")
    TouchedCorrelation.objects.create(operation=op, correlation_id=CID)
    found = correlation.operations_panel(correlation.parse_lookup(CID), SIX_HOURS)
    assert found.rows == [op]


@pytest.mark.django_db
def test_traces_panel_asks_xray_with_the_resolved_filter(monkeypatch):
    calls = {}

    def summaries(expression, start, end, **kwargs):
        calls["expression"] = expression
        calls["span"] = end - start
        return [xray.TraceSummary("1-1-a", datetime.now(UTC), 0.3, 0.3, True, False, False)]

    root = xray.Segment(id="r", name="billing", start=1.0, end=1.3, error=True)
    monkeypatch.setattr(xray, "find_trace_summaries", summaries)
    monkeypatch.setattr(xray, "get_traces", lambda ids, s, e: [xray.Trace("1-1-a", 0.3, (root,))])
    found = correlation.traces_panel(correlation.parse_lookup(CID), timedelta(hours=24))
    assert calls == {
        "expression": f'annotation.correlation_id = "{CID}"',
        "span": timedelta(hours=24),
    }
    assert found.rows[0].has_error and found.rows[0].rows[0].name == "billing"


@pytest.mark.django_db
def test_a_failing_source_becomes_a_panel_error_not_an_exception(monkeypatch):
    from operations.aws.errors import AwsError

    def boom(*args, **kwargs):
        raise AwsError("denied", code="AccessDeniedException", operation="GetTraceSummaries")

    monkeypatch.setattr(xray, "find_trace_summaries", boom)
    found = correlation.panel("traces", correlation.parse_lookup(CID), SIX_HOURS)
    assert found.rows == [] and "Permission missing" in found.error


# --- timeline and command ------------------------------------------------------------------


def fake_panels(monkeypatch):
    def make(key, entries):
        def function(lookup, since):
            return correlation.Panel(key=key, title=key, rows=list(entries), entries=list(entries))

        return function

    at = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
    panels = {
        "traces": make(
            "traces",
            [correlation.Entry(at + timedelta(seconds=2), "X-Ray", "Trace t", state="alarm")],
        ),
        "events": make(
            "events", [correlation.Entry(at, "EventBridge", "OrderPaid (eventops.orders)")]
        ),
        "dlq": make(
            "dlq", [correlation.Entry(at + timedelta(minutes=1), "SQS DLQ", "In billing-dlq")]
        ),
        "idempotency": make("idempotency", []),
        "outbox": make("outbox", []),
        "operations": make("operations", []),
    }
    monkeypatch.setattr(correlation, "PANELS", {k: (k, f) for k, f in panels.items()})


@pytest.mark.django_db
def test_timeline_merges_every_source_by_time(monkeypatch):
    fake_panels(monkeypatch)
    built = correlation.timeline(correlation.parse_lookup(CID), SIX_HOURS)
    assert [e.source for e in built.entries] == ["EventBridge", "X-Ray", "SQS DLQ"]


@pytest.mark.django_db
def test_trace_command_prints_the_timeline(monkeypatch):
    fake_panels(monkeypatch)
    out = StringIO()
    call_command("trace", CID, "--since", "24h", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"correlation ID {CID}")
    assert [line for line in lines if "In billing-dlq" in line]


@pytest.mark.django_db
def test_trace_command_prints_json(monkeypatch):
    fake_panels(monkeypatch)
    out = StringIO()
    call_command("trace", CID, "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["correlation_id"] == CID and data["since_seconds"] == 6 * 3600
    assert [e["source"] for e in data["timeline"]] == ["EventBridge", "X-Ray", "SQS DLQ"]


@pytest.mark.parametrize("bad", ['" OR annotation.x = "1', "x" * 10_000])
def test_trace_command_rejects_hostile_ids(bad):
    with pytest.raises(CommandError):
        call_command("trace", bad)


@pytest.mark.django_db
def test_trace_id_resolves_to_the_correlation_annotation(monkeypatch):
    annotated = xray.Segment(
        id="s", name="process", start=1.0, end=2.0, annotations={"correlation_id": CID}
    )
    root = xray.Segment(id="r", name="billing", start=1.0, end=2.0, children=(annotated,))
    asked = []

    def traces(ids, start, end):
        asked.append(ids)
        return [xray.Trace(ids[0], 1.0, (root,))]

    monkeypatch.setattr(xray, "get_traces", traces)
    lookup = correlation.parse_lookup("5f84c7a11234567890abcdef12345678")
    assert correlation.resolve(lookup, SIX_HOURS) == CID
    assert asked == [["1-5f84c7a1-1234567890abcdef12345678"]]


@pytest.mark.django_db
def test_trace_command_looks_in_the_environment_it_is_given(monkeypatch, tmp_path, settings):
    path = tmp_path / "environments.toml"
    path.write_text(
        '[environments.prod]\nregion = "eu-west-1"\n[environments.staging]\nregion = "us-west-2"\n'
    )
    settings.EVENTOPS_ENVIRONMENTS_FILE = str(path)
    fake_panels(monkeypatch)
    seen = []
    real_timeline = correlation.timeline

    def timeline(*args, **kwargs):
        from operations import environments

        seen.append(environments.current().name)
        return real_timeline(*args, **kwargs)

    monkeypatch.setattr(correlation, "timeline", timeline)
    call_command("trace", CID, stdout=StringIO())
    call_command("trace", CID, "--env", "staging", stdout=StringIO())
    assert seen == ["prod", "staging"]
    with pytest.raises(CommandError, match="No environment 'dev'; configured: prod, staging"):
        call_command("trace", CID, "--env", "dev")


@pytest.mark.django_db
def test_dlq_panel_reuses_the_peek_the_messages_page_just_made(dlq):
    from operations import dlq_peek

    sqs, dead = dlq
    sqs.send_message(QueueUrl=dead, MessageBody=json.dumps(envelope(CID)))
    # The messages page reads the shared peek; the panel reads the same one, and nothing
    # was left hidden by the page's read.
    assert len(dlq_peek.shared_messages(dead)) == 1
    found = correlation.dlq_panel(correlation.parse_lookup(CID), SIX_HOURS)
    assert [m.message.correlation_id for m in found.rows] == [CID]
    visible = sqs.get_queue_attributes(
        QueueUrl=dead, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    assert visible == "1"


@pytest.mark.django_db
def test_a_failed_panel_counts_as_loaded_for_the_timeline(monkeypatch, settings):
    from operations.aws.errors import AwsError

    settings.EVENTOPS_CACHE_TTL = 15

    def boom(*args, **kwargs):
        raise AwsError("slow", code="RequestTimeout", operation="GetTraceSummaries", transient=True)

    monkeypatch.setattr(xray, "find_trace_summaries", boom)
    lookup = correlation.parse_lookup(CID)
    assert "traces" in correlation.timeline_so_far(lookup, SIX_HOURS).missing
    correlation.panel("traces", lookup, SIX_HOURS)
    built = correlation.timeline_so_far(lookup, SIX_HOURS)
    assert "traces" not in built.missing and built.failed == ["X-Ray traces"]
