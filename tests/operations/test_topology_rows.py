"""Overview rows: the retention countdown, worst-first order and duration text."""

from __future__ import annotations

from operations.aws.cloudwatch import Alarm
from operations.aws.sqs import QueueAttributes
from operations.topology import Consumer, format_duration

DAY = 86400


def _queue(name: str, visible: int = 0, retention: int = 14 * DAY) -> QueueAttributes:
    return QueueAttributes(
        url=f"https://sqs/{name}",
        name=name,
        arn=f"arn:aws:sqs:us-east-1:1:{name}",
        visible=visible,
        in_flight=0,
        delayed=0,
        retention_seconds=retention,
        visibility_timeout_seconds=30,
        fifo=False,
        redrive=None,
    )


def _consumer(name: str, dlq_visible: int, age: float | None, state: str = "OK") -> Consumer:
    alarm = Alarm(f"{name}-alarm", "", "metric", state, "", None, True)
    return Consumer(
        queue=_queue(name),
        dlq=_queue(f"{name}-dlq", visible=dlq_visible),
        rules=[],
        functions=[],
        alarms=[alarm],
        dlq_age_seconds=age,
    )


def test_countdown_is_dlq_retention_minus_age_of_oldest():
    consumer = _consumer("puffin", dlq_visible=4, age=3 * DAY)

    assert consumer.expires_in_seconds == 11 * DAY
    assert consumer.expires_display == "11 d 0 h"


def test_countdown_is_unknown_without_an_age_datapoint_or_messages():
    assert _consumer("puffin", dlq_visible=4, age=None).expires_in_seconds is None
    assert _consumer("puffin", dlq_visible=0, age=3 * DAY).expires_in_seconds is None


def test_alarms_first_then_non_empty_dlqs_by_soonest_expiry():
    rows = [
        _consumer("calm", dlq_visible=0, age=None),
        _consumer("later", dlq_visible=1, age=1 * DAY),
        _consumer("sooner", dlq_visible=1, age=13 * DAY),
        _consumer("firing", dlq_visible=0, age=None, state="ALARM"),
    ]

    rows.sort(key=Consumer.sort_key)

    assert [c.queue.name for c in rows] == ["firing", "sooner", "later", "calm"]


def test_durations_read_compactly():
    assert [format_duration(s) for s in (None, 42, 125, 3 * 3600 + 60, DAY + 7200)] == [
        "—",
        "42 s",
        "2 min 5 s",
        "3 h 1 min",
        "1 d 2 h",
    ]
