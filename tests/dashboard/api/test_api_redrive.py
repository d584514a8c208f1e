"""API v1 redrive: dry run, start through the Operation path, permissions, read-only mode,
Idempotency-Key, validation and conflicts."""

from __future__ import annotations

import json

import pytest

from operations.models import IdempotencyKey, Operation
from tests.dashboard.api.conftest import ApiClient, Queues

pytestmark = pytest.mark.django_db
REDRIVE = "/api/v1/env/default/dlqs/orders-dlq/redrive"


def test_dry_run_counts_and_samples_without_an_operation(
    viewer_api: ApiClient, queues: Queues
) -> None:
    queues.put_event(1, "OrderPaid")
    queues.put_event(2, "OrderShipped")
    response = viewer_api.post(REDRIVE, {"dry_run": True, "filters": {"event_type": "OrderPaid"}})
    body = response.json()
    assert response.status_code == 200 and (body["examined"], body["matching"]) == (2, 1)
    assert body["sample"][0]["event_type"] == "OrderPaid" and not Operation.objects.exists()


def test_operator_starts_a_redrive_recorded_as_via_api(
    operator_api: ApiClient, operator, queues: Queues
) -> None:
    body = {"filters": {"event_type": "OrderPaid"}, "max_messages": 5, "reason": "billing fixed"}
    response = operator_api.post(REDRIVE, body)
    op = Operation.objects.get()
    assert response.status_code == 202 and response.json()["id"] == op.pk
    assert (op.kind, op.state, op.requested_by, op.reason) == (
        "redrive",
        "pending",
        operator,
        "billing fixed",
    )
    assert (op.via, op.via_token, op.parameters["max_messages"]) == ("api", "deploy-bot", 5)


def test_the_answer_links_to_the_operation_page(operator_api: ApiClient, queues: Queues) -> None:
    body = operator_api.post(REDRIVE, {"reason": "r"}).json()
    assert body["page"] == f"http://testserver/env/default/operations/{body['id']}/"


def test_base_url_setting_makes_the_links(
    operator_api: ApiClient, queues: Queues, settings
) -> None:
    settings.EVENTOPS_BASE_URL = "https://ops.example.com"
    body = operator_api.post(REDRIVE, {"reason": "r"}).json()
    assert body["page"].startswith("https://ops.example.com/env/default/operations/")


def test_viewer_cannot_start_a_redrive(viewer_api: ApiClient, queues: Queues) -> None:
    response = viewer_api.post(REDRIVE, {"reason": "r"})
    assert response.status_code == 403 and response["Content-Type"] == "application/problem+json"
    assert not Operation.objects.exists()


def test_read_only_mode_refuses_with_its_own_problem(
    operator_api: ApiClient, queues: Queues, settings
) -> None:
    settings.EVENTOPS_READ_ONLY = True
    response = operator_api.post(REDRIVE, {"reason": "r"})
    assert response.status_code == 403 and response.json()["type"].endswith("/read-only")
    assert not Operation.objects.exists()


def test_a_start_without_reason_is_422_and_changes_nothing(
    operator_api: ApiClient, queues: Queues
) -> None:
    response = operator_api.post(REDRIVE, {"reason": ""})
    assert response.status_code == 422 and "reason" in response.json()["errors"]
    assert not Operation.objects.exists()


def test_out_of_range_values_are_422(operator_api: ApiClient, queues: Queues) -> None:
    response = operator_api.post(REDRIVE, {"reason": "r", "max_messages": 0})
    assert response.status_code == 422 and response["Content-Type"] == "application/problem+json"
    assert not Operation.objects.exists()


def test_malformed_json_is_a_problem_not_a_500(operator_api: ApiClient, queues: Queues) -> None:
    response = operator_api.client.post(
        REDRIVE, "{not json", content_type="application/json", headers=operator_api.headers
    )
    assert (
        response.status_code in (400, 422)
        and response["Content-Type"] == "application/problem+json"
    )


