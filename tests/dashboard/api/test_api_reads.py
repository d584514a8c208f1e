"""API v1 reads: overview, alarms, archives, correlation lookup, replay refusals."""

from __future__ import annotations

import boto3
import pytest

from operations.models import Operation
from tests.dashboard.api.conftest import ApiClient, Queues
from tests.operations.test_runbooks import put_alarm

pytestmark = pytest.mark.django_db
ENV = "/api/v1/env/default"


def test_overview_lists_consumers_with_dlq_depth(viewer_api: ApiClient, queues: Queues) -> None:
    queues.put_event(1)
    body = viewer_api.get(f"{ENV}/overview").json()
    orders = next(c for c in body["consumers"] if c["queue"] == "orders")
    assert (orders["dlq"], orders["dlq_depth"], body["dlq_messages"]) == ("orders-dlq", 1, 1)


def test_alarms_filter_by_state(viewer_api: ApiClient, aws: None) -> None:
    for name in ("a-ok", "b-firing"):
        put_alarm(name)
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    cw.set_alarm_state(AlarmName="b-firing", StateValue="ALARM", StateReason="test")
    body = viewer_api.get(f"{ENV}/alarms/", {"state": "ALARM"}).json()
    assert [a["name"] for a in body["results"]] == ["b-firing"]
    assert body["results"][0]["page"].endswith("/env/default/alarms/b-firing/")


def test_unknown_alarm_state_is_422(viewer_api: ApiClient, aws: None) -> None:
    assert viewer_api.get(f"{ENV}/alarms/", {"state": "RED"}).status_code == 422


def test_archives_are_listed(viewer_api: ApiClient, aws: None) -> None:
    events = boto3.client("events", region_name="us-east-1")
    bus = events.create_event_bus(Name="orders")["EventBusArn"]
    events.create_archive(ArchiveName="orders-archive", EventSourceArn=bus, RetentionDays=7)
    body = viewer_api.get(f"{ENV}/archives/").json()
    assert [(a["name"], a["bus"]) for a in body["results"]] == [("orders-archive", "orders")]


def test_replay_of_an_unknown_archive_is_404(operator_api: ApiClient, aws: None) -> None:
    body = {"start": "2026-01-01T00:00Z", "end": "2026-01-01T01:00Z", "reason": "r"}
    response = operator_api.post(f"{ENV}/archives/nope/replay", body)
    assert response.status_code == 404 and not Operation.objects.exists()


def test_viewer_cannot_replay(viewer_api: ApiClient, aws: None) -> None:
    body = {"start": "2026-01-01T00:00Z", "end": "2026-01-01T01:00Z", "reason": "r"}
    assert viewer_api.post(f"{ENV}/archives/any/replay", body).status_code == 403


def test_correlation_refuses_a_hostile_id(viewer_api: ApiClient, aws: None) -> None:
    response = viewer_api.get(f"{ENV}/correlation/a%22%20OR%201")
    assert response.status_code == 422 and "may contain only" in response.json()["detail"]


def test_correlation_lists_the_operations_that_touched_an_id(
    viewer_api: ApiClient, aws: None
) -> None:
    op = Operation.objects.create(kind="redrive", target="q", reason="r", requested_by_name="x")
    op.touched.create(correlation_id="corr-42")
    body = viewer_api.get(f"{ENV}/correlation/corr-42", {"since": "1h"}).json()
    assert body["correlation_id"] == "corr-42" and body["panels"]["operations"]["count"] == 1


def test_failure_groups_are_listed_worst_first_and_masked(viewer_api: ApiClient) -> None:
    from operations.triage.models import FailureGroup

    common = {"environment": "default", "dlq_url": "u", "dlq_name": "orders-dlq"}
    FailureGroup.objects.create(key="a" * 32, title="small", count=1, **common)
    FailureGroup.objects.create(key="b" * 32, title="KeyError password=hunter2", count=4, **common)
    FailureGroup.objects.create(
        key="c" * 32, title="resolved", count=9, state=FailureGroup.State.RESOLVED, **common
    )
    FailureGroup.objects.create(key="d" * 32, title="elsewhere", count=5, environment="other")
    rows = viewer_api.get(f"{ENV}/failure-groups/").json()["results"]
    assert [(r["count"], r["state"]) for r in rows] == [(4, "open"), (1, "open"), (9, "resolved")]
    assert "hunter2" not in rows[0]["title"] and rows[0]["dlq"] == "orders-dlq"
