"""Benchmark: AWS calls and server time of the overview and a queue page, and under load.

    .venv/bin/python bench/overview.py [--sizes 200,1000] [--rounds 5]
    .venv/bin/python bench/overview.py --load [--seconds 60] [--viewers 1,20,50]
        [--servers threaded,gunicorn] [--caches file,redis] [--size 200] [--rounds 5]

**Default mode** (in-process, moto's ``mock_aws`` with the devstack emulator publishing
the AWS/SQS metrics AWS publishes): N consumers, each a queue with a DLQ (RedrivePolicy),
an alarm on the DLQ and a rule on one bus that targets the queue; one DLQ in 50 holds a
message. Pages go through Django's test client as a signed-in user, with the settings
users run (``EVENTOPS_CACHE_TTL`` 15 s, ``EVENTOPS_TOPOLOGY_TTL`` 300 s, the file cache of
the embedded default under a temporary directory). Each figure is the median and range
of ``--rounds`` rounds:

- cold: an empty cache before the overview, and again before the queue page (so the
  queue page does not reuse the overview's reads): the overview's first response (the
  first read runs in the background; a first-ever view waits for it at most 1 s), the
  time until the complete overview is ready, and the AWS calls of that first read; the
  queue page's calls are those of its request (what it leaves to the background is
  waited for before the next round);
- warm: renders within the TTL (no AWS call expected);
- refresh: the clock moved past the TTL; the request (served from the last value) and
  the background refresh it starts, timed apart, with the refresh's AWS calls (target at
  1,000 consumers: at most 50);
- topology refresh: past the topology TTL, the background re-read of queues' attributes,
  rules and targets (once per 300 s, whatever the number of viewers);
- peak Python memory (tracemalloc) of one cold overview, in a separate round: timed
  renders run without tracemalloc, which slows them 2-3x.

moto answers from the same process: its CPU time is counted in the cold and refresh
figures (AWS would add network latency instead).

**Load mode** (``--load``): a moto server in its own process (emulator installed, AWS/SQS
metrics sampled every minute) counts every request it serves; the dashboard runs as
Django's threaded ``runserver`` and as gunicorn with 4 workers, with the file cache and
with Redis (``redis://127.0.0.1:6379/12``). 1, 20 and 50 viewers each poll the overview
(as htmx does) and a queue page every second for ``--seconds``; it prints AWS calls in
that time, calls relative to one viewer (measured in the same round), p50/p95 latency and
errors, each the median and range of ``--rounds`` rounds (the viewer counts interleave;
the defaults take about an hour: ``--rounds 1`` for a look). A request that fails, is
refused or waits over 30 s is an error (no retry hides it); the servers' output goes to a
file, as a real server's does. Targets: 20 viewers at most 1.5x one viewer's calls; no
error; p95 under 300 ms.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REGION = "us-east-1"
REDIS_URL = "redis://127.0.0.1:6379/12"
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
# One DLQ in this many holds a message (an incident touches a few consumers, not all).
DLQ_WITH_MESSAGES_EVERY = 50


def build(n: int, sqs: Any, events: Any, cw: Any) -> None:
    """N consumers: queue + DLQ (RedrivePolicy) + DLQ alarm + a rule on one bus."""
    events.create_event_bus(Name="bench-bus")
    for i in range(n):
        name = f"bench-c{i:04d}"
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = f"arn:aws:sqs:{REGION}:123456789012:{name}-dlq"
        policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
        sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": policy})
        if i % DLQ_WITH_MESSAGES_EVERY == 0:
            sqs.send_message(QueueUrl=dlq_url, MessageBody="{}")
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


# The calls made on the main thread: the request's own (the test client runs the view
# there; background reads run on the cache's pool).
request_calls: Counter = Counter()


def counting(calls: Counter) -> Callable[..., None]:
    def hook(model: Any, **kwargs: Any) -> None:
        calls.update([model.name])
        if threading.current_thread() is threading.main_thread():
            request_calls.update([model.name])

    return hook


def spread(values: list[float], unit: str = "ms") -> str:
    return (
        f"median {statistics.median(values):.1f} {unit} "
        f"(range {min(values):.1f}-{max(values):.1f}, {len(values)} rounds)"
    )


def by_operation(calls: Counter) -> str:
    return ", ".join(f"{op} {count}" for op, count in sorted(calls.items()))


# --- default mode: in-process --------------------------------------------------------------


def in_process(sizes: list[int], rounds: int) -> None:
    var = Path(tempfile.mkdtemp(prefix="eventops-bench-"))
    os.environ.update(FAKE_AWS)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "dashboard.settings",
            "EVENTOPS_VAR_DIR": str(var),
            "LOG_LEVEL": "ERROR",
            "DEBUG": "false",
            "SECRET_KEY": "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
            "SECURE_SSL_REDIRECT": "false",
        }
    )
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "REDIS_URL", "EVENTOPS_CACHE_TTL"):
        os.environ.pop(name, None)
    import boto3
    import django

    django.setup()
    import time_machine
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from moto import mock_aws

    from infra.devstack import emulator
    from operations import cache as read_cache
    from operations.aws import client as aws_client

    # No setup_test_environment(): its instrumented template rendering (context copies
    # for assertions) would be measured as server time.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    user = User.objects.create_user("bench")
    client = Client()
    client.force_login(user)
    ttl, topology_ttl = settings.EVENTOPS_CACHE_TTL, settings.EVENTOPS_TOPOLOGY_TTL
    print(
        f"eventops overview benchmark: moto in-process + emulator metrics; "
        f"{settings.CACHES['default']['BACKEND'].rsplit('.', 1)[1]}, TTL {ttl} s, "
        f"topology TTL {topology_ttl} s; one DLQ in {DLQ_WITH_MESSAGES_EVERY} not empty"
    )
    overview_path = "/env/default/"
    htmx = {"HTTP_HX_REQUEST": "true"}

    def get(path: str, calls: Counter, **headers: str) -> tuple[Counter, float]:
        calls.clear()
        started = time.perf_counter()
        response = client.get(path, **headers)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}")
        return Counter(calls), elapsed

    for n in sizes:
        with mock_aws(), time_machine.travel(time.time(), tick=True) as clock:
            aws_client.reset()
            calls: Counter = Counter()
            # Register before any client exists: clients copy the session's hooks.
            aws_client.session().events.register("before-call.*.*", counting(calls))
            emu = emulator.install()
            try:
                started = time.perf_counter()
                build(
                    n,
                    boto3.client("sqs", region_name=REGION),
                    boto3.client("events", region_name=REGION),
                    boto3.client("cloudwatch", region_name=REGION),
                )
                emu.tick()
                print(
                    f"N={n}  ({2 * n} queues, {n} alarms, {n} rules; built in "
                    f"{time.perf_counter() - started:.0f} s)"
                )
                queue_path = f"/env/default/queues/bench-c{n - 1:04d}/"

                cold_ms, ready_ms, cold_queue_ms = [], [], []
                cold_calls, cold_queue_calls = Counter(), Counter()
                for _ in range(rounds):
                    cache.clear()
                    read_cache.forget_local()
                    calls.clear()
                    started = time.perf_counter()
                    response = client.get(overview_path)
                    cold_ms.append((time.perf_counter() - started) * 1000)
                    read_cache.wait_for_background(timeout=600)
                    ready_ms.append((time.perf_counter() - started) * 1000)
                    cold_calls = Counter(calls)
                    complete = client.get(overview_path, **htmx).content
                    if b"bench-c0000" not in complete:
                        raise SystemExit("the overview did not fill in after its first read")
                    cache.clear()
                    read_cache.forget_local()
                    request_calls.clear()
                    _, ms = get(queue_path, calls)
                    cold_queue_calls = Counter(request_calls)
                    cold_queue_ms.append(ms)
                    # What it left to the background (every queue, rule, alarm), before
                    # the next round empties the cache.
                    read_cache.wait_for_background(timeout=600)
                print(
                    f"  overview cold (empty cache): first response {spread(cold_ms)} "
                    f"(target at 1,000: < 2,000 ms)"
                )
                print(
                    f"    the complete overview ready (first read, in the background) after "
                    f"{spread(ready_ms)}"
                )
                print(
                    f"    {sum(cold_calls.values())} calls (one fetch, whoever asks): "
                    f"{by_operation(cold_calls)}"
                )
                print(
                    f"  queue page cold (empty cache again; the inventory, rules and alarms are "
                    f"read in the background): {sum(cold_queue_calls.values())} calls in the "
                    f"request ({by_operation(cold_queue_calls)}); server time "
                    f"{spread(cold_queue_ms)}"
                )

                get(overview_path, calls)
                get(queue_path, calls)
                warm_ms, warm_htmx_ms, warm_queue_ms, warm_calls = [], [], [], Counter()
                for _ in range(max(rounds, 5)):
                    got, ms = get(overview_path, calls)
                    warm_calls.update(got)
                    warm_ms.append(ms)
                    got, ms = get(overview_path, calls, **htmx)
                    warm_calls.update(got)
                    warm_htmx_ms.append(ms)
                    got, ms = get(queue_path, calls)
                    warm_calls.update(got)
                    warm_queue_ms.append(ms)
                print(
                    f"  warm (within the TTL): {sum(warm_calls.values())} AWS calls in "
                    f"{3 * len(warm_ms)} renders"
                )
                print(f"    overview page {spread(warm_ms)}  (target at 1,000: < 100 ms)")
                print(f"    overview rows (htmx poll) {spread(warm_htmx_ms)}")
                print(f"    queue page {spread(warm_queue_ms)}")

                served_ms, refresh_ms, refresh_calls = [], [], []
                last_refresh = Counter()
                for _ in range(rounds):
                    clock.shift(ttl + 1)
                    emu.tick()
                    calls.clear()
                    started = time.perf_counter()
                    response = client.get(overview_path, **htmx)
                    served_ms.append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200
                    read_cache.wait_for_background(timeout=600)
                    refresh_ms.append((time.perf_counter() - started) * 1000)
                    last_refresh = Counter(calls)
                    refresh_calls.append(float(sum(calls.values())))
                    get(overview_path, calls, **htmx)  # renders the refreshed rows
                print(
                    f"  overview refresh past the TTL: {spread(refresh_calls, 'calls')}; last: "
                    f"{by_operation(last_refresh)}  (target at 1,000: <= 50)"
                )
                print(
                    f"    the request that finds it stale {spread(served_ms)} "
                    "(served the last rows)"
                )
                print(
                    f"    its background refresh, from that request's start, {spread(refresh_ms)}"
                )

                topo_ms, topo_calls = [], []
                for _ in range(rounds):
                    clock.shift(topology_ttl + 1)
                    emu.tick()
                    calls.clear()
                    started = time.perf_counter()
                    client.get(overview_path, **htmx)
                    read_cache.wait_for_background(timeout=600)
                    topo_ms.append((time.perf_counter() - started) * 1000)
                    topo_calls.append(float(sum(calls.values())))
                print(
                    f"  topology refresh (background, once per {topology_ttl} s): "
                    f"{spread(topo_calls, 'calls')}, {spread(topo_ms)}"
                )

                cache.clear()
                read_cache.forget_local()
                tracemalloc.start()
                get(overview_path, calls)
                read_cache.wait_for_background(timeout=600)
                peak = tracemalloc.get_traced_memory()[1] / 2**20
                tracemalloc.stop()
                print(
                    f"  peak Python memory of one cold overview and its first read "
                    f"(separate round): {peak:.1f} MiB"
                )
            finally:
                emulator.uninstall()
                aws_client.reset()
    shutil.rmtree(var, ignore_errors=True)


# --- load mode --------------------------------------------------------------------------------


def operation_of(environ: dict[str, Any]) -> str:
    """The AWS operation of a request, whichever protocol botocore used."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return target.rsplit(".", 1)[-1]
    path = environ.get("PATH_INFO", "")
    if "/operation/" in path:
        return path.rsplit("/", 1)[-1]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return query["Action"][0]
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        action = parse_qs(body.decode(errors="replace")).get("Action")
        if action:
            return action[0]
    return f"{environ.get('REQUEST_METHOD')} {path.split('?')[0][:40]}"


