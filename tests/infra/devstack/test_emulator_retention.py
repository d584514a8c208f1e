"""The emulator keeps bounded history: traces, log events, archived events, SQS messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from infra.devstack.clients import Clients
from infra.devstack.emulator import retention, xray
from infra.devstack.emulator.retention import Limits, RecentSet

EPOCH = datetime(1970, 1, 1)
T0 = 1_700_000_000.0  # trace times are whatever the writer says: no clock involved


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def epoch_ms(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds() * 1000)


def put_trace(clients: Clients, number: int, start: float) -> str:
    trace_id = f"1-{int(start):08x}-{number:024x}"
    document = {"trace_id": trace_id, "id": f"{number:016x}", "name": "fn"}
    document |= {"start_time": start, "end_time": start + 1}
    clients("xray").put_trace_segments(TraceSegmentDocuments=[json.dumps(document)])
    return trace_id


def stored_traces() -> dict[str, Any]:
    from moto.xray.models import xray_backends

    return xray_backends["123456789012"]["us-east-1"]._segment_collection._traces  # type: ignore[no-any-return]


def test_traces_idle_past_the_retention_are_forgotten(moto_clients: Clients) -> None:
    old = put_trace(moto_clients, 1, T0)
    recent = put_trace(moto_clients, 2, T0 + 3 * 3600)
    now = EPOCH + timedelta(seconds=T0 + 4 * 3600)

    dropped = retention.trim_traces(now, Limits(trace_retention=timedelta(hours=2)))

    assert dropped == 1
    assert list(stored_traces()) == [recent] and old not in stored_traces()


def test_only_the_newest_traces_are_kept_past_the_limit(moto_clients: Clients) -> None:
    ids = [put_trace(moto_clients, n, T0 + n) for n in range(5)]
    now = EPOCH + timedelta(seconds=T0 + 10)

    retention.trim_traces(now, Limits(limit=2))

    assert list(stored_traces()) == ids[3:]


def test_forgotten_traces_leave_the_summary_cache_too(moto_clients: Clients) -> None:
    from moto.xray.models import xray_backends

    backend = xray_backends["123456789012"]["us-east-1"]
    kept = put_trace(moto_clients, 1, T0)
    backend.__dict__[xray.VIEW_CACHE] = {kept: (1, None), "1-gone": (1, None)}

    retention.trim_traces(EPOCH + timedelta(seconds=T0), Limits())

    assert list(backend.__dict__[xray.VIEW_CACHE]) == [kept]


def test_log_events_past_the_group_retention_go_and_so_do_emptied_streams(
    moto_clients: Clients,
) -> None:
    logs, now = moto_clients("logs"), utc_now()
    logs.create_log_group(logGroupName="g")
    logs.put_retention_policy(logGroupName="g", retentionInDays=1)
    for stream, age in (("old", timedelta(days=2)), ("new", timedelta(minutes=1))):
        logs.create_log_stream(logGroupName="g", logStreamName=stream)
        logs.put_log_events(
            logGroupName="g",
            logStreamName=stream,
            logEvents=[{"timestamp": epoch_ms(now - age), "message": stream}],
        )

    dropped = retention.trim_logs(now, Limits())

    streams = logs.describe_log_streams(logGroupName="g")["logStreams"]
    assert dropped == 1
    assert [s["logStreamName"] for s in streams] == ["new"]


def test_a_group_without_retention_keeps_its_newest_events_up_to_the_limit(
    moto_clients: Clients,
) -> None:
    logs, now = moto_clients("logs"), utc_now()
    logs.create_log_group(logGroupName="g")
    logs.create_log_stream(logGroupName="g", logStreamName="s")
    logs.put_log_events(
        logGroupName="g",
        logStreamName="s",
        logEvents=[
            {"timestamp": epoch_ms(now - timedelta(minutes=m)), "message": f"{m} min ago"}
            for m in (3, 2, 1)
        ],
    )

    retention.trim_logs(now, Limits(limit=2))

    events = logs.get_log_events(logGroupName="g", logStreamName="s")["events"]
    assert [e["message"] for e in events] == ["2 min ago", "1 min ago"]


def archived(moto_clients: Clients, retention_days: int, times: list[datetime]) -> Any:
    from moto.events.models import events_backends

    events = moto_clients("events")
    bus_arn = events.describe_event_bus()["Arn"]
    events.create_archive(ArchiveName="a", EventSourceArn=bus_arn, RetentionDays=retention_days)
    for moment in times:
        events.put_events(
            Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}", "Time": moment}]
        )
    return events_backends["123456789012"]["us-east-1"].archives["a"]


def test_archived_events_past_the_archive_retention_go(moto_clients: Clients) -> None:
    now = utc_now()
    archive = archived(moto_clients, 1, [now - timedelta(days=2), now - timedelta(hours=1)])

    dropped = retention.trim_archives(now, Limits())

    assert dropped == 1
    assert moto_clients("events").describe_archive(ArchiveName="a")["EventCount"] == 1
    assert len(archive.events) == 1


def test_an_archive_kept_forever_keeps_its_newest_events_up_to_the_limit(
    moto_clients: Clients,
) -> None:
    now = utc_now()
    archive = archived(moto_clients, 0, [now - timedelta(minutes=m) for m in (3, 2, 1)])
    newest = archive.events[1:]

    retention.trim_archives(now, Limits(limit=2))

    assert archive.events == newest


def test_sqs_messages_past_the_retention_period_expire_unreceived(moto_clients: Clients) -> None:
    sqs = moto_clients("sqs")
    url = sqs.create_queue(QueueName="q", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="m")

    kept = retention.expire_messages(utc_now() + timedelta(seconds=30))
    expired = retention.expire_messages(utc_now() + timedelta(seconds=61))

    depth = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert (kept, expired) == (0, 1)
    assert depth["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_deleted_receipt_handles_are_remembered_up_to_a_limit() -> None:
    handles = RecentSet(limit=2)

    handles.update(["a", "b"])
    handles.add("c")

    assert "a" not in handles and "b" in handles and "c" in handles
    assert len(handles) == 2


def test_a_repeated_delete_of_a_deleted_message_still_succeeds_after_a_sweep(
    moto_clients: Clients,
) -> None:
    sqs = moto_clients("sqs")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="m")
    handle = sqs.receive_message(QueueUrl=url)["Messages"][0]["ReceiptHandle"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)

    retention.expire_messages(utc_now())  # swaps in the bounded set
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)

    from moto.sqs.models import sqs_backends

    queue = sqs_backends["123456789012"]["us-east-1"].queues["q"]
    assert isinstance(queue.deleted_messages, RecentSet) and handle in queue.deleted_messages
