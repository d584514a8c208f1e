"""Operations list, detail, htmx progress (stops polling) and cancel; the read-only admin."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import Client, RequestFactory
from django.urls import reverse

from operations.models import Operation

pytestmark = pytest.mark.django_db


def make(target: str = "https://sqs/q/orders-dlq", **fields) -> Operation:
    defaults = {
        "kind": "redrive",
        "reason": "fix",
        "requested_by_name": "oncall",
        "target_label": "orders-dlq",
    }
    return Operation.objects.create(target=target, **{**defaults, **fields})


def listed(client, **query) -> list[int]:
    response = client.get(reverse("operations:list", args=["default"]), query)
    return [op.pk for op in response.context["page"]]


def test_list_filters_by_kind_and_state(viewer_client) -> None:
    wanted = make(kind="redrive", state="succeeded")
    make(target="b", kind="delete_messages", state="succeeded")
    make(target="c", kind="redrive", state="failed")
    assert listed(viewer_client, kind="redrive", state="succeeded") == [wanted.pk]


def test_list_filters_by_user_and_target(viewer_client) -> None:
    wanted = make(target="https://sqs/q/billing-dlq", requested_by_name="alice")
    make(target="https://sqs/q/billing-dlq-2", requested_by_name="bob", state="failed")
    assert listed(viewer_client, user="ali", target="billing") == [wanted.pk]


def test_detail_shows_who_why_and_parameters(viewer_client) -> None:
    op = make(parameters={"max_messages": 5}, reason="billing <b>fixed</b>")
    html = viewer_client.get(reverse("operations:detail", args=["default", op.pk])).content.decode()
    assert "billing &lt;b&gt;fixed&lt;/b&gt;" in html and "oncall" in html
    assert "&quot;max_messages&quot;: 5" in html


def test_detail_of_unknown_operation_is_404(viewer_client) -> None:
    assert viewer_client.get(reverse("operations:detail", args=["default", 999])).status_code == 404


def test_progress_keeps_polling_while_running(viewer_client) -> None:
    op = make(state="running", total=100, moved=40)
    response = viewer_client.get(
        reverse("operations:progress", args=["default", op.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and "hx-trigger" in response.content.decode()
    assert response["Vary"] and "HX-Request" in response["Vary"]


def test_progress_stops_polling_when_finished(viewer_client) -> None:
    op = make(state="succeeded", total=10, moved=10)
    response = viewer_client.get(
        reverse("operations:progress", args=["default", op.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 286
    assert "hx-trigger" not in response.content.decode()


def test_progress_shows_rate_and_eta(viewer_client) -> None:
    from datetime import timedelta

    from django.utils import timezone

    op = make(
        state="running", total=100, moved=40, started_at=timezone.now() - timedelta(seconds=20)
    )
    context = viewer_client.get(reverse("operations:progress", args=["default", op.pk])).context
    assert context["rate"] == pytest.approx(2.0, rel=0.05)
    assert context["eta_seconds"] == pytest.approx(30, abs=2)


def test_progress_shows_messages_back_in_the_dlq_only_when_there_are_some(viewer_client) -> None:
    looping = make(state="running", total=20, moved=20, progress={"returned": 7})
    quiet = make(target="https://sqs/q/other-dlq", state="running", total=20, moved=5)
    html = viewer_client.get(
        reverse("operations:progress", args=["default", looping.pk])
    ).content.decode()
    assert 'id="count-returned">7<' in html
    html = viewer_client.get(
        reverse("operations:progress", args=["default", quiet.pk])
    ).content.decode()
    assert "count-returned" not in html


def cancel(client, op: Operation):
    return client.post(
        reverse("operations:cancel", args=["default", op.pk]), {"reason": "wrong queue"}
    )


def test_operator_cancels_a_running_operation(operator_client) -> None:
    op = make(state="running")
    assert cancel(operator_client, op).status_code == 302
    op.refresh_from_db()
    assert op.cancel_requested and op.state == "running"
    assert (op.cancel_requested_by, op.cancel_reason) == ("oncall", "wrong queue")


def test_a_requested_cancel_shows_who_when_and_why_until_it_stops(operator_client) -> None:
    op = make(state="running")
    cancel(operator_client, op)
    html = operator_client.get(
        reverse("operations:progress", args=["default", op.pk])
    ).content.decode()
    assert "Cancel requested by oncall at " in html and ": wrong queue." in html


def test_cancel_without_a_reason_is_a_clear_400_and_changes_nothing(operator_client) -> None:
    op = make(state="running")
    response = operator_client.post(
        reverse("operations:cancel", args=["default", op.pk]), {"reason": ""}
    )
    op.refresh_from_db()
    assert response.status_code == 400 and "Say why it must stop" in response.content.decode()
    assert not op.cancel_requested


def test_operator_cancel_of_a_native_redrive_cancels_its_move_task(
    operator_client, sqs_stub
) -> None:
    """moto lacks CancelMessageMoveTask: Stubber asserts the exact request."""
    op = make(state="running", kind="native_redrive", progress={"task_handle": "h-1"})
    sqs_stub.add_response(
        "cancel_message_move_task", {"ApproximateNumberOfMessagesMoved": 2}, {"TaskHandle": "h-1"}
    )
    response = operator_client.post(
        reverse("operations:cancel", args=["default", op.pk]),
        {"reason": "wrong queue"},
        follow=True,
    )
    assert "SQS is cancelling the move task" in response.content.decode()
    op.refresh_from_db()
    assert op.cancel_requested


def test_cancel_twice_is_harmless(operator_client) -> None:
    op = make(state="pending")
    cancel(operator_client, op)
    assert cancel(operator_client, op).status_code == 302
    op.refresh_from_db()
    assert op.state == "cancelled"


def test_get_on_cancel_is_405(operator_client) -> None:
    assert (
        operator_client.get(reverse("operations:cancel", args=["default", make().pk])).status_code
        == 405
    )


def test_viewer_cannot_cancel(viewer_client) -> None:
    op = make(state="running")
    assert cancel(viewer_client, op).status_code == 403
    op.refresh_from_db()
    assert not op.cancel_requested


def test_anonymous_cancel_is_sent_to_login(client) -> None:
    op = make(state="running")
    assert "/login/" in cancel(client, op)["Location"]
    op.refresh_from_db()
    assert not op.cancel_requested


def test_cancel_without_csrf_token_is_refused(operator) -> None:
    op = make(state="running")
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(operator)
    assert cancel(csrf_client, op).status_code == 403


def test_cancel_of_unknown_operation_is_404(operator_client) -> None:
    assert (
        operator_client.post(reverse("operations:cancel", args=["default", 404])).status_code == 404
    )


def test_admin_is_read_only(admin_user) -> None:
    request = RequestFactory().get("/")
    request.user = admin_user
    model_admin = admin.site._registry[Operation]
    assert model_admin.has_view_permission(request)
    assert not any(
        (
            model_admin.has_add_permission(request),
            model_admin.has_change_permission(request),
            model_admin.has_delete_permission(request),
        )
    )


# --- replay and re-publish on the operation page -------------------------------------------

ARCHIVE_ARN = "arn:aws:events:us-east-1:123456789012:archive/shop-archive"


def make_replay(**fields) -> Operation:
    parameters = {
        "archive_name": "shop-archive",
        "replay_name": "eventops-op1-20260101T000000",
        "start": "2026-01-01T12:00:00+00:00",
        "end": "2026-01-01T13:00:00+00:00",
    }
    defaults = {"kind": "replay", "target_label": "shop-archive", "parameters": parameters}
    return make(target=ARCHIVE_ARN, **{**defaults, **fields})


def test_replay_progress_shows_the_window_not_message_counters(viewer_client) -> None:
    from datetime import timedelta

    from django.utils import timezone

    progress = {
        "state": "RUNNING",
        "started": True,
        "last_replayed": "2026-01-01T12:15:00+00:00",
        "fraction": 0.25,
        "percent": 25,
    }
    op = make_replay(
        state="running", progress=progress, started_at=timezone.now() - timedelta(seconds=60)
    )
    response = viewer_client.get(reverse("operations:progress", args=["default", op.pk]))
    html = response.content.decode()
    assert 'id="replay-percent">25% of the window' in html and "2026-01-01 12:15:00" in html
    assert 'id="count-moved"' not in html
    assert response.context["replay"]["eta_seconds"] == pytest.approx(180, abs=3)


def test_replay_not_started_yet_says_so(viewer_client) -> None:
    html = viewer_client.get(
        reverse("operations:detail", args=["default", make_replay().pk])
    ).content
    assert b"not started yet" in html and b'value="0"' in html


def test_republish_progress_counts_sent_and_refused_events(viewer_client) -> None:
    op = make(
        target="arn:aws:events:us-east-1:123456789012:event-bus/shop-bus",
        kind="republish",
        target_label="shop-bus",
        state="failed",
        total=3,
        moved=2,
        failed=1,
        outcome={"failures": [{"original": "e-9", "code": "Throttling", "message": "<slow>"}]},
    )
    html = viewer_client.get(reverse("operations:detail", args=["default", op.pk])).content.decode()
    assert '<th scope="row">Sent</th>' in html and "Refused by PutEvents" in html
    assert "e-9: Throttling &lt;slow&gt;" in html


def test_operation_page_cancel_of_a_replay_calls_cancel_replay_at_once(
    operator_client, monkeypatch
) -> None:
    from operations.aws import events

    cancelled: list[str] = []
    monkeypatch.setattr(events, "cancel_replay", cancelled.append)
    op = make_replay(state="running", progress={"started": True, "state": "RUNNING"})
    assert cancel(operator_client, op).status_code == 302
    op.refresh_from_db()
    assert cancelled == [op.parameters["replay_name"]] and op.cancel_requested


def test_cancel_of_a_replay_whose_worker_stopped_still_calls_cancel_replay(
    operator_client, monkeypatch
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from operations.aws import events

    cancelled: list[str] = []
    monkeypatch.setattr(events, "cancel_replay", cancelled.append)
    op = make_replay(state="running", lease_expires_at=timezone.now() - timedelta(minutes=5))
    cancel(operator_client, op)
    assert cancelled == [op.parameters["replay_name"]]


def test_cancel_of_a_finished_replay_calls_nothing(operator_client, monkeypatch) -> None:
    from operations.aws import events

    monkeypatch.setattr(events, "cancel_replay", lambda name: pytest.fail("CancelReplay"))
    op = make_replay(state="succeeded")
    response = cancel(operator_client, op)
    op.refresh_from_db()
    assert response.status_code == 302 and not op.cancel_requested


def test_viewer_cannot_cancel_a_replay(viewer_client, monkeypatch) -> None:
    from operations.aws import events

    monkeypatch.setattr(events, "cancel_replay", lambda name: pytest.fail("CancelReplay"))
    op = make_replay(state="running", progress={"started": True})
    assert cancel(viewer_client, op).status_code == 403


def related(client, op: Operation) -> str:
    response = client.get(reverse("operations:detail", args=["default", op.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    return html[html.index('id="related-links"') :]


def test_dlq_operation_links_to_the_dlq_messages(viewer_client) -> None:
    links = related(viewer_client, make(kind="delete_messages"))
    assert reverse("operations:dlq_messages", args=["default", "orders-dlq"]) in links


def test_replay_links_to_its_archive_not_to_dlq_messages(viewer_client) -> None:
    links = related(viewer_client, make_replay())
    assert reverse("archive_detail", args=["default", "shop-archive"]) in links
    assert "/messages/" not in links


def test_republish_on_a_bus_with_a_slash_is_not_a_500(viewer_client) -> None:
    op = make(
        target="arn:aws:events:us-east-1:123456789012:event-bus/aws.partner/acme/orders",
        kind="republish",
        target_label="aws.partner/acme/orders",
        parameters={"archive_name": "partner-archive", "bus_name": "aws.partner/acme/orders"},
    )
    links = related(viewer_client, op)
    assert reverse("archive_detail", args=["default", "partner-archive"]) in links
    assert "/messages/" not in links


def test_progress_says_aws_errors_are_being_retried_and_lists_grouped_reasons(
    viewer_client,
) -> None:
    running = make(
        state="running",
        kind="replay",
        progress={"aws_error": "DescribeReplay: ThrottlingException: slow", "aws_error_retries": 3},
    )
    ended = make(
        target="b",
        kind="republish",
        state="partial",
        outcome={"reasons": {"refused by PutEvents: ThrottlingException": 3}},
    )
    html = viewer_client.get(
        reverse("operations:progress", args=["default", running.pk])
    ).content.decode()
    assert 'id="aws-retrying"' in html and "retrying (3 so far)" in html
    html = viewer_client.get(
        reverse("operations:progress", args=["default", ended.pk])
    ).content.decode()
    assert "3</span> refused by PutEvents: ThrottlingException" in html


def test_a_partial_redrive_shows_why_it_did_not_move_everything(viewer_client) -> None:
    outcome = {
        "reasons": {"FIFO group order": 7, "refused by SQS: InvalidParameterValue": 3},
        "held_groups": [{"group": "order-<9>", "held_back": 7, "behind": "refused by SQS: X"}],
        "held_group_count": 1,
    }
    op = make(state="partial", moved=5, failed=3, held_back=7, skipped=2, outcome=outcome)
    html = viewer_client.get(reverse("operations:detail", args=["default", op.pk])).content.decode()
    assert "Partly done" in html and 'id="count-held-back">7<' in html
    assert '<span class="num">7</span> FIFO group order' in html
    assert '<span class="num">3</span> refused by SQS: InvalidParameterValue' in html
    assert "order-&lt;9&gt;" in html  # group IDs are the sender's text: escaped
