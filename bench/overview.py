"""Benchmark: AWS calls and server time of the overview and a queue page.

Builds N consumers (a queue with a DLQ, an alarm on the DLQ, and a rule on one
bus feeding the queue) in moto, in-process, for N = 10, 50, 200. Renders the
overview and one queue page through Django's test client as a logged-in user,
cold (empty cache) then warm (within the TTL), and prints:

- AWS API calls per cold render, by operation, and per warm render;
- GetMetricData calls against ceil(metric queries / 500) and DescribeAlarms
  calls against ceil(alarms / 100);
- server time (median of the warm renders) and peak Python memory (tracemalloc).

Run: ``.venv/bin/python bench/overview.py`` (about a minute). moto is slower than
AWS, so cold times say little; the call counts and warm times are the point.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
for name, value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}.items():
    os.environ[name] = value
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)
os.environ["LOG_LEVEL"] = "ERROR"

import boto3  # noqa: E402
import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from moto import mock_aws  # noqa: E402

from operations.aws import client as aws_client  # noqa: E402

SIZES = (10, 50, 200)
WARM_RUNS = 7
REGION = "us-east-1"


def build(n: int) -> None:
    """N consumers: queue + DLQ (RedrivePolicy) + DLQ alarm + a rule on one bus."""
    sqs = boto3.client("sqs", region_name=REGION)
    events = boto3.client("events", region_name=REGION)
    cw = boto3.client("cloudwatch", region_name=REGION)
    events.create_event_bus(Name="bench-bus")
    for i in range(n):
        name = f"bench-c{i:03d}"
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = f"arn:aws:sqs:{REGION}:123456789012:{name}-dlq"
        policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
        queue_url = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": policy})
        if i % 7 == 0:
            sqs.send_message(QueueUrl=dlq_url, MessageBody="{}")
        del queue_url
        events.put_rule(
            Name=f"{name}-rule",
            EventBusName="bench-bus",
            EventPattern=json.dumps({"detail-type": [name]}),
        )
        events.put_targets(
            Rule=f"{name}-rule",
            EventBusName="bench-bus",
            Targets=[{"Id": "q", "Arn": f"arn:aws:sqs:{REGION}:123456789012:{name}"}],
        )
        cw.put_metric_alarm(
            AlarmName=f"{name}-dlq-depth",
            Namespace="AWS/SQS",
            MetricName="ApproximateNumberOfMessagesVisible",
            Dimensions=[{"Name": "QueueName", "Value": f"{name}-dlq"}],
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
        )


def render(client: Client, path: str, calls: Counter) -> tuple[Counter, float, int]:
    calls.clear()
    started = time.perf_counter()
    response = client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"{path} answered {response.status_code}")
    return Counter(calls), elapsed, len(response.content)


def measure(n: int, client: Client) -> list[str]:
    lines = []
    with mock_aws():
        aws_client.reset()
        calls: Counter = Counter()
        page_sizes: list[int] = []

        def page_size(params, **kwargs) -> None:
            page_sizes.append(params.get("MaxRecords", 0))

        # Register before any client exists: clients copy the session's hooks.
        hooks = aws_client.session().events
        hooks.register("before-call.*.*", lambda model, **kw: calls.update([model.name]))
        hooks.register("before-parameter-build.cloudwatch.DescribeAlarms", page_size)
        build(n)
        cache.clear()
        queue_path = f"/queues/bench-c{n - 1:03d}/"

        tracemalloc.start()
        cold_overview, cold_ms, size = render(client, "/", calls)
        cold_queue, cold_queue_ms, _ = render(client, queue_path, calls)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()

        warm_calls: Counter = Counter()
        warm_ms, warm_queue_ms = [], []
        for _ in range(WARM_RUNS):
            got, ms, _ = render(client, "/", calls)
            warm_calls.update(got)
            warm_ms.append(ms)
            got, ms, _ = render(client, queue_path, calls)
            warm_calls.update(got)
            warm_queue_ms.append(ms)

        metric_queries = n  # one ApproximateAgeOfOldestMessage query per DLQ
        gmd, gmd_expected = cold_overview["GetMetricData"], math.ceil(metric_queries / 500)
        da, da_expected = cold_overview["DescribeAlarms"], math.ceil(n / 100)
        by_op = ", ".join(f"{op} {count}" for op, count in sorted(cold_overview.items()))
        queue_ops = ", ".join(f"{op} {count}" for op, count in sorted(cold_queue.items()))
        lines += [
            f"N={n}  ({2 * n} queues, {n} alarms, {n} rules; overview {size // 1024} KiB of HTML)",
            f"  overview cold:  {sum(cold_overview.values())} calls: {by_op}",
            f"  queue page cold (after overview): {sum(cold_queue.values())} calls: {queue_ops}",
            f"  GetMetricData {gmd} (expected ceil({metric_queries}/500) = {gmd_expected}) "
            f"{'OK' if gmd == gmd_expected else 'MISMATCH'};  DescribeAlarms {da} "
            f"(ceil({n}/100) = {da_expected}; {alarm_note(da, da_expected, page_sizes)})",
            f"  warm: {sum(warm_calls.values())} calls in {2 * WARM_RUNS} renders "
            f"{'OK' if not warm_calls else 'FAIL'}",
            f"  server time: overview cold {cold_ms:.0f} ms, warm median "
            f"{statistics.median(warm_ms):.1f} ms (max {max(warm_ms):.1f}); queue page cold "
            f"{cold_queue_ms:.0f} ms, warm median {statistics.median(warm_queue_ms):.1f} ms",
            f"  peak Python memory during the cold renders: {peak:.1f} MiB",
        ]
        if n == 200:
            target = statistics.median(warm_ms) < 100
            lines.append(f"  target warm N=200 < 100 ms: {'OK' if target else 'FAIL'}")
    aws_client.reset()
    return lines


def alarm_note(calls: int, expected: int, page_sizes: list[int]) -> str:
    """moto ignores MaxRecords and answers DescribeAlarms in one page, so fewer
    calls than on AWS are expected; what the code controls is the page size."""
    if calls == expected:
        return "OK"
    if calls < expected and set(page_sizes) == {100}:
        return "MaxRecords=100 sent; moto returns all alarms in one page"
    return "MISMATCH"


def main() -> None:
    # No setup_test_environment(): its instrumented template rendering (context
    # copies for assertions) would be measured as server time.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    settings.EVENTOPS_CACHE_TTL = 600  # every warm render falls inside the TTL
    settings.EVENTOPS_RESOURCE_PREFIX = ""
    settings.AWS_ENDPOINT_URL = ""
    user = User.objects.create_user("bench")
    client = Client()
    client.force_login(user)
    print(f"eventops overview benchmark (moto in-process, TTL {settings.EVENTOPS_CACHE_TTL} s)")
    for n in SIZES:
        for line in measure(n, client):
            print(line)


if __name__ == "__main__":
    main()
