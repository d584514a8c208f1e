"""``manage.py redrive``: same Operation path as the UI, --wait inline, refuses without --yes."""

from __future__ import annotations

import getpass
import json
from io import StringIO

import boto3
import pytest
from django.core.management import CommandError, call_command

from operations.aws import sqs
from operations.models import Operation
from tests.operations.redrive_world import Refuse

pytestmark = pytest.mark.django_db


@pytest.fixture
def dlq_url(aws: None) -> str:
    client = boto3.client("sqs", region_name="us-east-1")
    url = client.create_queue(QueueName="orders-dlq")["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3})
    client.create_queue(QueueName="orders", Attributes={"RedrivePolicy": policy})
    for i in range(12):
        kind = "OrderPaid" if i % 3 else "OrderShipped"
        body = {"detail-type": kind, "detail": {"correlationId": f"c-{i}"}}
        client.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    return str(url)


def redrive(*args: str) -> str:
    out = StringIO()
    call_command("redrive", *args, stdout=out)
    return out.getvalue()


def test_wait_runs_inline_and_prints_the_counts(dlq_url: str) -> None:
    output = redrive("orders-dlq", "--yes", "--wait", "--event-type", "OrderPaid")
    assert output.splitlines()[-1] == "moved=8 failed=0 skipped=4 held_back=0"


def test_it_records_the_same_operation_as_the_ui(dlq_url: str) -> None:
    redrive(dlq_url, "--yes", "--wait", "--max", "3", "--reason", "after the fix")
    op = Operation.objects.get()
    assert (op.kind, op.target, op.reason, op.moved) == ("redrive", dlq_url, "after the fix", 3)
    assert op.requested_by_name == f"cli:{getpass.getuser()}"


def test_without_yes_it_refuses(dlq_url: str) -> None:
    with pytest.raises(CommandError, match="--yes"):
        redrive("orders-dlq")
    assert not Operation.objects.exists()


def test_dry_run_previews_without_moving(dlq_url: str) -> None:
    output = redrive("orders-dlq", "--dry-run", "--event-type", "OrderShipped")
    assert output.startswith("4 of 12 examined messages match")
    assert not Operation.objects.exists()


def test_without_wait_it_queues_the_task(
    dlq_url: str, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:
    from operations import tasks

    queued: list[int] = []
    monkeypatch.setattr(tasks.redrive, "apply_async", lambda args, **kw: queued.append(args[0]))
    with django_capture_on_commit_callbacks(execute=True):
        output = redrive("orders-dlq", "--yes")
    assert queued == [Operation.objects.get().pk] and "queued" in output


def test_busy_dlq_is_refused_clearly(dlq_url: str) -> None:
    running = Operation.objects.create(
        kind="redrive", target=dlq_url, reason="r", requested_by_name="x"
    )
    with pytest.raises(CommandError, match=f"already active .*#{running.pk}") as refused:
        redrive("orders-dlq", "--yes", "--wait")
    assert refused.value.returncode == 2


def test_unknown_queue_is_a_clear_error(dlq_url: str) -> None:
    with pytest.raises(CommandError, match="GetQueueUrl") as refused:
        redrive("no-such-queue", "--yes", "--wait")
    assert refused.value.returncode == 2


def test_a_url_spelled_differently_is_stored_as_sqs_spells_it(dlq_url: str) -> None:
    """The one-active-operation constraint compares targets: one DLQ, one spelling."""
    path = dlq_url.split("://", 1)[1].split("/", 1)[1]
    other_spelling = f"https://queue.amazonaws.com/{path}"  # the legacy endpoint
    assert other_spelling != dlq_url
    redrive(other_spelling, "--yes", "--wait", "--max", "1")
    assert Operation.objects.get().target == dlq_url


def exit_code(*args: str) -> tuple[int, str]:
    """Run the command; (its exit code, stdout + the error it ended with)."""
    out = StringIO()
    try:
        call_command("redrive", *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


@pytest.fixture
def receives(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every queue the command (or its engine) receives from."""
    seen: list[str] = []
    real = sqs.receive_messages

    def spy(url: str, **kwargs: object) -> list[sqs.SqsMessage]:
        seen.append(url)
        return real(url, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sqs, "receive_messages", spy)
    return seen


@pytest.mark.parametrize("mode", ["--wait", "--dry-run", "--no-wait"])
def test_a_live_queue_is_refused_before_anything_is_received(
    dlq_url: str, receives: list[str], mode: str
) -> None:
    client = boto3.client("sqs", region_name="us-east-1")
    live = client.get_queue_url(QueueName="orders")["QueueUrl"]
    client.send_message(QueueUrl=live, MessageBody="{}")
    args = ["orders", "--yes"] + ([mode] if mode != "--no-wait" else [])
    code, output = exit_code(*args)
    assert code == 2 and "orders is not a dead-letter queue" in output
    assert receives == [] and not Operation.objects.exists()


@pytest.fixture
def shared_dlq(dlq_url: str) -> str:
    """orders-dlq, which a second queue (billing) uses as its DLQ too."""
    client = boto3.client("sqs", region_name="us-east-1")
    arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3})
    client.create_queue(QueueName="billing", Attributes={"RedrivePolicy": policy})
    return dlq_url


@pytest.mark.parametrize("mode", ["--wait", "--dry-run", "--no-wait"])
def test_a_dlq_with_several_sources_needs_a_destination(
    shared_dlq: str, receives: list[str], mode: str
) -> None:
    args = ["orders-dlq", "--yes"] + ([mode] if mode != "--no-wait" else [])
    code, output = exit_code(*args)
    assert code == 2 and "2 source queues (billing, orders)" in output
    assert receives == [] and not Operation.objects.exists()


@pytest.mark.parametrize("spelling", ["billing", "arn:aws:sqs:us-east-1:123456789012:billing"])
def test_the_destination_is_a_source_given_by_name_or_arn(shared_dlq: str, spelling: str) -> None:
    code, _ = exit_code("orders-dlq", "--yes", "--destination", spelling)
    op = Operation.objects.get()
    assert code == 0
    assert op.parameters["destination_arn"] == "arn:aws:sqs:us-east-1:123456789012:billing"


def test_a_destination_that_is_not_a_source_is_refused(shared_dlq: str) -> None:
    client = boto3.client("sqs", region_name="us-east-1")
    client.create_queue(QueueName="elsewhere")
    code, output = exit_code("orders-dlq", "--yes", "--wait", "--destination", "elsewhere")
    assert code == 2 and "elsewhere is not a source queue of this DLQ" in output
    assert not Operation.objects.exists()


def test_max_bounds_what_the_command_moves(dlq_url: str) -> None:
    redrive("orders-dlq", "--yes", "--wait", "--max", "5")
    op = Operation.objects.get()
    assert (op.state, op.moved, op.total) == ("succeeded", 5, 5)


def test_max_is_passed_to_the_queued_operation(dlq_url: str) -> None:
    redrive("orders-dlq", "--yes", "--max", "5")
    assert Operation.objects.get().parameters["max_messages"] == 5


def test_a_pass_whose_every_send_was_refused_fails_with_exit_code_1(
    dlq_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqs, "send_message_batch", Refuse(lambda entry: True))
    code, output = exit_code("orders-dlq", "--yes", "--wait")
    assert code == 1 and "ended failed" in output
    assert "12 not moved: refused by SQS: InvalidParameterValue" in output
    assert "moved=0 failed=12 skipped=0 held_back=0" in output


def test_a_partial_redrive_exits_3(dlq_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    refuse = Refuse(
        lambda entry: json.loads(entry["MessageBody"])["detail"]["correlationId"] == "c-4"
    )
    monkeypatch.setattr(sqs, "send_message_batch", refuse)
    code, output = exit_code("orders-dlq", "--yes", "--wait")
    assert code == 3 and "moved=11 failed=1" in output


def test_a_cancelled_redrive_exits_4(dlq_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = sqs.receive_messages

    def cancel_then_receive(url: str, **kwargs: object) -> list[sqs.SqsMessage]:
        Operation.objects.update(cancel_requested=True)
        return real(url, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sqs, "receive_messages", cancel_then_receive)
    # One loop: the hook writes the row from the thread that receives.
    code, output = exit_code("orders-dlq", "--yes", "--wait", "--concurrency", "1")
    assert code == 4 and "ended cancelled" in output


def test_env_and_as_choose_where_and_as_whom(dlq_url: str, tmp_path, settings) -> None:
    path = tmp_path / "environments.toml"
    # Both environments reach the same mocked account: the row must still say which one.
    path.write_text(
        '[environments.prod]\nregion = "us-east-1"\n[environments.staging]\nregion = "us-east-1"\n'
    )
    settings.EVENTOPS_ENVIRONMENTS_FILE = str(path)
    redrive("orders-dlq", "--yes", "--wait", "--max", "1", "--env", "staging", "--as", "alice")
    op = Operation.objects.get()
    assert (op.environment, op.requested_by_name) == ("staging", "cli:alice")


def test_read_only_mode_refuses_the_command(dlq_url: str, settings) -> None:
    settings.EVENTOPS_READ_ONLY = True
    with pytest.raises(CommandError, match="read-only") as refused:
        redrive("orders-dlq", "--yes", "--wait")
    assert refused.value.returncode == 2 and not Operation.objects.exists()


def test_a_dashboard_viewer_may_not_redrive_from_the_shell(dlq_url: str, viewer) -> None:
    with pytest.raises(CommandError, match="viewer may not redrive"):
        redrive("orders-dlq", "--yes", "--wait", "--as", "viewer")
    assert not Operation.objects.exists()
