"""CloudWatch alarms as AWS runs them: evaluation, composite alarms, history and actions.

moto stores alarms but never evaluates them, starts every alarm in ``OK``, resets the state when
an alarm is updated, has no ``DescribeAlarmHistory`` and no ``PutCompositeAlarm``, and returns
composite alarms from ``DescribeAlarms`` even when ``AlarmTypes`` does not ask for them. This
module fixes that on moto's ``CloudWatchBackend`` / ``CloudWatchResponse``:

- :func:`evaluate_all` evaluates every metric alarm against the datapoints in the backend
  (``Statistic``/``ExtendedStatistic``, ``Period``, ``EvaluationPeriods``, ``DatapointsToAlarm``,
  ``Threshold``, ``ComparisonOperator``, ``TreatMissingData``, ``Unit``), then every composite
  alarm from its ``AlarmRule``;
- each state change (also from ``SetAlarmState``) records a ``StateUpdate`` history item with
  AWS's ``HistoryData`` JSON, and publishes the alarm/OK/insufficient-data actions that are SNS
  topics with CloudWatch's JSON message, recording an ``Action`` history item;
- ``PutMetricAlarm`` creates alarms in ``INSUFFICIENT_DATA`` and keeps the state on update,
  recording ``ConfigurationUpdate`` items, as AWS does.

Evaluation windows are aligned to the period. The newest window is the one containing "now" if
it already has data, else the previous one: a demo sees alarms react within one sample, and
alarms do not flap to missing data at each period boundary.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.cloudwatch.exceptions import ValidationError
from moto.cloudwatch.models import (
    Alarm,
    CloudWatchBackend,
    MetricAggregatedDatum,
    MetricDatum,
)
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, EmptyResult

log = logging.getLogger(__name__)

HISTORY_ATTR = "_eventops_alarm_history"
TRANSITION_ATTR = "_eventops_transitioned_at"
INITIAL_REASON = "Unchecked: Initial alarm creation"
STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
# AWS keeps about two weeks of history; a flapping demo alarm must not grow it without bound.
HISTORY_LIMIT = 20_000
_history_lock = threading.RLock()

REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)",
    "eu-west-1": "EU (Ireland)",
    "eu-west-2": "EU (London)",
    "eu-central-1": "EU (Frankfurt)",
    "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-southeast-2": "Asia Pacific (Sydney)",
    "ap-northeast-1": "Asia Pacific (Tokyo)",
}

OPERATORS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}


class InvalidNextToken(ServiceException):
    code = "InvalidNextToken"


# --- time formats -------------------------------------------------------------------------------


def utc_naive(value: datetime) -> datetime:
    """moto keeps naive UTC datetimes; normalise anything aware to that."""
    if value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def iso(value: datetime) -> str:
    """``2026-11-26T14:46:10.123+0000``, CloudWatch's format inside JSON documents."""
    return utc_naive(value).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def short(value: datetime) -> str:
    """``26/11/26 14:46:00``, the format inside StateReason."""
    return value.strftime("%d/%m/%y %H:%M:%S")


def epoch(value: datetime) -> float:
    return (utc_naive(value) - datetime(1970, 1, 1)).total_seconds()


def long_date(value: datetime) -> str:
    """``Thursday 26 November, 2026 14:46:10 UTC``, the format in composite alarm reasons."""
    return value.strftime("%A %d %B, %Y %H:%M:%S UTC")


# --- history ------------------------------------------------------------------------------------


def alarm_type(alarm: Alarm) -> str:
    return "CompositeAlarm" if alarm.rule is not None else "MetricAlarm"


def history(backend: CloudWatchBackend) -> list[dict[str, Any]]:
    """The backend's recorded alarm history (kept in its ``__dict__`` so moto's reset clears it)."""
    with _history_lock:
        items = backend.__dict__.get(HISTORY_ATTR)
        if items is None:
            items = []
            backend.__dict__[HISTORY_ATTR] = items
        return items


def record(
    backend: CloudWatchBackend,
    alarm: Alarm,
    item_type: str,
    summary: str,
    data: dict[str, Any],
    when: datetime,
) -> None:
    with _history_lock:
        items = history(backend)
        if len(items) >= HISTORY_LIMIT:
            del items[: len(items) - HISTORY_LIMIT + 1]
        items.append(
            {
                "AlarmName": alarm.name,
                "AlarmType": alarm_type(alarm),
                "Timestamp": utc_naive(when),
                "HistoryItemType": item_type,
                "HistorySummary": summary,
                "HistoryData": json.dumps(data, separators=(",", ":")),
            }
        )


