"""The Operation row's compare-and-set state changes (ARCHITECTURE.md decision 4)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from operations.models import Operation, TouchedCorrelation

# Database-specific (partial unique index, compare-and-set updates): CI runs it again on PostgreSQL.
pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def _operation(target: str = "https://sqs/q-dlq") -> Operation:
    return Operation.objects.create(
        kind=Operation.Kind.REDRIVE, target=target, reason="test", requested_by_name="t"
    )


def test_only_one_worker_claims_a_pending_operation():
    op = _operation()
    assert op.claim() is not None
    assert Operation.objects.get(pk=op.pk).claim() is None


def test_a_running_operation_whose_lease_expired_is_claimed_again():
    op = _operation()
    op.claim()
    Operation.objects.filter(pk=op.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    again = Operation.objects.get(pk=op.pk)
    assert again.claim() is not None
    assert again.attempts == 2


def test_report_saves_progress_for_the_lease_holder():
    op = _operation()
    token = op.claim()
    assert op.report(token, moved=10, skipped=2) is True
    assert Operation.objects.get(pk=op.pk).moved == 10


def test_report_after_cancel_saves_progress_and_says_so():
    op = _operation()
    token = op.claim()
    Operation.objects.get(pk=op.pk).request_cancel()
    assert op.report(token, moved=5) is True
    op.refresh_from_db()
    assert op.cancel_requested is True and op.moved == 5


def test_report_with_a_lost_lease_changes_nothing():
    op = _operation()
    stale = op.claim()
    Operation.objects.filter(pk=op.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    Operation.objects.get(pk=op.pk).claim()
    assert op.report(stale, moved=99) is False
    assert Operation.objects.get(pk=op.pk).moved == 0


def test_finish_needs_the_lease():
    op = _operation()
    op.claim()
    assert op.finish(None, Operation.State.SUCCEEDED) is True
    assert Operation.objects.get(pk=op.pk).finish(None, Operation.State.FAILED) is False


def test_cancelling_a_pending_operation_ends_it_at_once():
    op = _operation()
    assert op.request_cancel() is True
    assert Operation.objects.get(pk=op.pk).state == Operation.State.CANCELLED


def test_cancelling_a_live_running_operation_only_sets_the_flag():
    op = _operation()
    token = op.claim()
    assert op.request_cancel() is True
    op.refresh_from_db()
    assert (op.state, op.cancel_requested) == (Operation.State.RUNNING, True)
    assert op.report(token, moved=1) is True and op.cancel_requested


def test_cancelling_an_abandoned_operation_ends_it_and_frees_the_target():
    """Its worker died (or a web request running an inline action crashed): the lease
    lapsed, nothing will read the flag, and the target would stay blocked."""
    op = _operation("https://sqs/stuck-dlq")
    token = op.claim()
    Operation.objects.filter(pk=op.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert Operation.objects.get(pk=op.pk).request_cancel() is True
    op.refresh_from_db()
    assert op.state == Operation.State.CANCELLED and "stopped reporting" in op.error
    # The dead worker's late report cannot bring it back; a new operation may start.
    assert op.report(token, moved=3) is False
    assert Operation.objects.get(pk=op.pk).state == Operation.State.CANCELLED
    _operation("https://sqs/stuck-dlq")


def test_the_database_allows_one_active_operation_per_target():
    _operation("https://sqs/same-dlq")
    with pytest.raises(IntegrityError), transaction.atomic():
        _operation("https://sqs/same-dlq")
    assert Operation.objects.filter(target="https://sqs/same-dlq").count() == 1


def test_a_finished_operation_frees_its_target():
    first = _operation("https://sqs/again-dlq")
    first.claim()
    first.finish(None, Operation.State.SUCCEEDED)
    assert _operation("https://sqs/again-dlq").state == Operation.State.PENDING


def test_touched_correlations_are_recorded_once_each_across_insert_chunks():
    """More IDs than one INSERT holds, some already recorded: each ID is one row."""
    op = _operation()
    TouchedCorrelation.record(op.pk, {f"c-{i}" for i in range(0, 700, 2)})
    TouchedCorrelation.record(op.pk, {f"c-{i}" for i in range(700)})
    rows = TouchedCorrelation.objects.filter(operation=op)
    assert TouchedCorrelation.RECORD_CHUNK < 700
    assert sorted(rows.values_list("correlation_id", flat=True)) == sorted(
        f"c-{i}" for i in range(700)
    )


def _env(name: str, role_arn: str = ""):
    from operations.environments import Environment

    return Environment(name=name, region="eu-west-1", label=name, role_arn=role_arn)


def test_an_operation_records_its_environment_role_and_session_name(db) -> None:
    from operations import environments

    role = "arn:aws:iam::111111111111:role/eventops-dashboard"
    with environments.activate(_env("prod", role), "alice"):
        op = Operation.objects.create(kind="redrive", target="q", reason="r")
    assert (op.environment, op.role_arn, op.session_name) == ("prod", role, "eventops-alice")


def test_one_active_operation_per_target_is_per_environment(db) -> None:
    from django.db import IntegrityError, transaction

    from operations import environments

    for name in ("prod", "staging"):
        with environments.activate(_env(name)):
            Operation.objects.create(kind="redrive", target="same-url", reason="r")
    with environments.activate(_env("prod")), pytest.raises(IntegrityError), transaction.atomic():
        Operation.objects.create(kind="redrive", target="same-url", reason="again")
    assert Operation.objects.filter(target="same-url").count() == 2
