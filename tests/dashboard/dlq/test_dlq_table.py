"""The DLQ page's dense table: over the latest scan (filters, sorting, pagination, masked
excerpts, the heading) or, before any scan, over the peek; the "Scan all" start and a row's
body."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from operations.models import Operation
from operations.triage import scan
from operations.triage.models import ScannedMessage

from .conftest import Queues

pytestmark = pytest.mark.django_db


def page(client, **params: str):
    url = reverse("operations:dlq_messages", args=["default", "orders-dlq"])
    return client.get(url, params)


def _scanned(queues: Queues) -> Operation:
    op = scan.create_scan(queues.dlq_url, max_messages=None, reason="t", user_name="t")
    token = op.claim(scan.LEASE_SECONDS)
    scan.run_scan(op, token)
    op.refresh_from_db()
    return op


def _ids(response) -> list[str]:
    return [item["r"].message_id for item in response.context["rows"]]


@pytest.fixture
def scanned(queues: Queues) -> Operation:
    for i in range(60):
        kind = "OrderShipped" if i % 3 == 0 else "OrderPaid"
        error = {"ErrorMessage": f"amount -{i} invalid"} if i % 2 else {}
        queues.put_event(i, kind, **error)
    return _scanned(queues)


def test_before_any_scan_the_table_shows_the_peek(viewer_client, queues: Queues) -> None:
    queues.put_event(1, ErrorMessage="timeout calling billing")
    response = page(viewer_client)
    html = response.content.decode()
    assert 'id="peek-notice"' in html and 'id="scan-all"' in html
    assert [item["r"].error for item in response.context["rows"]] == ["timeout calling billing"]


def test_the_table_is_over_the_latest_scan_and_says_n_of_about_m(
    viewer_client, scanned: Operation
) -> None:
    response = page(viewer_client)
    html = response.content.decode()
    assert 'id="scan-heading"' in html and "60 of about 60 messages" in html
    assert 'id="peek-notice"' not in html
    assert len(response.context["rows"]) == 50
    assert response.context["page"].paginator.count == 60


def test_reading_the_scanned_table_receives_nothing(
    viewer_client, scanned: Operation, queues: Queues
) -> None:
    page(viewer_client)
    attrs = queues.client.get_queue_attributes(QueueUrl=queues.dlq_url, AttributeNames=["All"])
    assert attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_pages_of_fifty(viewer_client, scanned: Operation) -> None:
    first, second = _ids(page(viewer_client)), _ids(page(viewer_client, page="2"))
    assert (len(first), len(second)) == (50, 10)
    assert not set(first) & set(second)


def test_filter_by_event_type_and_group(viewer_client, scanned: Operation) -> None:
    shipped = page(viewer_client, event_type="OrderShipped")
    assert shipped.context["page"].paginator.count == 20
    key = ScannedMessage.objects.filter(operation=scanned).exclude(error="(no error recorded)")
    group = key.first().group_key
    grouped = page(viewer_client, group=group)
    assert grouped.context["page"].paginator.count == 30


def test_filter_by_correlation_id_and_text(viewer_client, scanned: Operation) -> None:
    assert _ids(page(viewer_client, correlation_id="corr-7")) == list(
        ScannedMessage.objects.filter(correlation_id="corr-7").values_list("message_id", flat=True)
    )
    assert page(viewer_client, q="AMOUNT -7 INVALID").context["page"].paginator.count == 1
    assert page(viewer_client, q='"o-12"').context["page"].paginator.count == 1


def test_text_never_matches_a_masked_value(viewer_client, queues: Queues) -> None:
    queues.put(json.dumps({"detail": {"correlationId": "c", "password": "hunter2"}}))
    _scanned(queues)
    assert page(viewer_client, q="hunter2").context["page"].paginator.count == 0
    assert "hunter2" not in page(viewer_client).content.decode()


def test_sort_by_size_both_ways(viewer_client, queues: Queues) -> None:
    for size in (5, 50, 500):
        queues.put(json.dumps({"detail": {"pad": "x" * size}}))
    _scanned(queues)
    ascending = [item["r"].size for item in page(viewer_client, sort="size").context["rows"]]
    descending = [item["r"].size for item in page(viewer_client, sort="-size").context["rows"]]
    assert ascending == sorted(ascending) and descending == sorted(ascending, reverse=True)


def test_htmx_gets_only_the_table(viewer_client, scanned: Operation) -> None:
    url = reverse("operations:dlq_messages", args=["default", "orders-dlq"])
    response = viewer_client.get(url, {"sort": "-receives"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith("{#") or html.lstrip().startswith('<div id="dlq-table">')
    assert "<html" not in html and "HX-Request" in response["Vary"]


@pytest.mark.parametrize("params", [{"sort": "drop table"}, {"group": "../x"}, {"page": "-1"}])
def test_bad_filters_are_a_400_that_reads_nothing(
    viewer_client, queues: Queues, params: dict[str, str]
) -> None:
    queues.put_event(1)
    response = page(viewer_client, **params)
    assert response.status_code == 400 and 'id="invalid-filters"' in response.content.decode()
    received = queues.client.receive_message(
        QueueUrl=queues.dlq_url, MessageSystemAttributeNames=["All"]
    )["Messages"][0]
    assert received["Attributes"]["ApproximateReceiveCount"] == "1"  # only this receive


def test_peek_param_peeks_even_after_a_scan(viewer_client, scanned: Operation) -> None:
    html = page(viewer_client, peek="1").content.decode()
    assert 'id="peek-notice"' in html and 'id="scan-heading"' not in html


def test_viewer_starts_a_scan_that_runs_and_fills_the_table(
    viewer_client, queues: Queues, worker
) -> None:
    for i in range(3):
        queues.put_event(i)
    with worker():
        response = viewer_client.post(
            reverse("operations:dlq_scan", args=["default", "orders-dlq"])
        )
    op = Operation.objects.get(kind="scan")
    assert response.status_code == 302 and op.state == "succeeded" and op.moved == 3
    assert page(viewer_client).context["page"].paginator.count == 3


def test_scan_start_is_post_only(viewer_client, queues: Queues) -> None:
    url = reverse("operations:dlq_scan", args=["default", "orders-dlq"])
    assert viewer_client.get(url).status_code == 405


def test_a_scan_while_another_operation_runs_is_refused(viewer_client, queues: Queues) -> None:
    scan.create_scan(queues.dlq_url, max_messages=None, reason="t")
    response = viewer_client.post(reverse("operations:dlq_scan", args=["default", "orders-dlq"]))
    assert response.status_code == 409 and Operation.objects.count() == 1


def test_a_row_body_is_fetched_and_masked_for_a_viewer(viewer_client, queues: Queues) -> None:
    message_id = queues.put(json.dumps({"detail": {"password": "hunter2", "n": 1}}))
    url = reverse("operations:dlq_message_body", args=["default", "orders-dlq", message_id])
    response = viewer_client.get(url)
    html = response.content.decode()
    assert response.status_code == 200 and "hunter2" not in html and "password" in html
    assert queues.depth(queues.dlq_url) == 1


def test_a_row_body_not_found_is_a_404_fragment(viewer_client, queues: Queues) -> None:
    url = reverse("operations:dlq_message_body", args=["default", "orders-dlq", "nope"])
    response = viewer_client.get(url)
    assert response.status_code == 404 and 'id="body-not-found"' in response.content.decode()
