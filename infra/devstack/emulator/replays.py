"""EventBridge replays as AWS runs them: in the background, in the window, to the chosen rules.

moto 5.2 replays inside the ``StartReplay`` request: every archived event, whatever its time, to
every rule of the bus, before it answers (a client times out, retries and gets "already exists").
Here ``StartReplay`` validates the request as AWS does and answers ``STARTING``; a thread per
replay then delivers, oldest first:

- only the archived events whose ``time`` is in [EventStartTime, EventEndTime);
- only to the rules named by ``Destination.FilterArns`` (every rule of the bus without them);
- each event with its own ``id`` and a ``replay-name`` field (so archive rules, whose pattern
  says ``replay-name`` must not exist, do not archive it again).

``DescribeReplay`` / ``ListReplays`` show ``STARTING`` → ``RUNNING`` → ``COMPLETED`` with
``EventLastReplayedTime`` (the time of the last event delivered), ``ReplayStartTime`` and
``ReplayEndTime``; ``CancelReplay`` moves a running replay to ``CANCELLING``, and the thread to
``CANCELLED`` before its next event. ``ListReplays`` filters by state (moto compares a string
with an enum and never matches). Uninstalling the emulator stops the threads; a replay cut short
that way ends ``FAILED``.
"""

from __future__ import annotations

import copy
import logging
import re
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.core.utils import unix_time
from moto.events.exceptions import (
    IllegalStatusException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
    ValidationException,
)
from moto.events.models import EventsBackend, Replay, ReplayState

from infra.devstack.emulator._patches import Patcher

log = logging.getLogger(__name__)

ACTIVE_LIMIT = 10  # active replays per account and Region (AWS quota)
ACTIVE = (ReplayState.STARTING, ReplayState.RUNNING, ReplayState.CANCELLING)
NAME = re.compile(r"[.\-_A-Za-z0-9]{1,64}")
BUS_ARN = re.compile(r"arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus/(?P<bus>.+)")
RULE_ARN = re.compile(r"arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:rule/(?P<path>.+)")
# The envelope a target without an InputTransformer receives, plus "replay-name".
ENVELOPE = (
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
)
EXTRA = "_eventops_replay"


class LimitExceededException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("LimitExceededException", message)


class _Progress:
    """What moto's Replay does not keep: the rules, progress, reason and the cancel flag."""

    def __init__(self, rules: list[Any]) -> None:
        self.rules = rules
        self.last_replayed: float | None = None
        self.reason = ""
        self.cancel = threading.Event()
        # CancelReplay (a request thread) and the replay thread both move the state.
        self.lock = threading.Lock()


def _progress(replay: Replay) -> _Progress | None:
    return replay.__dict__.get(EXTRA)


