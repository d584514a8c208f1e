"""Reads are audited: DLQ page views (once per person and queue every few minutes), single
messages, exports, unmasked or not; shown in the access log, everyone's to operators and
admins, their own to viewers."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.contrib import admin as django_admin
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from operations import read_audit
from operations.read_audit import ReadAudit
from tests.secret_bodies import BODY

from .conftest import Queues

pytestmark = pytest.mark.django_db
MESSAGES = reverse("operations:dlq_messages", args=["default", "orders-dlq"])
EXPORT = reverse("operations:dlq_export", args=["default", "orders-dlq"])
LOG = reverse("operations:access_log", args=["default"])


def test_a_page_view_is_recorded_once_however_often_it_renders(
    viewer_client, queues: Queues
) -> None:
    queues.put(BODY)
    queues.put(BODY)
    viewer_client.get(MESSAGES)
    viewer_client.get(MESSAGES)
    read = ReadAudit.objects.get()
    assert (read.username, read.kind, read.target, read.message_count, read.unmasked) == (
        "viewer",
        "viewed_bodies",
        "orders-dlq",
        2,
        False,
    )


def test_the_same_view_is_recorded_again_after_a_few_minutes(viewer_client, queues: Queues) -> None:
    queues.put(BODY)
    viewer_client.get(MESSAGES)
    later = timezone.now() + timedelta(seconds=read_audit.RECENT_SECONDS + 1)
    with time_machine.travel(later, tick=False):
        viewer_client.get(MESSAGES)
    assert ReadAudit.objects.count() == 2


def test_an_admins_view_is_recorded_as_unmasked(admin_client, queues: Queues) -> None:
    queues.put(BODY)
    admin_client.get(MESSAGES)
    assert ReadAudit.objects.get().unmasked is True


def test_every_export_is_recorded(viewer_client, queues: Queues) -> None:
    queues.put(BODY)
    viewer_client.get(EXPORT)
    viewer_client.get(EXPORT)
    exports = ReadAudit.objects.filter(kind="exported")
    assert [(r.message_count, r.unmasked) for r in exports] == [(1, False), (1, False)]


def test_an_empty_queue_records_nothing(viewer_client, queues: Queues) -> None:
    viewer_client.get(MESSAGES)
    assert not ReadAudit.objects.exists()


def test_opening_the_edit_page_records_an_unmasked_single_message(
    admin_client, queues: Queues
) -> None:
    message_id = queues.put(BODY)
    admin_client.get(reverse("operations:dlq_edit", args=["default", "orders-dlq", message_id]))
    read = ReadAudit.objects.get()
    assert (read.kind, read.unmasked, read.target) == (
        "viewed_message",
        True,
        f"orders-dlq {message_id}",
    )


# --- the access log page ---------------------------------------------------------------------


def _reads(*names: str) -> None:
    for name in names:
        read_audit.record(None, "exported", f"{name}-dlq", count=3, unmasked=False, username=name)


def test_a_viewer_sees_only_their_own_reads(viewer_client) -> None:
    _reads("viewer", "oncall")
    html = viewer_client.get(LOG).content.decode()
    assert "viewer-dlq" in html and "oncall-dlq" not in html and 'id="only-own"' in html


def test_an_operator_sees_everyones_reads_and_filters_by_person(operator_client) -> None:
    _reads("viewer", "oncall")
    assert "viewer-dlq" in operator_client.get(LOG).content.decode()
    html = operator_client.get(LOG, {"user": "oncall"}).content.decode()
    assert "oncall-dlq" in html and "viewer-dlq" not in html


def test_reads_of_another_environment_are_not_in_this_ones_log(admin_client) -> None:
    read_audit.record(
        None, "exported", "prod-dlq", count=1, unmasked=True, username="x", environment="prod"
    )
    assert "prod-dlq" not in admin_client.get(LOG).content.decode()


def test_bad_filters_are_ignored_not_a_500(admin_client) -> None:
    _reads("oncall")
    response = admin_client.get(LOG, {"kind": "<script>", "environment": "nope", "page": "x"})
    assert response.status_code == 200 and "oncall-dlq" in response.content.decode()


def test_anonymous_is_sent_to_login(client: Client) -> None:
    response = client.get(LOG)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_operations_list_links_to_the_access_log(viewer_client) -> None:
    html = viewer_client.get(reverse("operations:list", args=["default"])).content.decode()
    assert f'href="{LOG}"' in html


def test_reads_are_in_the_admin_read_only() -> None:
    model_admin = django_admin.site._registry[ReadAudit]
    assert not model_admin.has_change_permission(None) and not model_admin.has_delete_permission(
        None
    )
