"""EventBridge replays: in the background, in the window, to the chosen rules, with AWS's errors.

Expectations from the EventBridge API reference (StartReplay, DescribeReplay, CancelReplay,
ListReplays): StartReplay answers STARTING; a replay replays the events whose time is in
[EventStartTime, EventEndTime) to the rules of Destination.FilterArns (all rules without them);
replayed events carry ``replay-name``; DescribeReplay reports EventLastReplayedTime.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.devstack.emulator import Emulator

NOW = datetime.now(UTC).replace(microsecond=0)
# Event times, minutes before NOW; the window is [NOW-40, NOW-10).
MINUTES = (50, 40, 30, 20, 10, 5)
WINDOW = (NOW - timedelta(minutes=40), NOW - timedelta(minutes=10))


def _bus_with_archive(client: Any, name: str) -> tuple[str, str, list[str]]:
    """A bus and its archive holding one event per entry of MINUTES; returns their event IDs."""
    events = client("events")
    bus = events.create_event_bus(Name=name)["EventBusArn"]
    archive = events.create_archive(ArchiveName=name, EventSourceArn=bus)["ArchiveArn"]
    ids = []
    for minutes in MINUTES:
        entry = {
            "Source": "test.replay",
            "DetailType": "Tested",
            "Detail": json.dumps({"minutes": minutes}),
            "EventBusName": name,
            "Time": NOW - timedelta(minutes=minutes),
        }
        ids.append(events.put_events(Entries=[entry])["Entries"][0]["EventId"])
    return bus, archive, ids


def _rule_to_queue(client: Any, bus: str, rule: str, **target: Any) -> tuple[str, str]:
    """A rule (created after the events were put, so only replays reach it) and its queue."""
    sqs = client("sqs")
    url = sqs.create_queue(QueueName=rule)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    events = client("events")
    rule_arn = events.put_rule(
        Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": ["test.replay"]})
    )["RuleArn"]
    events.put_targets(
        Rule=rule,
        EventBusName=bus,
        Targets=[{"Id": "q", "Arn": queue_arn["Attributes"]["QueueArn"], **target}],
    )
    return rule_arn, url


def _bodies(client: Any, url: str) -> list[dict[str, Any]]:
    sqs = client("sqs")
    found: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        found += [json.loads(m["Body"]) for m in batch]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
            ],
        )
    return found


def _start(client: Any, name: str, bus: str, archive: str, **destination: Any) -> dict[str, Any]:
    return dict(
        client("events").start_replay(
            ReplayName=name,
            EventSourceArn=archive,
            EventStartTime=WINDOW[0],
            EventEndTime=WINDOW[1],
            Destination={"Arn": bus, **destination},
        )
    )


def _hold_first_event(stack: Any, monkeypatch: Any) -> tuple[threading.Event, threading.Event]:
    """Make replays stop after their first event until ``release`` is set."""
    reached, release = threading.Event(), threading.Event()

    def hold(_name: str, _event: dict[str, Any]) -> None:
        if not reached.is_set():
            reached.set()
            release.wait(10)

    monkeypatch.setattr(stack.emulator.replays, "on_event", hold)
    return reached, release


def test_start_replay_answers_starting_and_completes_in_the_background(client, stack, name):
    bus, archive, _ids = _bus_with_archive(client, name)
    _rule_to_queue(client, name, f"{name}-r")
    started = _start(client, name, bus, archive)
    assert stack.emulator.replays.wait(name)
    described = client("events").describe_replay(ReplayName=name)
    assert started["State"] == "STARTING"
    assert described["State"] == "COMPLETED"
    assert described["EventLastReplayedTime"] == NOW - timedelta(minutes=20)
    assert described["ReplayEndTime"] >= described["ReplayStartTime"]


def test_replay_delivers_only_the_events_inside_its_window(client, stack, name):
    bus, archive, _ids = _bus_with_archive(client, name)
    _rule_arn, url = _rule_to_queue(client, name, f"{name}-r")
    _start(client, name, bus, archive)
    assert stack.emulator.replays.wait(name)
    # The start is inclusive, the end exclusive.
    assert sorted(b["detail"]["minutes"] for b in _bodies(client, url)) == [20, 30, 40]


def test_replay_reaches_only_the_filter_rules_with_replay_name_and_original_ids(
    client, stack, name
):
    bus, archive, ids = _bus_with_archive(client, name)
    chosen, chosen_url = _rule_to_queue(client, name, f"{name}-a")
    _other, other_url = _rule_to_queue(client, name, f"{name}-b")
    _start(client, name, bus, archive, FilterArns=[chosen])
    assert stack.emulator.replays.wait(name)
    delivered = _bodies(client, chosen_url)
    assert {b["replay-name"] for b in delivered} == {name}
    assert {b["id"] for b in delivered} == set(ids[1:4])
    assert _bodies(client, other_url) == []


def test_replayed_events_through_an_input_transformer_can_read_replay_name(client, stack, name):
    bus, archive, _ids = _bus_with_archive(client, name)
    transformer = {
        "InputPathsMap": {"replay": "$.replay-name", "minutes": "$.detail.minutes"},
        "InputTemplate": '{"replay": "<replay>", "minutes": <minutes>}',
    }
    _rule, url = _rule_to_queue(client, name, f"{name}-t", InputTransformer=transformer)
    _start(client, name, bus, archive)
    assert stack.emulator.replays.wait(name)
    assert sorted(_bodies(client, url), key=lambda b: b["minutes"])[0] == {
        "replay": name,
        "minutes": 20,
    }


def test_replayed_events_are_not_archived_again(client, stack, name):
    bus, archive, _ids = _bus_with_archive(client, name)
    _start(client, name, bus, archive)
    assert stack.emulator.replays.wait(name)
    assert client("events").describe_archive(ArchiveName=name)["EventCount"] == len(MINUTES)


def test_describe_replay_shows_running_and_the_last_replayed_time(client, stack, name, monkeypatch):
    reached, release = _hold_first_event(stack, monkeypatch)
    bus, archive, _ids = _bus_with_archive(client, name)
    _start(client, name, bus, archive)
    assert reached.wait(10)
    running = client("events").describe_replay(ReplayName=name)
    release.set()
    assert stack.emulator.replays.wait(name)
    assert running["State"] == "RUNNING"
    assert running["EventLastReplayedTime"] == NOW - timedelta(minutes=40)


def test_cancel_replay_stops_it_before_the_next_event(client, stack, name, monkeypatch):
    reached, release = _hold_first_event(stack, monkeypatch)
    bus, archive, _ids = _bus_with_archive(client, name)
    _rule, url = _rule_to_queue(client, name, f"{name}-r")
    _start(client, name, bus, archive)
    assert reached.wait(10)
    cancelled = client("events").cancel_replay(ReplayName=name)
    release.set()
    assert stack.emulator.replays.wait(name)
    assert cancelled["State"] == "CANCELLING"
    assert client("events").describe_replay(ReplayName=name)["State"] == "CANCELLED"
    assert len(_bodies(client, url)) == 1


def test_cancel_replay_refuses_a_finished_replay(client, stack, name):
    bus, archive, _ids = _bus_with_archive(client, name)
    _start(client, name, bus, archive)
    assert stack.emulator.replays.wait(name)
    with pytest.raises(ClientError) as caught:
        client("events").cancel_replay(ReplayName=name)
    assert caught.value.response["Error"]["Code"] == "IllegalStatusException"
    assert caught.value.response["Error"]["Message"] == (
        f"Replay {name} is not in a valid state for this operation."
    )


def test_list_replays_filters_by_state(client, stack, name):
    bus, archive, _ids = _bus_with_archive(client, name)
    _start(client, name, bus, archive)
    assert stack.emulator.replays.wait(name)
    events = client("events")
    completed = [r["ReplayName"] for r in events.list_replays(State="COMPLETED")["Replays"]]
    running = [r["ReplayName"] for r in events.list_replays(State="RUNNING")["Replays"]]
    assert name in completed
    assert name not in running


def _rule_arn(bus: str, path: str) -> str:
    return f"{bus.split(':event-bus/')[0]}:rule/{path}"


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        (
            lambda bus, name: {"EventStartTime": WINDOW[1]},
            "ValidationException",
            "Parameter EventEndTime is not valid. Reason: EventStartTime must be before "
            "EventEndTime.",
        ),
        (
            lambda bus, name: {"EventEndTime": NOW + timedelta(hours=1)},
            "ValidationException",
            "Parameter EventEndTime is not valid. Reason: EventEndTime must not be in the future.",
        ),
        (
            lambda bus, name: {"FilterArns": [_rule_arn(bus, f"{name}/no-such-rule")]},
            "ResourceNotFoundException",
            "Rule no-such-rule does not exist on EventBus {name}.",
        ),
        (
            lambda bus, name: {"FilterArns": [bus]},
            "ValidationException",
            "Parameter Destination.FilterArns is not valid. Reason: Must contain rule ARNs.",
        ),
    ],
    ids=["start-not-before-end", "end-in-future", "unknown-rule", "not-a-rule"],
)
def test_start_replay_refuses_what_aws_refuses(client, name, change, code, message):
    bus, archive, _ids = _bus_with_archive(client, name)
    params: dict[str, Any] = {
        "ReplayName": name,
        "EventSourceArn": archive,
        "EventStartTime": WINDOW[0],
        "EventEndTime": WINDOW[1],
        "Destination": {"Arn": bus},
    }
    for key, value in change(bus, name).items():
        if key == "FilterArns":
            params["Destination"]["FilterArns"] = value
        else:
            params[key] = value
    with pytest.raises(ClientError) as caught:
        client("events").start_replay(**params)
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["Error"]["Message"] == message.format(name=name)


def test_start_replay_refuses_a_name_taken(client, stack, name):
    bus, archive, _ids = _bus_with_archive(client, name)
    _start(client, name, bus, archive)
    assert stack.emulator.replays.wait(name)
    with pytest.raises(ClientError) as caught:
        _start(client, name, bus, archive)
    assert caught.value.response["Error"]["Code"] == "ResourceAlreadyExistsException"
    assert caught.value.response["Error"]["Message"] == f"Replay {name} already exists."


def test_uninstall_stops_running_replays_and_fails_them(client, stack, name):
    extra = Emulator().install()
    reached, release = threading.Event(), threading.Event()

    def hold(_name: str, _event: dict[str, Any]) -> None:
        reached.set()
        release.wait(10)

    extra.replays.on_event = hold
    bus, archive, _ids = _bus_with_archive(client, name)
    _start(client, name, bus, archive)
    assert reached.wait(10)
    stopping = threading.Thread(target=extra.uninstall)
    stopping.start()
    assert extra.replays.stopped.wait(10)
    release.set()
    stopping.join(10)
    assert client("events").describe_replay(ReplayName=name)["State"] == "FAILED"
