"""The devstack's AWS emulator extensions: what moto 5 lacks and the dashboard needs.

Installed inside the process that runs moto (``ThreadedMotoServer`` or ``mock_aws``), this
package extends moto's own backends so that plain AWS API calls see what AWS would show:

====================  ========================================================================
X-Ray                 ``GetTraceSummaries`` with filter expressions, annotations, pagination
                      (:mod:`.xray`)
AWS/SQS metrics       gauges and counters per queue, written to moto's CloudWatch by
                      :meth:`Emulator.tick` (:mod:`.metrics`, :mod:`.hooks`)
AWS/Lambda metrics    from :meth:`Emulator.record_lambda_invocation`
AWS/Events metrics    MatchedEvents/Invocations/FailedInvocations per rule
CloudWatch alarms     evaluation on each tick, composite alarms, ``DescribeAlarmHistory``,
                      SNS notifications, AWS's ``DescribeAlarms`` filters (:mod:`.alarms`);
                      metric-math alarms, and ``PutMetricAlarm`` refusing a bad ``Metrics``
                      list (:mod:`.math_alarms`)
CloudWatch reads      ``GetMetricData`` periods aligned like AWS, exact dimension sets, and
                      with ``ListMetrics`` fast over hours of samples (:mod:`.metrics`); metric
                      math and AWS's request checks (:mod:`.metric_queries`,
                      :mod:`.metric_math`)
EventSchemas          the ``schemas`` service (:mod:`.schemas`)
SQS                   ``DeadLetterQueueSourceArn`` on dead-lettered messages; ``AWSTraceHeader``
                      carried from ``PutEvents`` entries to the messages of SQS targets
EventBridge           DISABLED rules deliver nothing (moto ignores the state); replays in the
                      background, in their window, to their ``FilterArns`` rules, with
                      progress and cancel (:mod:`.replays`)
API checks            ``DescribeAlarms`` ``StateValue``, ``BatchGetTraces`` at most 5 IDs,
                      ``ListDeadLetterSourceQueues`` paging, SQS ``ReceiveMessage`` errors
                      worded once (:mod:`.api_checks`)
DynamoDB              per-table write locks and item-level transaction rollback, TTL deletion,
                      stream retention (:mod:`.dynamodb`)
retention             every history moto keeps expires or is capped, as on AWS
                      (:mod:`.retention`, run by :meth:`Emulator.housekeep`)
moto itself           no instance tracking, cached request routing, the event envelope's
                      ``account`` (:mod:`.moto_fixes`)
====================  ========================================================================

Every change to moto goes through one :class:`~._patches.Patcher`, which refuses to replace
what the installed moto does not have (:class:`~._patches.MotoIncompatible`).

Usage (the devstack)::

    from infra.devstack import emulator

    emu = emulator.install()          # before or after starting ThreadedMotoServer
    emu.start(interval_s=60)          # background sampling + alarm evaluation
    runner_observer = lambda inv: emulator.record_lambda_invocation(
        inv.function_name, (inv.end - inv.start) * 1000, error=inv.fault)
    ...
    emulator.uninstall()              # stops the loop and replays, restores stock moto

Tests call :meth:`Emulator.tick` (and :meth:`Emulator.housekeep`) instead of starting the loop.
Everything is reversible: ``uninstall()`` restores every patched moto attribute.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from infra.devstack.emulator import (
    alarms,
    api_checks,
    dynamodb,
    hooks,
    math_alarms,
    metric_queries,
    metrics,
    moto_fixes,
    replays,
    retention,
    schemas,
    xray,
)
from infra.devstack.emulator._patches import MotoIncompatible, Patcher, moto_version

log = logging.getLogger(__name__)

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"
DEFAULT_INTERVAL_S = 60.0
DEFAULT_RETENTION = timedelta(hours=6)
DEFAULT_HOUSEKEEPING_INTERVAL_S = 60.0
Limits = retention.Limits

__all__ = [
    "DEFAULT_INTERVAL_S",
    "Emulator",
    "Limits",
    "MotoIncompatible",
    "TickReport",
    "current",
    "install",
    "moto_version",
    "record_lambda_invocation",
    "start",
    "stop",
    "tick",
    "uninstall",
]


@dataclass(frozen=True)
class TickReport:
    """What one :meth:`Emulator.tick` did."""

    at: datetime
    datapoints: int
    alarm_changes: int


class Emulator:
    """The installed extensions plus the sampling/evaluation loop.

    ``interval_s``: loop period (default 60 s, as AWS publishes SQS metrics).
    ``xray_page_size``: summaries per ``GetTraceSummaries`` page.
    ``metric_retention``: how long the emulator keeps the datapoints it wrote (moto scans every
    datapoint on each ``GetMetricData``, so an unbounded history would slow the dashboard down).
    ``region`` / ``account_id``: where :meth:`record_lambda_invocation` files its metrics.
    ``limits``: how much history (traces, log events, archived events, stream records) the
    emulator keeps (:class:`~.retention.Limits`); :meth:`housekeep` applies them.
    """

    def __init__(
        self,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        xray_page_size: int = xray.DEFAULT_PAGE_SIZE,
        metric_retention: timedelta = DEFAULT_RETENTION,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT,
        limits: retention.Limits | None = None,
        housekeeping_interval_s: float = DEFAULT_HOUSEKEEPING_INTERVAL_S,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.interval_s = interval_s
        self.xray_page_size = xray_page_size
        self.metric_retention = metric_retention
        self.region = region
        self.account_id = account_id
        self.limits = limits or retention.Limits()
        self.housekeeping_interval_s = housekeeping_interval_s
        self._last_housekeeping = 0.0
        self.counters = metrics.Counters()
        self._patcher = Patcher()
        self._installed = False
        self._tick_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- install / uninstall ------------------------------------------------------------------

    @property
    def installed(self) -> bool:
        return self._installed

    def install(self) -> Emulator:
        """Patch moto's classes (idempotent).

        Raises :class:`MotoIncompatible` (and leaves moto untouched) if the installed moto lacks
        something a patch replaces.
        """
        if self._installed:
            return self
        from moto.cloudwatch.models import CloudWatchBackend
        from moto.cloudwatch.responses import CloudWatchResponse
        from moto.events.models import EventsBackend, Rule
        from moto.sqs.models import SQSBackend
        from moto.sqs.responses import SQSResponse
        from moto.xray.models import SegmentCollection
        from moto.xray.responses import XRayResponse

        p = self._patcher
        try:
            moto_fixes.install(p)
            dynamodb.install(p)
            p.setattr(
                XRayResponse,
                "get_trace_summaries",
                xray.make_handler(lambda: self.xray_page_size),
            )
            p.setattr(
                SegmentCollection,
                "put_segment",
                xray.wrap_put_segment(SegmentCollection.put_segment),
                requires=("segment",),
            )
            p.setattr(
                SQSBackend,
                "send_message",
                hooks.wrap_send_message(SQSBackend.send_message, self.counters),
                requires=hooks.SEND_MESSAGE_PARAMETERS,
            )
            p.setattr(
                SQSBackend,
                "receive_message",
                hooks.wrap_receive_message(SQSBackend.receive_message, self.counters),
                requires=("queue_name",),
            )
            p.setattr(
                SQSBackend,
                "delete_message",
                hooks.wrap_delete_message(SQSBackend.delete_message, self.counters),
                requires=("queue_name", "receipt_handle"),
            )
            p.setattr(
                SQSResponse,
                "receive_message",
                hooks.wrap_receive_response(SQSResponse.receive_message),
            )
            p.setattr(
                EventsBackend,
                "put_events",
                hooks.wrap_put_events(EventsBackend.put_events),
                requires=("events",),
            )
            p.setattr(
                Rule,
                "send_to_targets",
                hooks.wrap_send_to_targets(Rule.send_to_targets, self.counters),
                requires=("original_event",),
            )
            p.setattr(
                CloudWatchBackend,
                "put_metric_alarm",
                alarms.wrap_put_metric_alarm(CloudWatchBackend.put_metric_alarm),
                requires=("name",),
            )
            p.setattr(
                CloudWatchBackend,
                "set_alarm_state",
                alarms.wrap_set_alarm_state(CloudWatchBackend.set_alarm_state),
                requires=("alarm_name", "reason", "reason_data", "state_value"),
            )
            p.setattr(
                CloudWatchBackend,
                "delete_alarms",
                alarms.wrap_delete_alarms(CloudWatchBackend.delete_alarms),
                requires=("alarm_names",),
            )
            p.setattr(
                CloudWatchBackend,
                "get_metric_data",
                metrics.wrap_get_metric_data(CloudWatchBackend.get_metric_data),
                requires=("queries", "start_time", "end_time", "scan_by"),
            )
            p.setattr(
                CloudWatchBackend,
                "get_filtered_metrics",
                metrics.wrap_get_filtered_metrics(CloudWatchBackend.get_filtered_metrics),
                requires=("metric_name", "namespace", "dimensions"),
            )
            p.setattr(CloudWatchResponse, "describe_alarms", alarms.describe_alarms)
            # moto has no handler for these two actions: they are added, not replaced.
            p.setattr(
                CloudWatchResponse,
                "describe_alarm_history",
                alarms.describe_alarm_history,
                new=True,
            )
            p.setattr(
                CloudWatchResponse, "put_composite_alarm", alarms.put_composite_alarm, new=True
            )
            schemas.register(p)
            self.replays = replays.register(p)
            p.setattr(
                CloudWatchBackend,
                "get_metric_data",
                metric_queries.wrap_get_metric_data(CloudWatchBackend.get_metric_data),
            )
            p.setattr(
                CloudWatchBackend,
                "put_metric_alarm",
                math_alarms.wrap_put_metric_alarm(CloudWatchBackend.put_metric_alarm),
            )
            api_checks.register(p)
        except Exception:
            p.undo_all()
            raise
        self._installed = True
        log.info("emulator extensions installed (%d patches)", len(p))
        return self

    def uninstall(self) -> None:
        """Stop the loop and restore every patched moto attribute."""
        self.stop()
        self._patcher.undo_all()
        self._installed = False

    # --- the loop -----------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> TickReport:
        """Sample all metrics, then evaluate all alarms, as of ``now`` (default: the clock).

        ``now`` may be naive (UTC, like moto) or aware.
        """
        when = alarms.utc_naive(now or datetime.now(UTC))
        with self._tick_lock:
            written = metrics.sample(self.counters, when, self.metric_retention)
            changes = alarms.evaluate_all(when)
        return TickReport(when, written, changes)

    def housekeep(self, now: datetime | None = None) -> dict[str, int]:
        """Expire and cap every history moto keeps (:func:`.retention.sweep`), as of ``now``.

        Returns how many items of each kind were dropped.
        """
        when = alarms.utc_naive(now or datetime.now(UTC))
        with self._tick_lock:
            return retention.sweep(when, self.limits)

    def start(self, interval_s: float | None = None) -> None:
        """Run :meth:`tick` every ``interval_s`` seconds in a daemon thread (idempotent)."""
        if interval_s is not None:
            if interval_s <= 0:
                raise ValueError("interval_s must be positive")
            self.interval_s = interval_s
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="emulator-tick", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
                if time.monotonic() - self._last_housekeeping >= self.housekeeping_interval_s:
                    self._last_housekeeping = time.monotonic()
                    self.housekeep()
            except Exception:
                # A failed sample must not end the loop: the next one may well succeed.
                log.exception("emulator tick failed")
            self._stop.wait(self.interval_s)

    # --- Lambda metrics -----------------------------------------------------------------------

    def record_lambda_invocation(
        self,
        function_name: str,
        duration_ms: float,
        error: bool = False,
        *,
        throttled: bool = False,
        region: str | None = None,
        account_id: str | None = None,
    ) -> None:
        """Count one invocation for AWS/Lambda Invocations, Errors, Throttles and Duration."""
        self.counters.lambda_invocation(
            account_id or self.account_id,
            region or self.region,
            function_name,
            duration_ms,
            error,
            throttled,
        )


_current: Emulator | None = None
_current_lock = threading.Lock()


def install(**options: Any) -> Emulator:
    """Install the extensions once per process and return the :class:`Emulator`.

    Options are :class:`Emulator`'s keyword arguments; they apply on the first call only.
    """
    global _current
    with _current_lock:
        if _current is None or not _current.installed:
            _current = Emulator(**options).install()
        return _current


def current() -> Emulator | None:
    """The installed emulator, if any."""
    return _current if _current is not None and _current.installed else None


def uninstall() -> None:
    """Stop the loop and restore stock moto (no-op when not installed)."""
    global _current
    with _current_lock:
        if _current is not None:
            _current.uninstall()
        _current = None


def _require() -> Emulator:
    emulator = current()
    if emulator is None:
        raise RuntimeError("the emulator is not installed; call emulator.install() first")
    return emulator


def tick(now: datetime | None = None) -> TickReport:
    return _require().tick(now)


def start(interval_s: float | None = None) -> None:
    _require().start(interval_s)


def stop() -> None:
    emulator = current()
    if emulator is not None:
        emulator.stop()


def record_lambda_invocation(
    function_name: str, duration_ms: float, error: bool = False, *, throttled: bool = False
) -> None:
    """Module-level shortcut; a no-op when the emulator is not installed (e.g. on real AWS)."""
    emulator = current()
    if emulator is not None:
        emulator.record_lambda_invocation(function_name, duration_ms, error, throttled=throttled)
