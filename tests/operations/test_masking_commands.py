"""Command output is masked like the pages: ``trace`` and ``redrive`` mask (and filter on
masked bodies) unless ``--unmasked`` is given by someone who may; such reads are audited."""

from __future__ import annotations

import json
from io import StringIO

import boto3
import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command

from operations import correlation, dlq
from operations.aws import sqs
from operations.models import Operation
from operations.read_audit import ReadAudit
from tests.operations.redrive_world import make_queues
from tests.secret_bodies import BODY, CARD, CORRELATION_ID, PASSWORD, leaked

pytestmark = pytest.mark.django_db


def person(name: str, group: str) -> User:
    user = User.objects.create_user(username=name)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def secret_dlq_panel(monkeypatch):
    """The DLQ panel finds a message whose body and error carry secrets."""
    error = {"DataType": "String", "StringValue": f"declined: card {CARD}, password={PASSWORD}"}
    message = dlq.describe(sqs.SqsMessage("m-1", "r", BODY, {}, {"ErrorMessage": error}))
    found = correlation.FoundMessage("billing-dlq", "url", message)

    def dlq_panel(lookup, since):
        return correlation.Panel("dlq", "DLQ", rows=[found], entries=[correlation.dlq_entry(found)])

    panels = {
        k: (k, lambda lookup, since, k=k: correlation.Panel(k, k)) for k in correlation.PANELS
    }
    panels["dlq"] = ("DLQ", dlq_panel)
    monkeypatch.setattr(correlation, "PANELS", panels)


def trace(*args: str) -> str:
    out = StringIO()
    call_command("trace", CORRELATION_ID, *args, stdout=out)
    return out.getvalue()


def test_trace_is_masked_by_default(secret_dlq_panel) -> None:
    output = trace()
    assert "billing-dlq" in output and "••••1111" in output
    assert leaked(output) == []


def test_trace_json_is_masked_by_default(secret_dlq_panel) -> None:
    output = trace("--json")
    text = json.dumps(json.loads(output), ensure_ascii=False)
    assert "billing-dlq" in text and "••••1111" in text and leaked(text) == []


def test_trace_unmasked_by_an_admin_shows_the_original_and_is_audited(secret_dlq_panel) -> None:
    person("ada", "admin")
    output = trace("--unmasked", "--as", "ada")
    assert CARD in output
    read = ReadAudit.objects.get()
    assert (read.username, read.via, read.unmasked, read.message_count) == (
        "ada",
        "command",
        True,
        1,
    )


def test_trace_unmasked_is_refused_to_a_viewer(secret_dlq_panel) -> None:
    person("victor", "viewer")
    with pytest.raises(CommandError, match="may not see unmasked bodies"):
        trace("--unmasked", "--as", "victor")
    assert not ReadAudit.objects.exists()


@pytest.fixture
def secret_dlq(aws: None) -> str:
    client, _source_url, _arn, url = make_queues()
    client.send_message(QueueUrl=url, MessageBody=BODY)
    client.send_message(QueueUrl=url, MessageBody=json.dumps({"detail-type": "OrderShipped"}))
    return url


def redrive(*args: str) -> str:
    out = StringIO()
    call_command("redrive", "orders-dlq", *args, stdout=out)
    return out.getvalue()


def test_redrive_filter_on_a_card_number_matches_nothing_by_default(secret_dlq) -> None:
    assert redrive("--dry-run", "--contains", CARD).startswith("0 of 2 examined messages match")


def test_redrive_unmasked_filter_finds_the_card_and_moves_the_original(secret_dlq) -> None:
    person("ada", "admin")
    assert redrive("--dry-run", "--contains", CARD, "--unmasked", "--as", "ada").startswith(
        "1 of 2 examined messages match"
    )
    redrive("--yes", "--wait", "--contains", CARD, "--unmasked", "--as", "ada")
    assert Operation.objects.get().moved == 1
    client = boto3.client("sqs", region_name="us-east-1")
    source = client.get_queue_url(QueueName="orders")["QueueUrl"]
    moved = client.receive_message(QueueUrl=source, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in moved] == [BODY]
