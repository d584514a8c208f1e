"""The failure groups page: worst first, actions through the usual paths, audited state
changes, and no actions for viewers."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse

from operations.aws.sqs import SqsMessage
from operations.dlq import describe
from operations.models import Operation
from operations.triage import groups
from operations.triage.errors import ConsumerError, Source
from operations.triage.models import FailureGroup

from .conftest import Queues

pytestmark = pytest.mark.django_db


def _group(queues: Queues, ids: list[str], message: str = "amount -5 invalid") -> FailureGroup:
    seen = []
    for message_id in ids:
        m = describe(SqsMessage(message_id, "rh", '{"detail": {"correlationId": "c-1"}}', {}, {}))
        error = ConsumerError(message_id, Source.LOGS, "billing", "ValueError", message, "h.py:3")
        seen += groups.classify([m], {message_id: error})
    found = groups.record("default", queues.dlq_url, "orders-dlq", seen)
    return next(iter(found.values()))


def _list(client):
    return client.get(reverse("failures", args=["default"]))


def _state(client, group: FailureGroup, **data: str):
    return client.post(reverse("failure_state", args=["default", group.pk]), data)


def test_groups_are_listed_worst_first_with_a_sample(viewer_client, queues: Queues) -> None:
    small = _group(queues, ["a"])
    big = _group(queues, ["b", "c"], message="no such key 'k'")
    response = _list(viewer_client)
    assert [i["g"].pk for i in response.context["items"]] == [big.pk, small.pk]
    html = response.content.decode()
    assert f'id="group-{big.pk}"' in html and "c-1" in html


def test_the_navigation_links_the_failures_page(viewer_client, queues: Queues) -> None:
    html = _list(viewer_client).content.decode()
    assert f'href="{reverse("failures", args=["default"])}" aria-current="page"' in html


def test_viewer_sees_no_action_buttons(viewer_client, queues: Queues) -> None:
    group = _group(queues, ["a"])
    html = _list(viewer_client).content.decode()
    assert f'id="redrive-group-{group.pk}"' not in html
    assert f'id="state-{group.pk}"' not in html and f'id="delete-group-{group.pk}"' not in html


def test_operator_acknowledges_with_a_note_audited(operator_client, queues: Queues) -> None:
    group = _group(queues, ["a"])
    response = _state(operator_client, group, action="acknowledge", note="on it")
    group.refresh_from_db()
    assert response.status_code == 302
    assert (group.state, group.state_by, group.note) == ("acknowledged", "oncall", "on it")
    assert group.changes.filter(change="acknowledge", by="oncall").count() == 1


def test_repeating_a_state_change_is_harmless(operator_client, queues: Queues) -> None:
    group = _group(queues, ["a"])
    _state(operator_client, group, action="resolve")
    response = _state(operator_client, group, action="resolve")
    assert response.status_code == 302
    assert group.changes.filter(change="resolve").count() == 1


def test_viewer_cannot_change_a_state(viewer_client, queues: Queues) -> None:
    group = _group(queues, ["a"])
    assert _state(viewer_client, group, action="resolve").status_code == 403
    group.refresh_from_db()
    assert group.state == "open"


def test_a_bad_action_is_a_400_that_changes_nothing(operator_client, queues: Queues) -> None:
    group = _group(queues, ["a"])
    response = _state(operator_client, group, action="explode")
    group.refresh_from_db()
    assert response.status_code == 400 and group.state == "open"
    assert 'id="bad-state"' in response.content.decode()


def test_state_change_is_post_only(operator_client, queues: Queues) -> None:
    group = _group(queues, ["a"])
    url = reverse("failure_state", args=["default", group.pk])
    assert operator_client.get(url).status_code == 405


def test_anonymous_is_sent_to_login(client, queues: Queues) -> None:
    response = _list(client)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_group_of_another_environment_is_404(operator_client, queues: Queues) -> None:
    group = _group(queues, ["a"])
    FailureGroup.objects.filter(pk=group.pk).update(environment="elsewhere")
    assert _state(operator_client, group, action="resolve").status_code == 404


def test_redrive_group_goes_to_the_preview_with_exactly_its_ids(
    operator_client, queues: Queues
) -> None:
    ids = [queues.put_event(i) for i in range(3)]
    queues.put_event(99)  # not in the group
    group = _group(queues, ids)
    response = operator_client.get(reverse("failure_redrive", args=["default", group.pk]))
    target = urlparse(response["Location"])
    assert target.path == reverse("operations:redrive", args=["default", "orders-dlq"])
    assert set(parse_qs(target.query)["message_ids"][0].split()) == set(ids)
    preview = operator_client.get(response["Location"])
    matching = {m.message_id for m in preview.context["preview"].matching}
    assert matching == set(ids) and preview.context["start_form"] is not None


def test_delete_group_needs_the_delete_permission(operator_client, queues: Queues) -> None:
    group = _group(queues, ["a"])
    response = operator_client.post(reverse("failure_delete", args=["default", group.pk]))
    assert response.status_code == 403 and not Operation.objects.exists()


def test_delete_group_is_the_usual_confirmation_with_its_ids(admin_client, queues: Queues) -> None:
    group = _group(queues, ["m-1", "m-2"])
    response = admin_client.post(reverse("failure_delete", args=["default", group.pk]))
    html = response.content.decode()
    assert response.status_code == 200 and 'id="delete-confirm"' in html
    assert 'value="m-1"' in html and 'value="m-2"' in html
    assert not Operation.objects.exists()  # nothing until confirmed with a reason