def test_a_destination_that_is_not_a_source_is_refused(
    operator_api: ApiClient, queues: Queues
) -> None:
    body = {"reason": "r", "destination": "arn:aws:sqs:us-east-1:123456789012:elsewhere"}
    response = operator_api.post(REDRIVE, body)
    assert response.status_code == 422 and "destination_arn" in response.json()["errors"]
    assert not Operation.objects.exists()


def test_unknown_or_live_queue_is_404(operator_api: ApiClient, queues: Queues) -> None:
    assert (
        operator_api.post(REDRIVE.replace("orders-dlq", "nope"), {"reason": "r"}).status_code == 404
    )
    assert (
        operator_api.post(REDRIVE.replace("orders-dlq", "orders"), {"reason": "r"}).status_code
        == 404
    )


def test_a_second_redrive_while_one_runs_is_409(operator_api: ApiClient, queues: Queues) -> None:
    first = operator_api.post(REDRIVE, {"reason": "one"}).json()
    response = operator_api.post(REDRIVE, {"reason": "two"})
    assert response.status_code == 409 and response.json()["operation_id"] == first["id"]
    assert Operation.objects.count() == 1


def test_same_idempotency_key_returns_the_same_operation(
    operator_api: ApiClient, queues: Queues
) -> None:
    first = operator_api.post(REDRIVE, {"reason": "r"}, **{"Idempotency-Key": "k-1"})
    again = operator_api.post(REDRIVE, {"reason": "r"}, **{"Idempotency-Key": "k-1"})
    assert (first.status_code, again.status_code) == (202, 202)
    assert json.loads(again.content) == json.loads(first.content)
    assert again["Idempotent-Replayed"] == "true" and Operation.objects.count() == 1


def test_same_key_with_another_body_is_422(operator_api: ApiClient, queues: Queues) -> None:
    operator_api.post(REDRIVE, {"reason": "r"}, **{"Idempotency-Key": "k-2"})
    response = operator_api.post(REDRIVE, {"reason": "other"}, **{"Idempotency-Key": "k-2"})
    assert response.status_code == 422 and response.json()["type"].endswith(
        "/idempotency-key-reused"
    )
    assert Operation.objects.count() == 1


def test_keys_are_per_user(operator_api: ApiClient, admin_api: ApiClient, queues: Queues) -> None:
    operator_api.post(REDRIVE, {"reason": "r"}, **{"Idempotency-Key": "shared"})
    response = admin_api.post(REDRIVE, {"reason": "r"}, **{"Idempotency-Key": "shared"})
    assert response.status_code == 409  # a new request (the DLQ is busy), not a replay
    assert IdempotencyKey.objects.count() == 2


def test_a_refusal_is_replayed_too(operator_api: ApiClient, queues: Queues) -> None:
    first = operator_api.post(REDRIVE, {"reason": ""}, **{"Idempotency-Key": "k-3"})
    again = operator_api.post(REDRIVE, {"reason": ""}, **{"Idempotency-Key": "k-3"})
    assert (first.status_code, again.status_code) == (422, 422)
    assert again["Content-Type"] == "application/problem+json"


def test_messages_are_masked_for_a_viewer_and_clear_for_an_admin(
    viewer_api: ApiClient, admin_api: ApiClient, queues: Queues
) -> None:
    queues.put(json.dumps({"detail": {"password": "hunter2", "orderId": "o-1"}}))
    path = "/api/v1/env/default/dlqs/orders-dlq/messages"
    masked = viewer_api.get(path).json()["messages"][0]
    clear = admin_api.get(path).json()["messages"][0]
    assert "hunter2" not in masked["body"] and masked["body_masked"] is True
    assert "hunter2" in clear["body"] and clear["body_masked"] is False


def test_dlq_list_and_detail_give_depth_and_sources(viewer_api: ApiClient, queues: Queues) -> None:
    queues.put_event(1)
    listed = viewer_api.get("/api/v1/env/default/dlqs/").json()
    one = viewer_api.get("/api/v1/env/default/dlqs/orders-dlq").json()
    assert [d["name"] for d in listed["results"]] == ["orders-dlq"]
    assert (one["depth"], one["sources"][0]["arn"]) == (1, queues.source_arn)


