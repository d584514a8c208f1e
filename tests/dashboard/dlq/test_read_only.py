"""EVENTOPS_READ_ONLY=true: every mutating URL refuses a POST (403, saying why) before any
AWS call and changes nothing, even for an admin; pages offer no mutation; a banner says so."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from operations.models import Operation
from operations.triage.models import FailureGroup
from tests import aws_calls as counting
from tests.operations import archive_world
from tests.operations.archive_world import ARCHIVE

world = archive_world.world
aws_calls = counting.aws_calls
pytestmark = pytest.mark.django_db
ENV = "default"

# Every URL that changes something, with a POST that would do it were the mode off.
MUTATING = {
    "operations:cancel": lambda ids: (
        reverse("operations:cancel", args=[ENV, ids["redrive_op"]]),
        {"reason": "stop"},
    ),
    "replay_cancel": lambda ids: (
        reverse("replay_cancel", args=[ENV, ids["replay_op"]]),
        {"reason": "stop"},
    ),
    "operations:dlq_delete": lambda ids: (
        reverse("operations:dlq_delete", args=[ENV, "orders-dlq"]),
        {"message_ids": ids["message"], "confirm": "1", "reason": "junk"},
    ),
    "operations:dlq_edit": lambda ids: (
        reverse("operations:dlq_edit", args=[ENV, "orders-dlq", ids["message"]]),
        {"body": "{}", "confirm": "1", "reason": "fix"},
    ),
    "operations:redrive_start": lambda ids: (
        reverse("operations:redrive_start", args=[ENV, "orders-dlq"]),
        {"reason": "fixed", "confirm": "1"},
    ),
    "replay_start": lambda ids: (
        reverse("replay_start", args=[ENV, ARCHIVE]),
        {
            "start": "2026-01-01T00:00",
            "end": "2026-01-01T01:00",
            "rules": "billing-rule",
            "reason": "replay",
        },
    ),
    "operations:rate": lambda ids: (
        reverse("operations:rate", args=[ENV, ids["redrive_op"]]),
        {"rate": "1"},
    ),
    "failure_state": lambda ids: (
        reverse("failure_state", args=[ENV, ids["group"]]),
        {"state": "resolved", "note": "fixed"},
    ),
    "failure_delete": lambda ids: (
        reverse("failure_delete", args=[ENV, ids["group"]]),
        {},
    ),
    "republish": lambda ids: (
        reverse("republish", args=[ENV, ARCHIVE]),
        {"event_id": "e-1", "t": "1767225600000", "reason": "again"},
    ),
}
# Every other URL: pages and fragments that read (a POST there changes nothing in AWS;
# schema_check validates a body the person pastes).
READING = {
    "healthz", "login", "logout", "admin_login", "home",
    "oidc_authentication_init", "oidc_authentication_callback",
    "overview", "queues", "queue_detail", "bus_detail",
    "operations:list", "operations:access_log", "operations:detail", "operations:progress",
    "operations:dlq_messages", "operations:dlq_export", "operations:redrive",
    "archives", "replay_detail", "archive_detail", "archive_events", "archive_event",
    "replay_new", "schemas", "schema_check", "schema_detail",
    "correlation", "correlation_panel", "alarms", "alarm_detail", "operations:live",
    # Not AWS mutations: personal API tokens, the SNS alarm hook (it records history), metrics.
    "api_tokens", "api_token_revoke", "sns_hook", "metrics",
    # Triage: the groups page, a group's redrive preview (a redirect), one body, the state strip;
    # a scan only receives and releases (it changes no message and moves nothing).
    "failures", "failure_redrive", "operations:dlq_message_body", "operations:dlq_scan",
    "state_strip",
}  # fmt: skip
# The REST API refuses mutations in read-only mode on its own (tests/dashboard/api/).
API_NAMESPACE = "api-v1"


def _names(patterns: list, namespace: str = "") -> set[str]:
    names: set[str] = set()
    for entry in patterns:
        if isinstance(entry, URLResolver):
            if str(entry.pattern).startswith("admin/") and entry.namespace == "admin":
                continue
            ns = entry.namespace or namespace
            if ns == API_NAMESPACE:
                continue
            names |= _names(entry.url_patterns, ns)
        elif isinstance(entry, URLPattern) and entry.name:
            names.add(f"{namespace}:{entry.name}" if namespace else entry.name)
    return names


def test_every_url_is_either_mutating_or_reading():
    """A URL added later must be classified here, so a new mutation cannot be missed."""
    assert _names(get_resolver().url_patterns) == set(MUTATING) | READING


@pytest.fixture
def read_only(settings):
    settings.EVENTOPS_READ_ONLY = True


@pytest.fixture
def ids(queues, world) -> dict[str, str]:
    message = queues.put_event(1)
    redrive_op = Operation.objects.create(
        kind="redrive", target=queues.dlq_url, target_label="orders-dlq", reason="r"
    )
    replay_op = Operation.objects.create(
        kind="replay", target=world.archive_arn, target_label=ARCHIVE, reason="r"
    )
    group = FailureGroup.objects.create(
        environment=ENV, dlq_url=queues.dlq_url, dlq_name="orders-dlq", key="a" * 32, title="t"
    )
    return {
        "message": message,
        "redrive_op": redrive_op.pk,
        "replay_op": replay_op.pk,
        "group": group.pk,
    }


def _state(queues) -> list[tuple]:
    ops = Operation.objects.order_by("pk").values_list("pk", "state", "cancel_requested")
    return [
        *ops,
        *FailureGroup.objects.values_list("pk", "state"),
        ("dlq", queues.depth(queues.dlq_url)),
        ("source", queues.depth(queues.source_url)),
    ]


@pytest.mark.parametrize("name", sorted(MUTATING))
def test_a_mutation_is_refused_in_read_only_mode(name, ada, ids, queues, read_only, aws_calls):
    url, data = MUTATING[name](ids)
    before = _state(queues)
    aws_calls.clear()
    response = ada.post(url, data)
    calls = dict(aws_calls)
    assert response.status_code == 403
    assert "read-only mode" in response.content.decode()
    assert calls == {}
    assert _state(queues) == before


@pytest.mark.parametrize("name", sorted(MUTATING))
def test_the_same_post_is_not_refused_for_read_only_reasons_when_the_mode_is_off(
    name, ada, ids, queues
):
    """The refusal above comes from the mode, not from a bad request."""
    url, data = MUTATING[name](ids)
    response = ada.post(url, data)
    assert response.status_code != 403 and "read-only mode" not in response.content.decode()


def _page(client: Client, name: str, *args) -> str:
    response = client.get(reverse(name, args=[ENV, *args]))
    assert response.status_code == 200, name
    return response.content.decode()


def test_the_dlq_page_offers_no_mutation(ada, ids, read_only):
    html = _page(ada, "operations:dlq_messages", "orders-dlq")
    assert 'id="read-only-banner"' in html
    for marker in ('id="delete-form"', 'id="redrive-link"', "Edit and re-send"):
        assert marker not in html


def test_the_dlq_page_offers_them_when_the_mode_is_off(ada, ids):
    html = _page(ada, "operations:dlq_messages", "orders-dlq")
    assert 'id="read-only-banner"' not in html
    for marker in ('id="delete-form"', 'id="redrive-link"', "Edit and re-send"):
        assert marker in html


def test_the_redrive_preview_says_nobody_may_start_it(ada, ids, read_only):
    response = ada.get(reverse("operations:redrive", args=[ENV, "orders-dlq"]), {"preview": "1"})
    html = response.content.decode()
    assert 'id="who-can-redrive"' in html and 'id="redrive-start"' not in html
    assert "Nobody: the dashboard is in read-only mode" in html


@pytest.mark.parametrize(
    ("page", "key", "marker"),
    [
        ("operations:detail", "redrive_op", 'id="cancel-form"'),
        ("replay_detail", "replay_op", 'id="replay-cancel-form"'),
    ],
)
def test_operation_pages_offer_no_cancel(ada, ids, read_only, settings, page, key, marker):
    assert marker not in _page(ada, page, ids[key])
    settings.EVENTOPS_READ_ONLY = False
    assert marker in _page(ada, page, ids[key])


def test_the_archive_page_offers_no_replay(ada, ids, read_only, settings):
    assert "Replay a window" not in _page(ada, "archive_detail", ARCHIVE)
    settings.EVENTOPS_READ_ONLY = False
    assert "Replay a window" in _page(ada, "archive_detail", ARCHIVE)
