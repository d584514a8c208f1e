"""API v1 operations: the paginated list, one operation, cancel."""

from __future__ import annotations

import pytest
from django.utils import timezone

from operations.models import Operation
from tests.dashboard.api.conftest import ApiClient

pytestmark = pytest.mark.django_db
LIST = "/api/v1/env/default/operations/"


def make(n: int = 1, **fields: object) -> list[Operation]:
    defaults: dict[str, object] = {"kind": "redrive", "reason": "r", "requested_by_name": "x"}
    return [
        Operation.objects.create(**{**defaults, "target": f"q-{i}", **fields}) for i in range(n)
    ]


def test_list_is_paginated_with_next_links(viewer_api: ApiClient) -> None:
    make(3)
    body = viewer_api.get(LIST, {"limit": 2}).json()
    assert body["count"] == 3 and len(body["results"]) == 2
    second = viewer_api.get(body["next"].replace("http://testserver", "")).json()
    assert len(second["results"]) == 1 and second["next"] is None and second["previous"]


def test_list_filters_by_state(viewer_api: ApiClient) -> None:
    make(2)
    make(1, state="succeeded", finished_at=timezone.now())
    body = viewer_api.get(LIST, {"state": "succeeded"}).json()
    assert [r["state"] for r in body["results"]] == ["succeeded"]


def test_an_unknown_state_is_422(viewer_api: ApiClient) -> None:
    assert viewer_api.get(LIST, {"state": "exploded"}).status_code == 422


def test_detail_has_state_and_counters(viewer_api: ApiClient) -> None:
    (op,) = make(1, state="partial", moved=7, failed=2, total=9, finished_at=timezone.now())
    body = viewer_api.get(f"{LIST}{op.pk}").json()
    assert (body["state"], body["moved"], body["failed"], body["total"]) == ("partial", 7, 2, 9)


def test_an_operation_of_another_environment_is_404(viewer_api: ApiClient) -> None:
    (op,) = make(1, environment="elsewhere")
    response = viewer_api.get(f"{LIST}{op.pk}")
    assert response.status_code == 404 and response["Content-Type"] == "application/problem+json"


def test_operator_cancels_a_pending_operation(operator_api: ApiClient) -> None:
    (op,) = make(1)
    response = operator_api.post(f"{LIST}{op.pk}/cancel", {"reason": "wrong queue"})
    op.refresh_from_db()
    assert response.status_code == 202 and response.json()["operation"]["state"] == "cancelled"
    assert (op.state, op.cancel_reason, op.cancel_requested_by) == (
        "cancelled",
        "wrong queue",
        "oncall",
    )


def test_cancel_needs_a_reason(operator_api: ApiClient) -> None:
    (op,) = make(1)
    assert operator_api.post(f"{LIST}{op.pk}/cancel", {}).status_code == 422
    op.refresh_from_db()
    assert op.state == "pending"


def test_cancelling_a_finished_operation_is_409(operator_api: ApiClient) -> None:
    (op,) = make(1, state="succeeded", finished_at=timezone.now())
    response = operator_api.post(f"{LIST}{op.pk}/cancel", {"reason": "x"})
    assert response.status_code == 409 and response.json()["state"] == "succeeded"


def test_viewer_cannot_cancel(viewer_api: ApiClient) -> None:
    (op,) = make(1)
    assert viewer_api.post(f"{LIST}{op.pk}/cancel", {"reason": "x"}).status_code == 403
    op.refresh_from_db()
    assert op.state == "pending"


def test_get_on_cancel_is_405(operator_api: ApiClient) -> None:
    (op,) = make(1)
    assert operator_api.get(f"{LIST}{op.pk}/cancel").status_code == 405
