"""A redrive split across workers on its page and in the API: "N workers", each part's
state and count, and the totals summed from the parts while it runs."""

from __future__ import annotations

import pytest
from django.urls import reverse

from operations import redrive as engine
from operations.models import Operation
from tests.dashboard.api.conftest import ApiClient, api_client

pytestmark = pytest.mark.django_db
DLQ = "https://sqs.us-east-1.amazonaws.com/123456789012/orders-dlq"


def split(workers: int = 3) -> Operation:
    params = engine.RedriveParams(workers=workers, destination_arn="arn:aws:sqs:x:1:orders")
    parent = engine.create(engine.StartRequest(DLQ, params, "deep DLQ", None, "oncall"))
    for part, moved in zip(parent.parts.order_by("part"), (10, 20, 5), strict=False):
        Operation.objects.filter(pk=part.pk).update(state="running", moved=moved)
    return parent


def test_the_page_shows_the_workers_their_parts_and_the_sums(viewer_client) -> None:
    parent = split()
    html = viewer_client.get(reverse("operations:detail", args=["default", parent.pk])).content
    page = html.decode()
    assert 'id="operation-parts"' in page and "3 workers" in page
    assert '<td class="num" id="count-moved">35</td>' in page
    first = parent.parts.get(part=1)
    assert reverse("operations:detail", args=["default", first.pk]) in page
    live = viewer_client.get(reverse("operations:live", args=["default", parent.pk])).content
    assert 'id="workers">3<' in live.decode()


def test_a_part_links_to_its_parent(viewer_client) -> None:
    parent = split(2)
    part = parent.parts.get(part=2)
    page = viewer_client.get(reverse("operations:detail", args=["default", part.pk])).content
    assert f"redrive #{parent.pk}</a>" in page.decode()


@pytest.fixture
def viewer_api(viewer) -> ApiClient:
    return api_client(viewer)


def test_the_api_shows_the_sums_and_the_parts(viewer_api: ApiClient) -> None:
    parent = split()
    body = viewer_api.get(f"/api/v1/env/default/operations/{parent.pk}").json()
    assert (body["state"], body["moved"], body["parameters"]["workers"]) == ("running", 35, 3)
    assert [(p["part"], p["moved"]) for p in body["parts"]] == [(1, 10), (2, 20), (3, 5)]
    part = viewer_api.get(f"/api/v1/env/default/operations/{body['parts'][0]['id']}").json()
    assert (part["parent"], part["part"]) == (parent.pk, 1)


def test_the_list_shows_the_parent_with_its_sums_not_the_parts(viewer_client) -> None:
    parent = split()
    response = viewer_client.get(reverse("operations:list", args=["default"]))
    rows = list(response.context["page"])
    assert [(op.pk, op.moved) for op in rows] == [(parent.pk, 35)]


def test_the_form_starts_a_redrive_on_several_workers(operator_client, queues, worker) -> None:
    from .conftest import Queues

    assert isinstance(queues, Queues)
    for i in range(7):
        queues.put_event(i)
    start = reverse("operations:redrive_start", args=["default", "orders-dlq"])
    data = {"reason": "deep DLQ", "destination_arn": queues.source_arn, "workers": "2"}
    with worker():
        response = operator_client.post(start, data)
    parent = Operation.objects.get(parent__isnull=True)
    assert response.status_code == 302 and response["Location"].endswith(f"/{parent.pk}/")
    assert (parent.state, parent.moved, parent.parts.count()) == ("succeeded", 7, 2)
    assert queues.depth(queues.source_url) == 7 and queues.depth(queues.dlq_url) == 0
