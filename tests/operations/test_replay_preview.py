"""The replay preview: counts by detail-type and rule, and the idempotency warning."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from operations import archive, replay, topology
from tests.operations import archive_world
from tests.operations.archive_world import ARCHIVE, create_idempotency_table, detail, put_record

world = archive_world.world


def _plan(rules: tuple[str, ...] = ()) -> replay.ReplayPlan:
    now = datetime.now(tz=UTC)
    return replay.plan_replay(archive.load_archive(ARCHIVE), now - timedelta(hours=1), now, rules)


def _key(function: str, event_id: str) -> str:
    digest = hashlib.md5(json.dumps(event_id).encode(), usedforsecurity=False).hexdigest()
    return f"{function}#{digest}"


@pytest.fixture
def events_in_window(world):
    return {
        "paid": world.put("OrderPaid", detail("c-1")),
        "cancelled": world.put("OrderCancelled", detail("c-2", reason="x")),
        "created": world.put("OrderCreated", detail("c-3")),
    }


def test_preview_counts_by_detail_type_and_by_rule(events_in_window):
    preview = replay.preview(_plan())
    assert preview.total == 3
    assert dict(preview.by_detail_type) == {"OrderPaid": 1, "OrderCancelled": 1, "OrderCreated": 1}
    assert dict(preview.by_rule) == {"event-log": 3, "billing-rule": 2, "notify-rule": 3}


def test_preview_of_chosen_rules_counts_only_their_events(events_in_window):
    preview = replay.preview(_plan(("billing-rule",)))
    assert dict(preview.by_rule) == {"billing-rule": 2}
    assert preview.delivered == 2


def test_preview_respects_the_archive_event_pattern(world):
    boto3.client("events", region_name="us-east-1").create_archive(
        ArchiveName="paid-only",
        EventSourceArn=world.bus_arn,
        EventPattern=json.dumps({"detail-type": ["OrderPaid"]}),
    )
    world.put("OrderPaid", detail("c-1"))
    world.put("OrderCreated", detail("c-2"))
    now = datetime.now(tz=UTC)
    view = archive.load_archive("paid-only")
    preview = replay.preview(replay.plan_replay(view, now - timedelta(hours=1), now))
    assert preview.total == 1
    assert dict(preview.by_detail_type) == {"OrderPaid": 1}


def test_idempotency_warning_counts_live_completed_records_per_consumer(events_in_window):
    create_idempotency_table()
    future, past = int(time.time()) + 3600, int(time.time()) - 60
    ids = events_in_window
    put_record(
        key=_key("billing-fn.handler", ids["paid"]),
        correlation_id="c-1",
        consumer="billing",
        event_type="OrderPaid",
        status="COMPLETED",
        expiration=future,
    )
    put_record(
        key=_key("shipping-fn.handler", ids["cancelled"]),
        correlation_id="c-2",
        consumer="shipping",
        event_type="OrderCancelled",
        status="COMPLETED",
        expiration=past,
    )
    put_record(
        key=_key("billing-fn.handler", ids["cancelled"]),
        correlation_id="c-2",
        consumer="billing",
        event_type="OrderCancelled",
        status="INPROGRESS",
        expiration=future,
    )
    # Keyed on something other than the event ID: tied by correlation ID and event type.
    put_record(
        key="notify-fn.handler#0123abcd",
        correlation_id="c-3",
        consumer="notifications",
        event_type="OrderCreated",
        status="COMPLETED",
        expiration=future,
    )
    report = replay.preview(_plan()).idempotency
    assert report.tables == ["shop-idempotency"]
    assert report.skipped_by_consumer == {"billing": 1, "notifications": 1}


def test_no_idempotency_records_means_no_warning(events_in_window):
    create_idempotency_table()
    report = replay.preview(_plan()).idempotency
    assert report.skipped_total == 0 and report.lookups == 3


def test_idempotency_tables_setting_overrides_discovery(settings, world):
    create_idempotency_table()
    settings.EVENTOPS_IDEMPOTENCY_TABLES = "a-table, b-table"
    assert topology.idempotency_tables() == ["a-table", "b-table"]


def test_unreadable_idempotency_table_is_reported_not_raised(settings, events_in_window):
    settings.EVENTOPS_IDEMPOTENCY_TABLES = "missing-table"
    report = replay.preview(_plan()).idempotency
    assert "Could not read the idempotency records" in report.error
    assert report.skipped_total == 0


def test_key_hash_matches_powertools_for_the_consumers_config(aws):
    # infra/functions/consumer.py: event_key_jmespath="id", key_prefix=<consumer name>.
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
    from aws_lambda_powertools.utilities.idempotency.persistence.dynamodb import (
        DynamoDBPersistenceLayer,
    )

    layer = DynamoDBPersistenceLayer(table_name="shop-idempotency")
    layer.configure(IdempotencyConfig(event_key_jmespath="id"), key_prefix="billing")
    key = layer._get_hashed_idempotency_key({"id": "6a7e8feb-b491", "detail": {}})
    prefix, digest = key.split("#")
    assert prefix == "billing"
    assert digest in replay.key_hashes("6a7e8feb-b491")


def test_archive_pattern_the_local_matcher_rejects_counts_every_event_with_a_warning(
    events_in_window,
):
    """An archive pattern the local matcher cannot read is not a 500: the preview counts
    every event of the window and says why."""
    import dataclasses

    plan = _plan()
    unreadable = json.dumps({"detail-type": [{"no-such-matcher": "x"}]})
    plan.view = dataclasses.replace(
        plan.view, archive=dataclasses.replace(plan.view.archive, event_pattern=unreadable)
    )
    preview = replay.preview(plan)
    assert preview.total == 3
    assert any("cannot be checked here" in w for w in preview.warnings)