def moto_server(port: int) -> None:
    """Run in its own process: moto + emulator, counting every request it serves."""
    import logging

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from infra.devstack import emulator

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    emu = emulator.install()
    emu.start(interval_s=60)
    app = DomainDispatcherApplication(create_backend_app)
    calls: Counter = Counter()
    lock = threading.Lock()

    def counting(environ: dict[str, Any], start_response: Callable) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/__bench/"):
            if path == "/__bench/tick":
                emu.tick()
            with lock:
                body = json.dumps(dict(calls)).encode()
                if path == "/__bench/reset":
                    calls.clear()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        operation = operation_of(environ)
        with lock:
            calls[operation] += 1
        return app(environ, start_response)

    server = make_server("127.0.0.1", port, counting, True, request_handler=MotoRequestHandler)
    server.serve_forever()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, timeout: float = 60.0) -> None:
    import urllib3

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib3.request("GET", url, timeout=2, redirect=False)
            return
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer in {timeout} s")


def bench_json(moto: str, path: str) -> dict[str, int]:
    import urllib3

    return dict(json.loads(urllib3.request("GET", f"{moto}/__bench/{path}").data))


def server_env(var: Path, moto: str, cache_kind: str) -> dict[str, str]:
    env = {
        **os.environ,
        **FAKE_AWS,
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "EVENTOPS_VAR_DIR": str(var),
        "AWS_ENDPOINT_URL": moto,
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false",
        "LOG_LEVEL": "ERROR",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("AWS_PROFILE", None)
    env.pop("EVENTOPS_CACHE_TTL", None)
    if cache_kind == "redis":
        env["REDIS_URL"] = REDIS_URL
    else:
        env.pop("REDIS_URL", None)
    return env


def session_cookie(env: dict[str, str]) -> str:
    """A signed-in session in the servers' database (created by a subprocess with their env)."""
    script = (
        "import django; django.setup()\n"
        "from django.contrib.auth.models import User\n"
        "from django.contrib.sessions.backends.db import SessionStore\n"
        "user, _ = User.objects.get_or_create(username='bench')\n"
        "s = SessionStore(); s['_auth_user_id'] = str(user.pk)\n"
        "from django.conf import settings\n"
        "backend = next(b for b in settings.AUTHENTICATION_BACKENDS if 'axes' not in b)\n"
        "s['_auth_user_backend'] = backend\n"
        "s['_auth_user_hash'] = user.get_session_auth_hash(); s.create()\n"
        "print(s.session_key)\n"
    )
    python = sys.executable
    subprocess.run(
        [python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    out = subprocess.run(
        [python, "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


def start_server(kind: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    """The server, its output to ``log``: a pipe nobody reads fills up after some 600
    request lines of runserver's log, and every request then waits on the logging lock
    (that, not the server, made the threaded rows' 30 s p95 before stop 22)."""
    python = sys.executable
    if kind == "threaded":
        command = [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    else:
        gunicorn = str(Path(python).parent / "gunicorn")
        command = [
            gunicorn,
            "dashboard.wsgi",
            "--workers",
            "4",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def viewers_run(
    base: str, cookie: str, viewers: int, seconds: float, queue_page: str
) -> tuple[list[float], int]:
    """``viewers`` threads, each polling the overview rows and a queue page every second."""
    import urllib3

    # A read that times out is an error, not retried: a retry would hide a hung request.
    pool = urllib3.PoolManager(
        maxsize=max(4, viewers),
        timeout=urllib3.Timeout(30),
        retries=urllib3.Retry(total=1, read=0, redirect=0),
    )
    headers = {"Cookie": f"sessionid={cookie}"}
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def fetch(path: str, extra: dict[str, str]) -> None:
        started = time.perf_counter()
        try:
            response = pool.request(
                "GET", base + path, headers={**headers, **extra}, redirect=False
            )
            ok = response.status == 200
        except Exception:
            ok = False
        elapsed = (time.perf_counter() - started) * 1000
        with lock:
            latencies.append(elapsed)
            if not ok:
                errors[0] += 1

    def viewer(index: int) -> None:
        # Viewers do not poll in lockstep: each starts at its own point of the second.
        time.sleep(index / max(viewers, 1))
        while time.monotonic() < stop:
            tick = time.monotonic()
            fetch("/env/default/", {"HX-Request": "true"})
            fetch(queue_page, {})
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))

    threads = [threading.Thread(target=viewer, args=(i,)) for i in range(viewers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors[0]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def load(
    size: int,
    seconds: float,
    viewer_counts: list[int],
    servers: list[str],
    caches: list[str],
    rounds: int,
) -> None:
    import boto3

    moto_port = free_port()
    moto = f"http://127.0.0.1:{moto_port}"
    python = sys.executable
    moto_process = subprocess.Popen(
        [python, str(Path(__file__).resolve()), "--moto-server", str(moto_port)],
        cwd=ROOT,
        env={**os.environ, **FAKE_AWS, "PYTHONPATH": str(ROOT)},
        start_new_session=True,
    )
    try:
        wait_for(f"{moto}/__bench/calls")
        kwargs = {"region_name": REGION, "endpoint_url": moto, **_credentials()}
        started = time.perf_counter()
        build(
            size,
            boto3.client("sqs", **kwargs),
            boto3.client("events", **kwargs),
            boto3.client("cloudwatch", **kwargs),
        )
        bench_json(moto, "tick")
        print(
            f"eventops overview load: {size} consumers on a moto server (built in "
            f"{time.perf_counter() - started:.0f} s), each viewer polls the overview rows and "
            f"a queue page every second for {seconds:.0f} s; TTL 15 s (default)"
        )
        print(
            f"{rounds} round(s) of each; figures are the median of the rounds (range in "
            "brackets), errors their sum; a request that fails or waits over 30 s is an error"
        )
        print(
            f"{'server':<10} {'cache':<6} {'viewers':>7} {'requests':>17} {'AWS calls':>13} "
            f"{'x 1 viewer':>16} {'p50 ms':>13} {'p95 ms':>16} {'errors':>6}"
        )
        queue_page = f"/env/default/queues/bench-c{size - 1:04d}/"
        for server in servers:
            for cache_kind in caches:
                _load_one(server, cache_kind, moto, seconds, viewer_counts, queue_page, rounds)
    finally:
        os.killpg(moto_process.pid, signal.SIGTERM)
        moto_process.wait(timeout=10)


def _credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": FAKE_AWS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": FAKE_AWS["AWS_SECRET_ACCESS_KEY"],
    }


def _load_one(
    server: str,
    cache_kind: str,
    moto: str,
    seconds: float,
    viewer_counts: list[int],
    queue_page: str,
    rounds: int,
) -> None:
    if cache_kind == "redis":
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
    var = Path(tempfile.mkdtemp(prefix="eventops-load-"))
    env = server_env(var, moto, cache_kind)
    cookie = session_cookie(env)
    port = free_port()
    process = start_server(server, port, env, var / "server.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/healthz")
        # The first fill (one fetch, every viewer waits for it) is not part of the runs.
        _, errors = viewers_run(base, cookie, 1, 3, queue_page)
        if errors:
            # A bench that counts refusals (a login redirect) as requests measures nothing.
            raise SystemExit(f"{server}/{cache_kind}: the first requests were refused")
        # Rounds interleave the viewer counts, so each round's ratio is against the one
        # viewer measured in that same round.
        # Per viewer count, per round: requests, AWS calls, calls / one viewer's, p50, p95
        # and errors.
        runs: dict[int, list[tuple[float, ...]]] = {v: [] for v in viewer_counts}
        for _ in range(rounds):
            baseline = None
            for viewers in viewer_counts:
                bench_json(moto, "reset")
                latencies, errors = viewers_run(base, cookie, viewers, seconds, queue_page)
                calls = sum(bench_json(moto, "calls").values())
                baseline = baseline if baseline is not None else max(calls, 1)
                runs[viewers].append(
                    (
                        len(latencies),
                        calls,
                        calls / baseline,
                        percentile(latencies, 0.5),
                        percentile(latencies, 0.95),
                        errors,
                    )
                )
        for viewers in viewer_counts:
            rows = runs[viewers]
            print(
                f"{server:<10} {cache_kind:<6} {viewers:>7} {_figure(rows, 0, '.0f'):>17} "
                f"{_figure(rows, 1, '.0f'):>13} {_figure(rows, 2, '.2f'):>16} "
                f"{_figure(rows, 3, '.0f'):>13} {_figure(rows, 4, '.0f'):>16} "
                f"{sum(int(row[5]) for row in rows):>6}",
                flush=True,
            )
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(var, ignore_errors=True)


def _figure(rows: list[tuple[float, ...]], index: int, fmt: str) -> str:
    """The median of the rounds' figure, its range in brackets (one round: the value)."""
    values = [row[index] for row in rows]
    if len(values) == 1:
        return format(values[0], fmt)
    middle = format(statistics.median(values), fmt)
    return f"{middle} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="200,1000")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--load", action="store_true")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--viewers", default="1,20,50")
    parser.add_argument("--servers", default="threaded,gunicorn")
    parser.add_argument("--caches", default="file,redis")
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--moto-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.moto_server:
        moto_server(args.moto_server)
    elif args.load:
        load(
            args.size,
            args.seconds,
            [int(v) for v in args.viewers.split(",")],
            args.servers.split(","),
            args.caches.split(","),
            max(1, args.rounds),
        )
    else:
        in_process([int(n) for n in args.sizes.split(",")], max(5, args.rounds))


if __name__ == "__main__":
    main()
