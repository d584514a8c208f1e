"""The devstack's patches of moto: each one fits the installed moto, or the devstack refuses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto.xray.responses import XRayResponse

from infra.devstack import emulator, main
from infra.devstack.clients import Clients
from infra.devstack.emulator import moto_fixes
from infra.devstack.emulator._patches import (
    MotoIncompatible,
    Patcher,
    moto_version,
    require_parameters,
)


@pytest.fixture
def patcher() -> Iterator[Patcher]:
    patches = Patcher()
    yield patches
    patches.undo_all()


def test_every_patch_installs_against_the_installed_moto_and_uninstalls_cleanly() -> None:
    probe = emulator.Emulator().install()
    targets = list(probe._patcher.targets)
    probe.uninstall()
    stock = [vars(t).get(n) if isinstance(t, type) else getattr(t, n, None) for t, n in targets]

    installed = emulator.Emulator().install()
    patched = [vars(t).get(n) if isinstance(t, type) else getattr(t, n, None) for t, n in targets]
    installed.uninstall()
    restored = [vars(t).get(n) if isinstance(t, type) else getattr(t, n, None) for t, n in targets]

    assert len(targets) >= 20
    assert all(p is not s for p, s in zip(patched, stock, strict=True))
    assert all(r is s for r, s in zip(restored, stock, strict=True))


def test_patching_an_attribute_moto_lacks_names_the_moto_version(patcher: Patcher) -> None:
    with pytest.raises(MotoIncompatible) as raised:
        patcher.setattr(XRayResponse, "trace_summaries", lambda self: "")

    assert f"moto {moto_version()}" in str(raised.value)
    assert "moto.xray.responses.XRayResponse.trace_summaries does not exist" in str(raised.value)
    assert not hasattr(XRayResponse, "trace_summaries")


def test_adding_an_attribute_moto_already_has_is_refused(patcher: Patcher) -> None:
    with pytest.raises(MotoIncompatible, match="get_trace_summaries now exists"):
        patcher.setattr(XRayResponse, "get_trace_summaries", lambda self: "", new=True)


def test_a_wrapper_refuses_a_method_whose_parameter_was_renamed() -> None:
    def send_message(self: Any, queue: str, body: str) -> None: ...

    with pytest.raises(MotoIncompatible, match="no longer takes queue_name"):
        require_parameters(send_message, ["queue_name"], "SQSBackend.send_message")


def test_devstack_stops_at_start_with_one_line_when_moto_does_not_fit(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # As moto 5.2 did to the X-Ray handler the emulator replaces.
    monkeypatch.delattr(XRayResponse, "get_trace_summaries")

    code = main.main(["--port", "0", "--no-traffic"])

    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and f"moto {moto_version()}" in err
    assert "XRayResponse.get_trace_summaries does not exist" in err
    assert emulator.current() is None


def test_rule_targets_receive_the_account_field(moto_clients: Clients, patcher: Patcher) -> None:
    moto_fixes.add_account_to_event_envelope(patcher)
    url = moto_clients("sqs").create_queue(QueueName="q")["QueueUrl"]
    events = moto_clients("events")
    events.put_rule(Name="all", EventPattern=json.dumps({"source": ["s"]}))
    events.put_targets(
        Rule="all", Targets=[{"Id": "q", "Arn": "arn:aws:sqs:us-east-1:123456789012:q"}]
    )
    events.put_events(Entries=[{"Source": "s", "DetailType": "T", "Detail": "{}"}])
    body = json.loads(moto_clients("sqs").receive_message(QueueUrl=url)["Messages"][0]["Body"])

    assert body["account"] == "123456789012"
    assert body["detail-type"] == "T" and body["detail"] == {}


def test_moto_no_longer_keeps_every_model_it_creates(
    moto_clients: Clients, patcher: Patcher
) -> None:
    from moto.sqs.models import Message

    moto_fixes.stop_tracking_instances(patcher)
    tracked = len(Message.instances_tracked)  # type: ignore[attr-defined]
    url = moto_clients("sqs").create_queue(QueueName="q")["QueueUrl"]
    for n in range(5):
        moto_clients("sqs").send_message(QueueUrl=url, MessageBody=str(n))

    assert len(Message.instances_tracked) == tracked  # type: ignore[attr-defined]


def _deletes_at_once(moto_clients: Clients, rounds: int = 3) -> int:
    """Receive 200 messages, delete them in batches of 10 from 8 threads at once; how many
    stayed in the queue, over ``rounds`` queues. Threads switch as often as they can (a
    loaded machine's scheduling, where CI met the race): stock moto leaves hundreds."""
    import sys
    from concurrent.futures import ThreadPoolExecutor

    sqs = moto_clients("sqs")
    left = 0
    for n in range(rounds):
        url = sqs.create_queue(QueueName=f"deletes-{n}")["QueueUrl"]
        for _ in range(20):
            entries = [{"Id": str(i), "MessageBody": "m"} for i in range(10)]
            sqs.send_message_batch(QueueUrl=url, Entries=entries)
        batches = []
        while got := sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600
        ).get("Messages"):
            batches.append(got)

        def delete(batch: list[dict[str, Any]], url: str = url) -> None:
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
            ]
            assert not sqs.delete_message_batch(QueueUrl=url, Entries=entries).get("Failed")

        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        try:
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(delete, batches))
        finally:
            sys.setswitchinterval(interval)
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        left += int(attrs["ApproximateNumberOfMessages"])
        left += int(attrs["ApproximateNumberOfMessagesNotVisible"])
    return left


def test_concurrent_sqs_deletes_all_take_effect(moto_clients: Clients, patcher: Patcher) -> None:
    moto_fixes.make_sqs_thread_safe(patcher)
    assert _deletes_at_once(moto_clients) == 0


def test_a_long_poll_waits_outside_the_lock_and_wakes_on_a_send(
    moto_clients: Clients, patcher: Patcher
) -> None:
    import threading
    import time

    moto_fixes.make_sqs_thread_safe(patcher)
    sqs = moto_clients("sqs")
    url = sqs.create_queue(QueueName="long-poll")["QueueUrl"]
    other = sqs.create_queue(QueueName="other")["QueueUrl"]
    sqs.send_message(QueueUrl=other, MessageBody="ready")

    began = time.monotonic()
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages") is None
    assert time.monotonic() - began >= 0.9  # an empty queue is waited on, as SQS does

    got: list[Any] = []
    poll = threading.Thread(
        target=lambda: got.append(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10))
    )
    began = time.monotonic()
    poll.start()
    time.sleep(0.3)
    # While one receive waits, others (and deletes) go on.
    held = sqs.receive_message(QueueUrl=other)["Messages"][0]
    sqs.delete_message(QueueUrl=other, ReceiptHandle=held["ReceiptHandle"])
    sqs.send_message(QueueUrl=url, MessageBody="wake")
    poll.join(timeout=10)
    assert [m["Body"] for m in got[0]["Messages"]] == ["wake"]
    assert time.monotonic() - began < 5
