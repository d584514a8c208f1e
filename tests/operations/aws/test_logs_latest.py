"""The newest event time of a log group (the replay form opens on it)."""

from __future__ import annotations

import time

import boto3
import pytest

from operations.aws import logs
from operations.aws.errors import AwsError

GROUP = "/aws/events/shop-bus"


def test_newest_event_time_comes_from_the_latest_stream(aws):
    client = boto3.client("logs", region_name="us-east-1")
    client.create_log_group(logGroupName=GROUP)
    now_ms = int(time.time() * 1000)
    newest = now_ms - 60_000
    for stream, stamp in (("a", now_ms - 600_000), ("b", newest), ("c", now_ms - 300_000)):
        client.create_log_stream(logGroupName=GROUP, logStreamName=stream)
        client.put_log_events(
            logGroupName=GROUP,
            logStreamName=stream,
            logEvents=[{"timestamp": stamp, "message": "{}"}],
        )
    assert logs.latest_event_ms(GROUP) == newest


def test_an_empty_group_has_no_newest_event(aws):
    boto3.client("logs", region_name="us-east-1").create_log_group(logGroupName=GROUP)
    assert logs.latest_event_ms(GROUP) is None


def test_a_missing_group_is_an_aws_error(aws):
    with pytest.raises(AwsError):
        logs.latest_event_ms("/nope")