def _json_or_none(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def after_transition(
    backend: CloudWatchBackend,
    alarm: Alarm,
    old_state: str,
    old_reason: str,
    old_reason_data: str | None,
    when: datetime,
) -> None:
    """Record the StateUpdate history item and run the new state's actions."""
    alarm.__dict__[TRANSITION_ATTR] = utc_naive(when)
    alarm.state_updated_timestamp = utc_naive(when)
    old: dict[str, Any] = {"stateValue": old_state, "stateReason": old_reason}
    new: dict[str, Any] = {"stateValue": alarm.state_value, "stateReason": alarm.state_reason}
    for target, text in ((old, old_reason_data), (new, alarm.state_reason_data)):
        parsed = _json_or_none(text)
        if parsed:
            target["stateReasonData"] = parsed
    record(
        backend,
        alarm,
        "StateUpdate",
        f"Alarm updated from {old_state} to {alarm.state_value}",
        {"version": "1.0", "oldState": old, "newState": new},
        when,
    )
    run_actions(backend, alarm, old_state, when)


def transition(
    backend: CloudWatchBackend,
    alarm: Alarm,
    state: str,
    reason: str,
    reason_data: dict[str, Any] | None,
    when: datetime,
) -> bool:
    """Move ``alarm`` to ``state`` (no-op if already there); returns whether it changed."""
    if alarm.state_value == state:
        return False
    old_state, old_reason, old_data = alarm.state_value, alarm.state_reason, alarm.state_reason_data
    data_text = json.dumps(reason_data, separators=(",", ":")) if reason_data else None
    alarm.update_state(reason, data_text, state)  # type: ignore[arg-type]
    after_transition(backend, alarm, old_state, old_reason, old_data, when)
    return True


# --- actions (SNS) ------------------------------------------------------------------------------


def notification(backend: CloudWatchBackend, alarm: Alarm, old_state: str, when: datetime) -> str:
    """The JSON message CloudWatch publishes to SNS for an alarm state change."""
    message: dict[str, Any] = {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description or None,
        "AWSAccountId": backend.account_id,
        "AlarmConfigurationUpdatedTimestamp": iso(alarm.configuration_updated_timestamp),
        "NewStateValue": alarm.state_value,
        "NewStateReason": alarm.state_reason,
        "StateChangeTime": iso(when),
        "Region": REGION_NAMES.get(backend.region_name, backend.region_name),
        "AlarmArn": alarm.alarm_arn,
        "OldStateValue": old_state,
        "OKActions": list(alarm.ok_actions),
        "AlarmActions": list(alarm.alarm_actions),
        "InsufficientDataActions": list(alarm.insufficient_data_actions),
    }
    if alarm.rule is not None:
        data = _json_or_none(alarm.state_reason_data) or {}
        message["AlarmRule"] = alarm.rule
        message["TriggeringChildren"] = [
            {
                "Arn": child["arn"],
                "State": {
                    "Value": child["state"]["value"],
                    "Timestamp": child["state"]["timestamp"],
                },
            }
            for child in data.get("triggeringAlarms", [])
        ]
    else:
        evaluation = {
            "Period": _int(alarm.period),
            "EvaluationPeriods": _int(alarm.evaluation_periods),
            "DatapointsToAlarm": _int(alarm.datapoints_to_alarm or alarm.evaluation_periods),
            "ComparisonOperator": alarm.comparison_operator,
            "Threshold": _float(alarm.threshold),
            "TreatMissingData": alarm.treat_missing_data or "missing",
            "EvaluateLowSampleCountPercentile": alarm.evaluate_low_sample_count_percentile or "",
        }
        if alarm.metric_data_queries and any(q.expression for q in alarm.metric_data_queries):
            # A metric-math alarm's trigger lists its queries instead of one metric.
            metrics = [query_shape(q) for q in alarm.metric_data_queries]
            message["Trigger"] = {**evaluation, "Metrics": metrics}
        else:
            message["Trigger"] = {
                "MetricName": alarm.metric_name,
                "Namespace": alarm.namespace,
                "StatisticType": "ExtendedStatistic" if alarm.extended_statistic else "Statistic",
                "Statistic": (alarm.statistic or "").upper()
                if not alarm.extended_statistic
                else None,
                "ExtendedStatistic": alarm.extended_statistic,
                "Unit": alarm.unit,
                "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions],
                **evaluation,
            }
    return json.dumps(message)


def run_actions(backend: CloudWatchBackend, alarm: Alarm, old_state: str, when: datetime) -> None:
    if not alarm.actions_enabled:
        return
    actions = {
        "ALARM": alarm.alarm_actions,
        "OK": alarm.ok_actions,
        "INSUFFICIENT_DATA": alarm.insufficient_data_actions,
    }.get(alarm.state_value, [])
    for action in actions or []:
        parts = action.split(":")
        if len(parts) < 6 or parts[2] != "sns":
            continue  # EC2/Auto Scaling/SSM actions have no effect in the emulator.
        message = notification(backend, alarm, old_state, when)
        subject = f'{alarm.state_value}: "{alarm.name}" in {REGION_NAMES.get(parts[3], parts[3])}'
        data: dict[str, Any] = {
            "stateUpdateTimestamp": int(epoch(when) * 1000),
            "notificationResource": action,
            "publishedMessage": message,
        }
        try:
            from moto.sns.models import sns_backends

            sns_backends[parts[4]][parts[3]].publish(message, arn=action, subject=subject[:100])
        except Exception as exc:
            log.warning("alarm %s: action %s failed: %s", alarm.name, action, exc)
            data.update(actionState="Failed", error=str(exc))
            record(backend, alarm, "Action", f"Failed to execute action {action}", data, when)
        else:
            data["actionState"] = "Succeeded"
            record(backend, alarm, "Action", f"Successfully executed action {action}", data, when)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


# --- metric alarm evaluation --------------------------------------------------------------------

SeriesKey = tuple[str, str, frozenset[tuple[str, str]]]


def index_metrics(
    backend: CloudWatchBackend, wanted: set[tuple[str, str]], since: datetime
) -> dict[SeriesKey, list[Any]]:
    """Group the datapoints of the ``wanted`` (namespace, name) pairs newer than ``since``."""
    from infra.devstack.emulator.metrics import series_key

    series: dict[SeriesKey, list[Any]] = {}
    for datum in list(backend.get_all_metrics()):
        if (datum.namespace, datum.name) in wanted and datum.timestamp >= since:
            series.setdefault(series_key(datum), []).append(datum)
    return series


def statistic(datums: list[Any], stat: str) -> tuple[float, float] | None:
    """(value, sample count) of one statistic over datapoints, or None without data."""
    singles = [float(d.value) for d in datums if isinstance(d, MetricDatum)]
    aggregated = [d for d in datums if isinstance(d, MetricAggregatedDatum)]
    count = len(singles) + sum(float(a.sample_count) for a in aggregated)
    if count == 0:
        return None
    total = sum(singles) + sum(float(a.sum) for a in aggregated)
    if stat == "SampleCount":
        return count, count
    if stat == "Sum":
        return total, count
    if stat == "Average":
        return total / count, count
    if stat == "Minimum":
        return min(singles + [float(a.min) for a in aggregated]), count
    if stat == "Maximum":
        return max(singles + [float(a.max) for a in aggregated]), count
    match = re.fullmatch(r"p(\d+(?:\.\d+)?)", stat)
    if match:
        # Aggregated sets have no distribution; their average stands in for their samples.
        values = sorted(singles + [float(a.sum) / float(a.sample_count) for a in aggregated])
        rank = max(1, math.ceil(float(match.group(1)) / 100 * len(values)))
        return values[min(rank, len(values)) - 1], count
    return None


@dataclass
class Target:
    namespace: str
    metric_name: str
    dimensions: frozenset[tuple[str, str]]
    period: int
    stat: str
    unit: str | None


def target_of(alarm: Alarm) -> Target | None:
    """What a metric alarm watches; None for metric-math alarms (not evaluated)."""
    if alarm.metric_data_queries:
        returned = [q for q in alarm.metric_data_queries if q.return_data in (None, True, "true")]
        if len(returned) != 1 or returned[0].metric_stat is None:
            return None
        stat = returned[0].metric_stat
        return Target(
            stat.metric.namespace,
            stat.metric.metric_name,
            frozenset((str(d.name), str(d.value)) for d in stat.metric.dimensions),
            int(stat.period),
            str(stat.stat),
            stat.unit,
        )
    stat_name = alarm.extended_statistic or alarm.statistic
    if not (alarm.namespace and alarm.metric_name and stat_name and alarm.period):
        return None
    return Target(
        alarm.namespace,
        alarm.metric_name,
        frozenset((str(d.name), str(d.value)) for d in alarm.dimensions),
        int(alarm.period),
        str(stat_name),
        alarm.unit,
    )


def evaluate_metric_alarm(
    alarm: Alarm, series: dict[SeriesKey, list[Any]], now: datetime
) -> tuple[str, str, dict[str, Any]] | None:
    """(state, reason, reason data) for a metric alarm, or None to leave it as it is."""
    target = target_of(alarm)
    if target is None or target.period <= 0:
        return None
    periods = max(1, int(alarm.evaluation_periods or 1))
    datums = series.get((target.namespace, target.metric_name, target.dimensions), [])
    if target.unit:
        datums = [d for d in datums if d.unit == target.unit]
    period = timedelta(seconds=target.period)
    now = utc_naive(now)
    newest = datetime(1970, 1, 1) + timedelta(seconds=(epoch(now) // target.period) * target.period)
    if not any(newest <= d.timestamp < newest + period for d in datums):
        newest -= period
    windows = [newest - i * period for i in range(periods)]
    points: list[tuple[datetime, tuple[float, float | None] | None]] = []
    for start in windows:
        in_window = [d for d in datums if start <= d.timestamp < start + period]
        points.append((start, statistic(in_window, target.stat)))
    stat_key = "statistic" if not alarm.extended_statistic else "extendedStatistic"
    return judge(alarm, target.period, points, now, {stat_key: target.stat})


def judge(
    alarm: Alarm,
    period_s: int,
    points: list[tuple[datetime, tuple[float, float | None] | None]],
    now: datetime,
    extra: dict[str, Any] | None = None,
) -> tuple[str, str, dict[str, Any]] | None:
    """The alarm's state from its evaluated periods, newest first: (window start, (value,
    sample count or None) or None when missing). Metric and metric-math alarms share this."""
    operator = OPERATORS.get(alarm.comparison_operator or "")
    if operator is None or alarm.threshold is None or not points:
        return None
    compare, words = operator
    threshold = float(alarm.threshold)
    periods = len(points)
    needed = max(1, int(alarm.datapoints_to_alarm or periods))
    windows = [start for start, _ in points]
    present = [(start, value) for start, value in points if value is not None]
    missing = periods - len(present)
    treat = alarm.treat_missing_data or "missing"
    data: dict[str, Any] = {
        "version": "1.0",
        "queryDate": iso(now),
        "startDate": iso(windows[-1]),
        **(extra or {}),
        "period": period_s,
        "recentDatapoints": [round(v[0], 6) for _, v in present],
        "threshold": threshold,
        "evaluatedDatapoints": [
            {"timestamp": iso(start), "sampleCount": v[1], "value": round(v[0], 6)}
            if v[1] is not None
            else {"timestamp": iso(start), "value": round(v[0], 6)}
            for start, v in present
        ],
    }
    if not present:
        if treat == "ignore":
            return None
        if treat == "missing":
            plural = "datapoint was" if periods == 1 else "datapoints were"
            return "INSUFFICIENT_DATA", f"Insufficient Data: {periods} {plural} unknown.", data
        state = "ALARM" if treat == "breaching" else "OK"
        label = "Breaching" if treat == "breaching" else "NonBreaching"
        reason = (
            f"Threshold Crossed: no datapoints were received for {periods} "
            f"period{'s' if periods > 1 else ''} and {missing} missing "
            f"datapoint{'s were' if missing > 1 else ' was'} treated as [{label}]."
        )
        return state, reason, data

    breaching = [(start, v) for start, v in present if compare(v[0], threshold)]
    breach_count = len(breaching) + (missing if treat == "breaching" else 0)
    shown = ", ".join(f"{round(v[0], 6)} ({short(start)})" for start, v in present)
    state = "ALARM" if breach_count >= needed else "OK"
    if periods == 1:
        verb = "was" if state == "ALARM" else "was not"
        reason = (
            f"Threshold Crossed: 1 datapoint [{shown}] {verb} {words} the threshold ({threshold})."
        )
    elif state == "ALARM":
        reason = (
            f"Threshold Crossed: {breach_count} out of the last {periods} datapoints [{shown}] "
            f"were {words} the threshold ({threshold}) (minimum {needed} "
            f"datapoint{'s' if needed > 1 else ''} for OK -> ALARM transition)."
        )
    else:
        reason = (
            f"Threshold Crossed: {periods - breach_count} out of the last {periods} datapoints "
            f"[{shown}] were not {words} the threshold ({threshold}) (minimum "
            f"{periods - needed + 1} datapoint{'s' if periods - needed + 1 > 1 else ''} "
            "for ALARM -> OK transition)."
        )
    return state, reason, data


# --- composite alarms ---------------------------------------------------------------------------

_RULE_TOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([A-Za-z_]+)(?=\s*\()|([^\s()"]+))')


@dataclass(frozen=True)
class RuleNode:
    kind: str  # and, or, not, state, const
    children: tuple[RuleNode, ...] = ()
    state: str = ""
    alarm: str = ""
    value: bool = False

    def names(self) -> set[str]:
        found = {self.alarm} if self.kind == "state" else set()
        for child in self.children:
            found |= child.names()
        return found


def _alarm_name(reference: str) -> str:
    return reference.split(":alarm:", 1)[1] if ":alarm:" in reference else reference


def parse_rule(rule: str) -> RuleNode:
    """Parse an ``AlarmRule``; raise ``ValueError`` with AWS-like wording on a bad rule."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = rule.strip()
    while pos < len(text):
        match = _RULE_TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ValueError(f"Unexpected character at position {pos}")
        pos = match.end()
        if match.group(1):
            tokens.append(("(", "("))
        elif match.group(2):
            tokens.append((")", ")"))
        elif match.group(3) is not None:
            tokens.append(("name", re.sub(r"\\(.)", r"\1", match.group(3))))
        elif match.group(4):
            # "OR (" looks like a call; the operators are never state functions.
            word = match.group(4)
            tokens.append(("word" if word.upper() in ("AND", "OR", "NOT") else "func", word))
        else:
            tokens.append(("word", match.group(5)))
        while pos < len(text) and text[pos].isspace():
            pos += 1
    position = 0

    def peek() -> tuple[str, str] | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal position
        if position >= len(tokens):
            raise ValueError("Unexpected end of AlarmRule")
        position += 1
        return tokens[position - 1]

    def is_word(word: str) -> bool:
        token = peek()
        return token is not None and token[0] == "word" and token[1].upper() == word

    def or_expr() -> RuleNode:
        nodes = [and_expr()]
        while is_word("OR"):
            take()
            nodes.append(and_expr())
        return nodes[0] if len(nodes) == 1 else RuleNode("or", tuple(nodes))

    def and_expr() -> RuleNode:
        nodes = [not_expr()]
        while is_word("AND"):
            take()
            nodes.append(not_expr())
        return nodes[0] if len(nodes) == 1 else RuleNode("and", tuple(nodes))

    def not_expr() -> RuleNode:
        if is_word("NOT"):
            take()
            return RuleNode("not", (not_expr(),))
        return primary()

    def primary() -> RuleNode:
        kind, value = take()
        if kind == "(":
            node = or_expr()
            if take()[0] != ")":
                raise ValueError("Expected )")
            return node
        if kind == "word" and value.upper() in ("TRUE", "FALSE"):
            return RuleNode("const", value=value.upper() == "TRUE")
        if kind == "func" and value.upper() in STATES:
            if take()[0] != "(":
                raise ValueError("Expected (")
            ref_kind, reference = take()
            if ref_kind not in ("name", "word"):
                raise ValueError("Expected an alarm name or ARN")
            if take()[0] != ")":
                raise ValueError("Expected )")
            return RuleNode("state", state=value.upper(), alarm=_alarm_name(reference))
        raise ValueError(f"Unexpected token {value!r}")

    if not tokens:
        raise ValueError("AlarmRule is empty")
    node = or_expr()
    if position != len(tokens):
        raise ValueError(f"Unexpected token {tokens[position][1]!r}")
    return node


def evaluate_rule(node: RuleNode, states: dict[str, str], matched: set[str]) -> bool:
    """Evaluate a rule; ``matched`` collects the children whose state made a term true."""
    if node.kind == "const":
        return node.value
    if node.kind == "state":
        hit = states.get(node.alarm, "INSUFFICIENT_DATA") == node.state
        if hit:
            matched.add(node.alarm)
        return hit
    if node.kind == "not":
        return not evaluate_rule(node.children[0], states, set())
    results = [evaluate_rule(child, states, matched) for child in node.children]
    return all(results) if node.kind == "and" else any(results)


def evaluate_composite(
    backend: CloudWatchBackend, alarm: Alarm, now: datetime
) -> tuple[str, str, dict[str, Any]] | None:
    try:
        node = parse_rule(alarm.rule or "")
    except ValueError:
        return None
    states = {name: a.state_value for name, a in backend.alarms.items()}
    matched: set[str] = set()
    state = "ALARM" if evaluate_rule(node, states, matched) else "OK"
    children = [backend.alarms[name] for name in sorted(node.names()) if name in backend.alarms]
    triggering = [c for c in children if c.name in matched] if state == "ALARM" else children
    if not triggering:
        triggering = children
    data = {
        "triggeringAlarms": [
            {
                "arn": child.alarm_arn,
                "state": {
                    "value": child.state_value,
                    "timestamp": iso(
                        child.__dict__.get(TRANSITION_ATTR, child.state_updated_timestamp)
                    ),
                },
            }
            for child in triggering
        ]
    }
    if triggering:
        latest = max(
            triggering, key=lambda c: c.__dict__.get(TRANSITION_ATTR, c.state_updated_timestamp)
        )
        changed = latest.__dict__.get(TRANSITION_ATTR, latest.state_updated_timestamp)
        reason = f"{latest.alarm_arn} transitioned to {latest.state_value} at {long_date(changed)}"
    else:
        reason = f"AlarmRule evaluated to {'TRUE' if state == 'ALARM' else 'FALSE'}"
    return state, reason, data


def evaluate_backend(backend: CloudWatchBackend, now: datetime) -> int:
    """Evaluate every alarm of one backend; returns the number of state changes."""
    alarms = list(backend.alarms.values())
    watched = [(a, t) for a in alarms if a.rule is None and (t := target_of(a)) is not None]
    # Only the datapoints some alarm can see: its periods plus the one in progress.
    longest = max((t.period * (int(a.evaluation_periods or 1) + 1) for a, t in watched), default=0)
    series = index_metrics(
        backend,
        {(t.namespace, t.metric_name) for _, t in watched},
        utc_naive(now) - timedelta(seconds=longest),
    )
    changes = 0
    from infra.devstack.emulator import math_alarms

    for alarm in alarms:
        if alarm.rule is not None:
            continue
        if math_alarms.is_math(alarm):
            outcome = math_alarms.evaluate(backend, alarm, now)
        else:
            outcome = evaluate_metric_alarm(alarm, series, now)
        if outcome and transition(backend, alarm, *outcome, when=now):
            changes += 1
    # Composite alarms may watch composite alarms: repeat until nothing moves (bounded).
    for _ in range(10):
        moved = 0
        for alarm in alarms:
            if alarm.rule is None:
                continue
            outcome = evaluate_composite(backend, alarm, now)
            if outcome and transition(backend, alarm, *outcome, when=now):
                moved += 1
        changes += moved
        if not moved:
            break
    return changes


def evaluate_all(now: datetime) -> int:
    from moto.cloudwatch.models import cloudwatch_backends

    changes = 0
    for _account, regions in list(cloudwatch_backends.items()):
        for _region, backend in list(regions.items()):
            try:
                changes += evaluate_backend(backend, now)
            except Exception:
                # One broken alarm definition must not stop the evaluation of the others.
                log.exception("alarm evaluation failed for %s/%s", _account, _region)
    return changes


# --- describe shapes ----------------------------------------------------------------------------


def metric_alarm_shape(alarm: Alarm) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "AlarmName": alarm.name,
        "AlarmArn": alarm.alarm_arn,
        "AlarmDescription": alarm.description,
        "AlarmConfigurationUpdatedTimestamp": alarm.configuration_updated_timestamp,
        "ActionsEnabled": bool(alarm.actions_enabled),
        "OKActions": list(alarm.ok_actions),
        "AlarmActions": list(alarm.alarm_actions),
        "InsufficientDataActions": list(alarm.insufficient_data_actions),
        "StateValue": alarm.state_value,
        "StateReason": alarm.state_reason,
        "StateReasonData": alarm.state_reason_data,
        "StateUpdatedTimestamp": alarm.state_updated_timestamp,
        "StateTransitionedTimestamp": alarm.__dict__.get(
            TRANSITION_ATTR, alarm.state_updated_timestamp
        ),
        "MetricName": alarm.metric_name,
        "Namespace": alarm.namespace,
        "Statistic": alarm.statistic,
        "ExtendedStatistic": alarm.extended_statistic,
        "Dimensions": [{"Name": d.name, "Value": d.value} for d in alarm.dimensions],
        "Period": _int(alarm.period),
        "Unit": alarm.unit,
        "EvaluationPeriods": _int(alarm.evaluation_periods),
        "DatapointsToAlarm": _int(alarm.datapoints_to_alarm),
        "Threshold": _float(alarm.threshold),
        "ComparisonOperator": alarm.comparison_operator,
        "TreatMissingData": alarm.treat_missing_data,
        "EvaluateLowSampleCountPercentile": alarm.evaluate_low_sample_count_percentile,
        "ThresholdMetricId": alarm.threshold_metric_id,
    }
    if alarm.metric_data_queries:
        shape["Metrics"] = [query_shape(q) for q in alarm.metric_data_queries]
    return {k: v for k, v in shape.items() if v is not None and v != ""}


def query_shape(query: Any) -> dict[str, Any]:
    shape: dict[str, Any] = {"Id": query.id}
    if query.label:
        shape["Label"] = query.label
    if query.expression:
        shape["Expression"] = query.expression
    if query.period:
        shape["Period"] = int(query.period)
    if query.return_data is not None:
        shape["ReturnData"] = query.return_data in (True, "true")
    if query.metric_stat is not None:
        stat = query.metric_stat
        shape["MetricStat"] = {
            "Metric": {
                "Namespace": stat.metric.namespace,
                "MetricName": stat.metric.metric_name,
                "Dimensions": [{"Name": d.name, "Value": d.value} for d in stat.metric.dimensions],
            },
            "Period": int(stat.period),
            "Stat": stat.stat,
        }
        if stat.unit:
            shape["MetricStat"]["Unit"] = stat.unit
    return shape


def composite_alarm_shape(alarm: Alarm) -> dict[str, Any]:
    shape = {
        "ActionsEnabled": bool(alarm.actions_enabled),
        "AlarmActions": list(alarm.alarm_actions),
        "AlarmArn": alarm.alarm_arn,
        "AlarmConfigurationUpdatedTimestamp": alarm.configuration_updated_timestamp,
        "AlarmDescription": alarm.description,
        "AlarmName": alarm.name,
        "AlarmRule": alarm.rule,
        "InsufficientDataActions": list(alarm.insufficient_data_actions),
        "OKActions": list(alarm.ok_actions),
        "StateReason": alarm.state_reason,
        "StateReasonData": alarm.state_reason_data,
        "StateUpdatedTimestamp": alarm.state_updated_timestamp,
        "StateValue": alarm.state_value,
        "StateTransitionedTimestamp": alarm.__dict__.get(
            TRANSITION_ATTR, alarm.state_updated_timestamp
        ),
    }
    return {k: v for k, v in shape.items() if v is not None and v != ""}


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise InvalidNextToken("The service returned an invalid NextToken.") from exc
    if not isinstance(offset, int) or offset < 0:
        raise InvalidNextToken("The service returned an invalid NextToken.")
    return offset


def _page(
    items: list[Any], token: str | None, max_records: Any, default: int
) -> tuple[list[Any], str | None]:
    limit = int(max_records) if max_records else default
    if not 1 <= limit <= 100:
        raise ValidationError(
            f"1 validation error detected: Value '{limit}' at 'maxRecords' failed to satisfy "
            "constraint: Member must have value between 1 and 100"
        )
    offset = decode_token(token)
    page = items[offset : offset + limit]
    return page, encode_token(offset + limit) if offset + limit < len(items) else None


def select_alarms(backend: CloudWatchBackend, params: Callable[[str], Any]) -> list[Alarm]:
    """The alarms DescribeAlarms returns, with AWS's filters and its AlarmTypes default."""
    alarms = sorted(backend.alarms.values(), key=lambda a: a.name)
    types = params("AlarmTypes") or ["MetricAlarm"]
    children_of, parents_of = params("ChildrenOfAlarmName"), params("ParentsOfAlarmName")
    if children_of:
        parent = backend.alarms.get(children_of)
        names: set[str] = set()
        if parent is not None and parent.rule:
            try:
                names = parse_rule(parent.rule).names()
            except ValueError:
                names = set()
        alarms = [a for a in alarms if a.name in names]
    elif parents_of:
        parents = []
        for alarm in alarms:
            if alarm.rule:
                try:
                    if parents_of in parse_rule(alarm.rule).names():
                        parents.append(alarm)
                except ValueError:
                    continue
        alarms = parents
    else:
        names_filter = params("AlarmNames") or []
        prefix = params("AlarmNamePrefix")
        action_prefix = params("ActionPrefix")
        state = params("StateValue")
        if names_filter:
            alarms = [a for a in alarms if a.name in names_filter]
        if prefix:
            alarms = [a for a in alarms if a.name.startswith(prefix)]
        if action_prefix:
            alarms = [
                a
                for a in alarms
                if any(
                    x.startswith(action_prefix)
                    for x in [*a.alarm_actions, *a.ok_actions, *a.insufficient_data_actions]
                )
            ]
        if state:
            alarms = [a for a in alarms if a.state_value == state]
    return [a for a in alarms if alarm_type(a) in types]


# --- replacements for moto's CloudWatchResponse / CloudWatchBackend methods ---------------------


def describe_alarms(self: Any) -> ActionResult:
    alarms = select_alarms(self.cloudwatch_backend, self._get_param)
    page, token = _page(alarms, self._get_param("NextToken"), self._get_param("MaxRecords"), 50)
    result: dict[str, Any] = {
        "MetricAlarms": [metric_alarm_shape(a) for a in page if a.rule is None],
        "CompositeAlarms": [composite_alarm_shape(a) for a in page if a.rule is not None],
    }
    if token:
        result["NextToken"] = token
    return ActionResult(result)


def describe_alarm_history(self: Any) -> ActionResult:
    get = self._get_param
    types = get("AlarmTypes") or ["MetricAlarm"]
    items = [dict(item) for item in list(history(self.cloudwatch_backend))]
    if get("AlarmName"):
        items = [i for i in items if i["AlarmName"] == get("AlarmName")]
    items = [i for i in items if i["AlarmType"] in types]
    if get("HistoryItemType"):
        items = [i for i in items if i["HistoryItemType"] == get("HistoryItemType")]
    if get("StartDate"):
        start = utc_naive(get("StartDate"))
        items = [i for i in items if i["Timestamp"] >= start]
    if get("EndDate"):
        end = utc_naive(get("EndDate"))
        items = [i for i in items if i["Timestamp"] <= end]
    descending = (get("ScanBy") or "TimestampDescending") == "TimestampDescending"
    # Stable sort: items recorded at the same instant keep their recording order.
    items.sort(key=lambda i: i["Timestamp"])
    if descending:
        items.reverse()
    page, token = _page(items, get("NextToken"), get("MaxRecords"), 100)
    result: dict[str, Any] = {"AlarmHistoryItems": page}
    if token:
        result["NextToken"] = token
    return ActionResult(result)


def put_composite_alarm(self: Any) -> ActionResult:
    rule = self._get_param("AlarmRule")
    name = self._get_param("AlarmName")
    try:
        parse_rule(rule or "")
    except ValueError as exc:
        raise ValidationError(f"Invalid AlarmRule: {exc}") from exc
    self.cloudwatch_backend.put_metric_alarm(
        name=name,
        namespace=None,
        metric_name=None,
        comparison_operator=None,
        evaluation_periods=None,
        period=None,
        threshold=None,
        statistic=None,
        description=self._get_param("AlarmDescription"),
        dimensions=[],
        alarm_actions=self._get_param("AlarmActions", []),
        ok_actions=self._get_param("OKActions", []),
        insufficient_data_actions=self._get_param("InsufficientDataActions", []),
        actions_enabled=self._get_param("ActionsEnabled"),
        rule=rule,
        tags=self._get_param("Tags", []),
    )
    return EmptyResult()


def config_data(alarm: Alarm) -> dict[str, Any]:
    shape = composite_alarm_shape(alarm) if alarm.rule is not None else metric_alarm_shape(alarm)
    keep = {
        k[0].lower() + k[1:]: v
        for k, v in shape.items()
        if not k.startswith("State") and not isinstance(v, datetime)
    }
    return keep


def wrap_put_metric_alarm(original: Callable[..., Alarm]) -> Callable[..., Alarm]:
    def put_metric_alarm(self: CloudWatchBackend, *args: Any, **kwargs: Any) -> Alarm:
        name = kwargs.get("name", args[0] if args else None)
        previous = self.alarms.get(name) if name is not None else None
        alarm = original(self, *args, **kwargs)
        now = utc_naive(datetime.now(UTC))
        if previous is not None and previous is not alarm:
            # AWS keeps an updated alarm's state; moto would reset it to OK.
            alarm.state_value = previous.state_value
            alarm.state_reason = previous.state_reason
            alarm.state_reason_data = previous.state_reason_data
            alarm.state_updated_timestamp = previous.state_updated_timestamp
            alarm.history = previous.history
            if TRANSITION_ATTR in previous.__dict__:
                alarm.__dict__[TRANSITION_ATTR] = previous.__dict__[TRANSITION_ATTR]
            record(
                self,
                alarm,
                "ConfigurationUpdate",
                f'Alarm "{alarm.name}" updated',
                {"version": "1.0", "type": "Update", "updatedAlarm": config_data(alarm)},
                now,
            )
        else:
            alarm.state_value = "INSUFFICIENT_DATA"
            alarm.state_reason = INITIAL_REASON
            alarm.state_reason_data = None  # type: ignore[assignment]
            alarm.state_updated_timestamp = now
            alarm.__dict__[TRANSITION_ATTR] = now
            record(
                self,
                alarm,
                "ConfigurationUpdate",
                f'Alarm "{alarm.name}" created',
                {"version": "1.0", "type": "Create", "createdAlarm": config_data(alarm)},
                now,
            )
        return alarm

    return put_metric_alarm


def wrap_set_alarm_state(original: Callable[..., None]) -> Callable[..., None]:
    def set_alarm_state(
        self: CloudWatchBackend, alarm_name: str, reason: str, reason_data: str, state_value: str
    ) -> None:
        alarm = self.alarms.get(alarm_name)
        before = (alarm.state_value, alarm.state_reason, alarm.state_reason_data) if alarm else None
        original(self, alarm_name, reason, reason_data, state_value)
        if alarm is None or before is None:
            return
        if before[0] != alarm.state_value:
            after_transition(self, alarm, *before, when=datetime.now(UTC))

    return set_alarm_state


def wrap_delete_alarms(original: Callable[..., None]) -> Callable[..., None]:
    def delete_alarms(self: CloudWatchBackend, alarm_names: list[str]) -> None:
        doomed = [self.alarms[n] for n in alarm_names if n in self.alarms]
        original(self, alarm_names)
        now = datetime.now(UTC)
        for alarm in doomed:
            record(
                self,
                alarm,
                "ConfigurationUpdate",
                f'Alarm "{alarm.name}" deleted',
                {"version": "1.0", "type": "Delete", "deletedAlarm": config_data(alarm)},
                now,
            )

    return delete_alarms


def all_alarms() -> Iterable[tuple[CloudWatchBackend, Alarm]]:
    from moto.cloudwatch.models import cloudwatch_backends

    for regions in list(cloudwatch_backends.values()):
        for backend in list(regions.values()):
            for alarm in list(backend.alarms.values()):
                yield backend, alarm
