"""Failure groups in the database: grouping by signature, distinct counts, regressions,
state changes (audited) and the signal for notifications."""

from __future__ import annotations

from typing import Any

import pytest

from operations.aws.sqs import SqsMessage
from operations.dlq import describe
from operations.triage import groups
from operations.triage.errors import ConsumerError, Source
from operations.triage.models import FailureGroup, FailureGroupChange
from operations.triage.signals import failure_group_changed

pytestmark = pytest.mark.django_db
URL = "https://sqs.us-east-1.amazonaws.com/123/billing-dlq"


def _seen(message_id: str, error_message: str, exception: str = "ValueError") -> groups.Seen:
    message = describe(SqsMessage(message_id, "rh", '{"detail": {"password": "hunter2"}}', {}, {}))
    error = ConsumerError(message_id, Source.LOGS, "billing", exception, error_message, "h.py:9")
    return groups.classify([message], {message_id: error})[0]


def _record(*seen: groups.Seen) -> dict[str, FailureGroup]:
    return groups.record("local", URL, "billing-dlq", list(seen))


@pytest.fixture
def changes() -> Any:
    received: list[tuple[int, str]] = []

    def receiver(sender: Any, group: FailureGroup, change: str, **_: Any) -> None:
        received.append((group.pk, change))

    failure_group_changed.connect(receiver)
    yield received
    failure_group_changed.disconnect(receiver)


def test_messages_that_failed_alike_share_a_group() -> None:
    _record(_seen("a", "amount -5 invalid"), _seen("b", "amount -7 invalid"))
    _record(_seen("c", "no such key 'x'", exception="KeyError"))
    counts = sorted(FailureGroup.objects.values_list("exception_name", "count"))
    assert counts == [("KeyError", 1), ("ValueError", 2)]


def test_a_message_seen_again_is_counted_once() -> None:
    _record(_seen("a", "amount -5 invalid"))
    _record(_seen("a", "amount -5 invalid"), _seen("b", "amount -1 invalid"))
    _record(_seen("b", "amount -1 invalid"))
    group = FailureGroup.objects.get()
    assert group.count == 2
    assert group.sample_message_ids == ["a", "b"]


def test_the_stored_sample_is_masked() -> None:
    _record(_seen("a", "amount -5 invalid"))
    group = FailureGroup.objects.get()
    assert "hunter2" not in group.sample_excerpt
    assert "password" in group.sample_excerpt


def test_the_stored_title_is_masked(settings: Any) -> None:
    settings.EVENTOPS_MASK_PATTERNS = [r"[\w.+-]+@[\w-]+\.[\w.]+"]
    _record(_seen("a", "login failed for ada@example.com with password=hunter2"))
    title = FailureGroup.objects.get().title
    assert "hunter2" not in title and "ada@example.com" not in title
    assert title.startswith("ValueError: login failed for ")


def test_opening_a_group_signals_once(changes: list[tuple[int, str]]) -> None:
    _record(_seen("a", "amount -5 invalid"))
    _record(_seen("b", "amount -6 invalid"))
    group = FailureGroup.objects.get()
    assert changes == [(group.pk, "opened")]


def test_a_resolved_group_reopens_on_a_new_message(changes: list[tuple[int, str]]) -> None:
    _record(_seen("a", "amount -5 invalid"))
    group = FailureGroup.objects.get()
    groups.change_state(group, "resolve", by="oncall", note="fixed in v2")
    _record(_seen("a", "amount -5 invalid"))  # the same message again: still resolved
    group.refresh_from_db()
    assert group.state == "resolved" and group.regressed_at is None
    _record(_seen("z", "amount -9 invalid"))
    group.refresh_from_db()
    assert group.state == "open" and group.regressed
    assert changes[-1] == (group.pk, "regressed")
    assert FailureGroupChange.objects.filter(group=group, change="regressed").count() == 1


def test_an_ignored_group_stays_ignored_when_new_messages_come() -> None:
    _record(_seen("a", "amount -5 invalid"))
    group = FailureGroup.objects.get()
    groups.change_state(group, "ignore", by="oncall")
    _record(_seen("b", "amount -2 invalid"))
    group.refresh_from_db()
    assert group.state == "ignored" and group.count == 2


def test_state_changes_are_audited_and_repeats_change_nothing() -> None:
    _record(_seen("a", "amount -5 invalid"))
    group = FailureGroup.objects.get()
    assert groups.change_state(group, "acknowledge", by="oncall", note="looking")
    assert not groups.change_state(group, "acknowledge", by="oncall", note="again")
    assert (group.state, group.state_by, group.note) == ("acknowledged", "oncall", "looking")
    audit = list(group.changes.values_list("change", "by", "from_state", "to_state"))
    assert audit == [("acknowledge", "oncall", "open", "acknowledged"), ("opened", "", "", "open")]


def test_worst_first_puts_regressions_then_open_then_the_rest() -> None:
    _record(_seen("a", "small"), _seen("b", "big", "KeyError"), _seen("c", "big", "KeyError"))
    _record(_seen("d", "other", "TypeError"))
    big = FailureGroup.objects.get(exception_name="KeyError")
    other = FailureGroup.objects.get(exception_name="TypeError")
    groups.change_state(big, "acknowledge", by="x")
    groups.change_state(other, "resolve", by="x")
    _record(_seen("e", "other", "TypeError"))  # regressed
    order = [g.exception_name for g in groups.worst_first("local")]
    assert order == ["TypeError", "ValueError", "KeyError"]


def test_a_body_too_deep_to_walk_is_stored_masked_as_text() -> None:
    body = '{"password": "hunter2", "deep": ' + "[" * 2000 + "]" * 2000 + "}"
    message = describe(SqsMessage("deep", "rh", body, {}, {}))
    stored = groups.excerpt(message)
    assert "hunter2" not in stored and '"password": "••••"' in stored
