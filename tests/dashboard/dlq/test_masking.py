"""Masking on the DLQ pages: what a viewer's HTML and JSON never carry, what an admin sees,
searches that cannot find a masked value, and redrives that move the original bytes."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from operations.models import Operation
from tests.secret_bodies import API_KEY, BODY, CARD, PASSWORD, leaked

from .conftest import Queues

pytestmark = pytest.mark.django_db

MESSAGES = reverse("operations:dlq_messages", args=["default", "orders-dlq"])
EXPORT = reverse("operations:dlq_export", args=["default", "orders-dlq"])
PREVIEW = reverse("operations:redrive", args=["default", "orders-dlq"])
START = reverse("operations:redrive_start", args=["default", "orders-dlq"])


def put_secret(queues: Queues) -> str:
    return queues.put(
        BODY, ErrorMessage=f"charge declined for card {CARD}", api_key=API_KEY, tenant="acme"
    )


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_viewer_page_has_no_secret_anywhere(viewer_client, queues: Queues) -> None:
    put_secret(queues)
    response = viewer_client.get(MESSAGES)
    html = response.content.decode()
    assert response.status_code == 200 and "corr-secret" in html
    assert leaked(html) == []


def test_viewer_page_masks_attributes_error_and_groups_and_says_who_can_unmask(
    viewer_client, queues: Queues
) -> None:
    put_secret(queues)
    response = viewer_client.get(MESSAGES)
    ((_, _, group),) = response.context["by_group"]  # by signature: no number, no secret
    assert "charge declined for card" in group.title and leaked(group.title) == []
    html = response.content.decode()
    assert "acme" in html and "••••1111" in html  # an ordinary attribute stays readable
    assert 'id="masked-note"' in html and "can see unmasked bodies here" in html


def test_why_did_this_fail_form_carries_the_masked_body_for_a_viewer(
    viewer_client, queues: Queues
) -> None:
    put_secret(queues)
    html = viewer_client.get(MESSAGES).content.decode()
    hidden = html.split('name="body" value="', 1)[1].split('"', 1)[0]
    assert "••••" in hidden and leaked(hidden) == []


def test_admin_sees_the_original_with_the_unmasked_badge(admin_client, queues: Queues) -> None:
    put_secret(queues)
    html = admin_client.get(MESSAGES).content.decode()
    assert CARD in html and PASSWORD in html and API_KEY in html
    assert 'id="unmasked-badge"' in html and 'id="masked-note"' not in html


def test_masking_off_shows_everyone_the_original(viewer_client, queues: Queues, settings) -> None:
    settings.EVENTOPS_MASKING = False
    put_secret(queues)
    html = viewer_client.get(MESSAGES).content.decode()
    assert CARD in html and 'id="masked-note"' not in html


def test_viewer_export_from_the_page_is_masked(viewer_client, queues: Queues) -> None:
    put_secret(queues)
    token = viewer_client.get(MESSAGES).context["export_token"]
    response = viewer_client.get(EXPORT, {"peek": token})
    text = response.content.decode()
    assert json.loads(text)["masked"] is True and len(json.loads(text)["messages"]) == 1
    assert leaked(text) == []


def test_viewer_fresh_export_is_masked(viewer_client, queues: Queues) -> None:
    put_secret(queues)
    text = viewer_client.get(EXPORT).content.decode()
    assert json.loads(text)["source"] == "shared peek" and leaked(text) == []


def test_admin_export_keeps_the_original_bytes(admin_client, queues: Queues) -> None:
    put_secret(queues)
    token = admin_client.get(MESSAGES).context["export_token"]
    exported = json.loads(admin_client.get(EXPORT, {"peek": token}).content)
    assert exported["masked"] is False and exported["messages"][0]["Body"] == BODY


def test_an_admins_export_token_does_not_give_a_viewer_the_original(
    admin, viewer, queues: Queues
) -> None:
    put_secret(queues)
    token = logged_in(admin).get(MESSAGES).context["export_token"]
    text = logged_in(viewer).get(EXPORT, {"peek": token}).content.decode()
    assert json.loads(text)["masked"] is True and leaked(text) == []


def test_user_without_view_bodies_gets_403(client, queues: Queues) -> None:
    client.force_login(User.objects.create_user("nobody"))
    put_secret(queues)
    assert client.get(MESSAGES).status_code == 403
    assert client.get(EXPORT).status_code == 403


# --- redrive preview and filters ---------------------------------------------------------


def test_viewer_preview_sample_is_masked(viewer_client, queues: Queues) -> None:
    put_secret(queues)
    response = viewer_client.get(PREVIEW, {"event_type": "OrderPaid"})
    assert len(response.context["preview"].matching) == 1
    assert leaked(response.content.decode()) == []


@pytest.mark.parametrize("search", [CARD, PASSWORD, "hunter", f'"password": "{PASSWORD}"'])
def test_viewer_searching_a_masked_value_finds_nothing(
    viewer_client, queues: Queues, search: str
) -> None:
    put_secret(queues)
    queues.put_event(1)
    response = viewer_client.get(PREVIEW, {"contains": search})
    assert response.context["preview"].matching == []


@pytest.mark.parametrize("search", [CARD, PASSWORD])
def test_admin_searching_the_same_value_finds_the_message(
    admin_client, queues: Queues, search: str
) -> None:
    put_secret(queues)
    queues.put_event(1)
    response = admin_client.get(PREVIEW, {"contains": search})
    assert len(response.context["preview"].matching) == 1


def test_viewer_attribute_filter_cannot_probe_a_masked_attribute(
    viewer_client, queues: Queues
) -> None:
    put_secret(queues)
    response = viewer_client.get(PREVIEW, {"attribute_name": "api_key", "attribute_value": API_KEY})
    assert response.context["preview"].matching == []


def test_viewer_may_still_search_what_they_see(viewer_client, queues: Queues) -> None:
    put_secret(queues)
    response = viewer_client.get(PREVIEW, {"contains": "••••1111"})
    assert len(response.context["preview"].matching) == 1


def test_operator_redrive_filtered_by_a_card_number_moves_nothing(
    operator_client, queues: Queues, worker
) -> None:
    put_secret(queues)
    data = {"reason": "probe", "destination_arn": queues.source_arn, "contains": CARD}
    with worker():
        operator_client.post(START, data)
    op = Operation.objects.get()
    assert op.parameters["filters"]["masked"] is True
    assert (op.moved, queues.depth(queues.source_url)) == (0, 0)


def _receive_all(queues: Queues, url: str) -> list[dict]:
    got = queues.client.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    return got.get("Messages", [])


def test_admin_redrive_filtered_by_a_card_number_moves_the_original_bytes(
    admin_client, queues: Queues, worker
) -> None:
    put_secret(queues)
    queues.put_event(1)
    data = {"reason": "fixed", "destination_arn": queues.source_arn, "contains": CARD}
    with worker():
        admin_client.post(START, data)
    moved = _receive_all(queues, queues.source_url)
    assert [m["Body"] for m in moved] == [BODY]
    assert moved[0]["MessageAttributes"]["api_key"]["StringValue"] == API_KEY


def test_operator_unfiltered_redrive_moves_the_original_bytes(
    operator_client, queues: Queues, worker
) -> None:
    """Masking is for showing: a masked person's redrive still moves what was received."""
    put_secret(queues)
    with worker():
        operator_client.post(START, {"reason": "fixed", "destination_arn": queues.source_arn})
    moved = _receive_all(queues, queues.source_url)
    assert [m["Body"] for m in moved] == [BODY]
    assert moved[0]["MessageAttributes"]["ErrorMessage"]["StringValue"].endswith(CARD)


# --- editing -------------------------------------------------------------------------------


def test_editing_needs_view_unmasked_as_well(operator, queues: Queues) -> None:
    """An operator (masked) may not open the edit page: it shows the whole body."""
    operator.user_permissions.add(*Permission.objects.filter(codename="edit_resend"))
    message_id = put_secret(queues)
    client = logged_in(operator)
    edit = reverse("operations:dlq_edit", args=["default", "orders-dlq", message_id])
    response = client.get(edit)
    assert response.status_code == 403 and leaked(response.content.decode()) == []
    assert "Edit and re-send" not in client.get(MESSAGES).content.decode()


def test_admin_edit_page_shows_the_original(admin_client, queues: Queues) -> None:
    message_id = put_secret(queues)
    edit = reverse("operations:dlq_edit", args=["default", "orders-dlq", message_id])
    assert CARD in admin_client.get(edit).content.decode()