def event_time(event: Mapping[str, Any]) -> float | None:
    """An archived event's ``time`` in epoch seconds (moto keeps a number, or a string)."""
    value = event.get("time")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value:
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def _epoch(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValidationException(f"Parameter {name} is not valid.") from None


def _filter_rules(backend: EventsBackend, bus_name: str, arns: list[str]) -> list[Any]:
    """The rules ``FilterArns`` names, each on the destination bus; AWS's errors otherwise."""
    bus = backend.event_buses[bus_name]
    rules = []
    for arn in arns:
        match = RULE_ARN.fullmatch(arn or "")
        if not match:
            raise ValidationException(
                "Parameter Destination.FilterArns is not valid. Reason: Must contain rule ARNs."
            )
        path = match.group("path")
        rule_bus, _, rule_name = path.rpartition("/")
        rule = bus.rules.get(rule_name) if (rule_bus or "default") == bus_name else None
        if rule is None or rule.arn != arn:
            raise ResourceNotFoundException(
                f"Rule {rule_name} does not exist on EventBus {rule_bus or 'default'}."
            )
        rules.append(rule)
    return rules


class ReplayRunner:
    """Runs each replay in its own thread; :meth:`shutdown` stops them all.

    ``stopped`` is set once :meth:`shutdown` begins. ``on_event(replay_name, event)`` is called
    in the replay's thread after each delivered event: tests use it to hold a replay mid-way
    without sleeping.
    """

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self.on_event: Callable[[str, dict[str, Any]], None] | None = None

    # --- the moto replacements ----------------------------------------------------------------

    def start_replay(
        self,
        backend: EventsBackend,
        name: str,
        description: str,
        source_arn: str,
        start_time: Any,
        end_time: Any,
        destination: dict[str, Any],
    ) -> dict[str, Any]:
        if not NAME.fullmatch(name or ""):
            raise ValidationException(
                f"1 validation error detected: Value '{name}' at 'replayName' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+"
            )
        bus_match = BUS_ARN.fullmatch((destination or {}).get("Arn") or "")
        if not bus_match:
            raise ValidationException(
                "Parameter Destination.Arn is not valid. Reason: Must contain an event bus ARN."
            )
        bus = backend._get_event_bus(bus_match.group("bus"))
        archive_name = (source_arn or "").split("/")[-1]
        archive = backend.archives.get(archive_name)
        if archive is None:
            raise ValidationException(
                "Parameter EventSourceArn is not valid. "
                f"Reason: Archive {archive_name} does not exist."
            )
        if destination["Arn"] != archive.source_arn:
            raise ValidationException(
                "Parameter Destination.Arn is not valid. "
                "Reason: Cross event bus replay is not permitted."
            )
        start = _epoch(start_time, "EventStartTime")
        end = _epoch(end_time, "EventEndTime")
        if end <= start:
            raise ValidationException(
                "Parameter EventEndTime is not valid. "
                "Reason: EventStartTime must be before EventEndTime."
            )
        if end > unix_time():
            raise ValidationException(
                "Parameter EventEndTime is not valid. "
                "Reason: EventEndTime must not be in the future."
            )
        rules = _filter_rules(backend, bus.name, list(destination.get("FilterArns") or []))
        if name in backend.replays:
            raise ResourceAlreadyExistsException(f"Replay {name} already exists.")
        if sum(r.state in ACTIVE for r in backend.replays.values()) >= ACTIVE_LIMIT:
            raise LimitExceededException(
                f"The requested resource exceeds the maximum number allowed ({ACTIVE_LIMIT})."
            )
        replay = Replay(
            backend.account_id,
            backend.region_name,
            name,
            description,
            source_arn,
            start_time,
            end_time,
            destination,
        )
        progress = _Progress(rules)
        replay.__dict__[EXTRA] = progress
        backend.replays[name] = replay
        window = [
            event
            for event in list(archive.events)
            if (when := event_time(event)) is not None and start <= when < end
        ]
        window.sort(key=lambda e: event_time(e) or 0.0)
        thread = threading.Thread(
            target=self._run,
            args=(backend, replay, progress, window),
            name=f"replay-{name}",
            daemon=True,
        )
        with self._lock:
            self._threads = {n: t for n, t in self._threads.items() if t.is_alive()}
            self._threads[name] = thread
        thread.start()
        return {
            "ReplayArn": replay.arn,
            "ReplayStartTime": replay.start_time,
            "State": ReplayState.STARTING.value,
        }

    @staticmethod
    def cancel_replay(backend: EventsBackend, name: str) -> dict[str, str]:
        replay = backend._get_replay(name)
        progress = _progress(replay)
        if progress is None:
            raise IllegalStatusException(
                f"Replay {name} is not in a valid state for this operation."
            )
        with progress.lock:
            if replay.state not in (ReplayState.STARTING, ReplayState.RUNNING):
                raise IllegalStatusException(
                    f"Replay {name} is not in a valid state for this operation."
                )
            replay.state = ReplayState.CANCELLING
            progress.cancel.set()
        return {"ReplayArn": replay.arn, "State": ReplayState.CANCELLING.value}

    # --- the background work ------------------------------------------------------------------

    def _run(
        self,
        backend: EventsBackend,
        replay: Replay,
        progress: _Progress,
        events: list[dict[str, Any]],
    ) -> None:
        try:
            with progress.lock:
                if not progress.cancel.is_set():
                    replay.state = ReplayState.RUNNING
            for event in events:
                if progress.cancel.is_set() or self.stopped.is_set():
                    break
                self._deliver(backend, replay, progress, event)
                progress.last_replayed = event_time(event)
                if self.on_event is not None:
                    self.on_event(replay.name, event)
            with progress.lock:
                if progress.cancel.is_set():
                    replay.state = ReplayState.CANCELLED
                elif self.stopped.is_set():
                    replay.state = ReplayState.FAILED
                    progress.reason = "The emulator stopped before the replay finished."
                else:
                    replay.state = ReplayState.COMPLETED
        except Exception as exc:
            log.exception("replay %s failed", replay.name)
            with progress.lock:
                replay.state = ReplayState.FAILED
                progress.reason = f"Replay failed: {exc}"[:512]
        finally:
            replay.end_time = unix_time()

    @staticmethod
    def _deliver(
        backend: EventsBackend, replay: Replay, progress: _Progress, event: dict[str, Any]
    ) -> None:
        bus_name = replay.destination["Arn"].split("/")[-1]
        bus = backend.event_buses.get(bus_name)
        if bus is None:
            return
        rules = progress.rules or list(bus.rules.values())
        replayed = {**event, "replay-name": replay.name}
        envelope = {key: event[key] for key in ENVELOPE if key in event}
        envelope["replay-name"] = replay.name
        for rule in rules:
            transformed = [t for t in rule.targets if t.get("InputTransformer")]
            plain = [t for t in rule.targets if not t.get("InputTransformer")]
            # A target without a transformer receives the whole event, replay-name included;
            # moto's default template would drop it, so those get the envelope untransformed.
            for targets, body, transform in (
                (transformed, replayed, True),
                (plain, envelope, False),
            ):
                if not targets:
                    continue
                part = copy.copy(rule)
                part.targets = targets
                part.send_to_targets(dict(body), transform_input=transform)

    # --- lifecycle ----------------------------------------------------------------------------

    def wait(self, name: str, timeout: float = 10.0) -> bool:
        """Wait until the replay ``name`` has ended (any final state); False on timeout."""
        with self._lock:
            thread = self._threads.get(name)
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop every replay thread (each finishes the event in hand, then ends FAILED)."""
        self.stopped.set()
        with self._lock:
            threads, self._threads = list(self._threads.values()), {}
        for thread in threads:
            thread.join(timeout)


def describe_short(original: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Add ``EventLastReplayedTime`` and ``StateReason`` to DescribeReplay and ListReplays."""

    def wrapper(self: Replay) -> dict[str, Any]:
        shape = original(self)
        progress = _progress(self)
        if progress is not None:
            if progress.last_replayed is not None:
                shape["EventLastReplayedTime"] = progress.last_replayed
            if progress.reason:
                shape["StateReason"] = progress.reason
        return {k: v for k, v in shape.items() if v is not None}

    return wrapper


def wrap_list_replays(original: Callable[..., Any]) -> Callable[..., Any]:
    """moto's ListReplays, with the State filter comparing like with like."""

    def list_replays(self: EventsBackend, name_prefix: str, source_arn: str, state: str) -> Any:
        valid = state in {s.value for s in ReplayState}
        if not valid or name_prefix is not None or source_arn is not None:
            return original(self, name_prefix, source_arn, state)  # its errors and other filters
        return [r.describe_short() for r in list(self.replays.values()) if r.state.value == state]

    return list_replays


def register(patcher: Patcher) -> ReplayRunner:
    """Install the replay patches; uninstalling stops the replay threads first."""
    runner = ReplayRunner()

    def start_replay(self: EventsBackend, *args: Any) -> dict[str, Any]:
        return runner.start_replay(self, *args)

    def cancel_replay(self: EventsBackend, name: str) -> dict[str, str]:
        return runner.cancel_replay(self, name)

    patcher.setattr(EventsBackend, "start_replay", start_replay)
    patcher.setattr(EventsBackend, "cancel_replay", cancel_replay)
    patcher.setattr(EventsBackend, "list_replays", wrap_list_replays(EventsBackend.list_replays))
    patcher.setattr(Replay, "describe_short", describe_short(Replay.describe_short))
    patcher.on_undo(runner.shutdown)
    return runner