def test_the_operation_page_says_it_came_through_the_api(
    operator_api: ApiClient, operator_client, queues: Queues
) -> None:
    body = operator_api.post(REDRIVE, {"reason": "r"}).json()
    html = operator_client.get(f"/env/default/operations/{body['id']}/").content.decode()
    assert "via the API, token “deploy-bot”" in html


def test_keys_older_than_a_day_are_purged(operator_api: ApiClient, queues: Queues) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from operations.tasks import purge_idempotency_keys

    operator_api.post(REDRIVE, {"dry_run": True}, **{"Idempotency-Key": "old"})
    operator_api.post(REDRIVE, {"dry_run": True}, **{"Idempotency-Key": "new"})
    IdempotencyKey.objects.filter(key="old").update(created=timezone.now() - timedelta(hours=25))
    purge_idempotency_keys()
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]


def test_a_key_still_being_answered_is_409_until_abandoned(
    operator_api: ApiClient, operator, queues: Queues
) -> None:
    from datetime import timedelta

    from django.test import RequestFactory
    from django.utils import timezone

    from dashboard.api.idempotency import request_hash
    from dashboard.api.schemas import RedriveIn

    body = {"reason": "r"}
    digest = request_hash(RequestFactory().post(REDRIVE), RedriveIn(**body).model_dump(mode="json"))
    row = IdempotencyKey.objects.create(user=operator, key="k-4", request_hash=digest)
    busy = operator_api.post(REDRIVE, body, **{"Idempotency-Key": "k-4"})
    assert busy.status_code == 409 and not Operation.objects.exists()
    IdempotencyKey.objects.filter(pk=row.pk).update(created=timezone.now() - timedelta(minutes=6))
    again = operator_api.post(REDRIVE, body, **{"Idempotency-Key": "k-4"})
    assert again.status_code == 202 and Operation.objects.count() == 1


def test_peeking_through_the_api_hides_nothing_and_is_audited(
    viewer_api: ApiClient, viewer_client, queues: Queues
) -> None:
    from operations.read_audit import ReadAudit

    for i in range(3):
        queues.put_event(i)
    path = "/api/v1/env/default/dlqs/orders-dlq/messages"
    first = viewer_api.get(path).json()
    second = viewer_api.get(path).json()  # the same shared peek, nothing hidden by the first
    assert len(first["messages"]) == len(second["messages"]) == 3
    audit = ReadAudit.objects.get()
    assert (audit.via, audit.message_count, audit.target) == ("api", 3, "orders-dlq")


def test_scan_results_are_paged_filtered_and_masked(
    viewer_api: ApiClient, admin_api: ApiClient, queues: Queues
) -> None:
    from operations.triage import scan

    queues.put(json.dumps({"detail-type": "OrderPaid", "detail": {"card": "4111111111111111"}}))
    for i in range(4):
        queues.put_event(i)
    path = "/api/v1/env/default/dlqs/orders-dlq/scan"
    assert viewer_api.get(path).status_code == 404  # not scanned yet
    op = scan.create_scan(queues.dlq_url, max_messages=None, reason="t", user_name="t")
    scan.Scan(op, op.claim(scan.LEASE_SECONDS)).run()
    body = admin_api.get(path, {"limit": 2}).json()
    assert body["count"] == 5 and len(body["results"]) == 2 and body["next"]
    assert body["scan"]["operation"] == op.pk
    everything = viewer_api.get(path, {"limit": 50}).json()["results"]
    assert all("4111111111111111" not in row["excerpt"] for row in everything)
    found = viewer_api.get(path, {"q": "4111111111111111"}).json()
    assert found["count"] == 0  # a masked value never matches
    assert viewer_api.get(path, {"group": "not-a-key"}).status_code == 422
