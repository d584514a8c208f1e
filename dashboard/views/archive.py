"""Archive pages: archives per bus with their replay history, and the contents browser.

The contents come from the bus's event log (``operations.archive``); replays
and re-publishing are in ``dashboard.views.replay``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from dashboard import query_budget
from dashboard.environment import env_reverse, operation_url
from dashboard.http import HtmxHttpRequest
from operations import archive as reads
from operations import environments, masking, read_audit
from operations.archive import ArchiveView, EventFilters, QueryTimedOut
from operations.aws import events
from operations.aws.errors import AwsError
from operations.cache import Cached, cached, describe_error
from operations.models import Operation
from operations.read_audit import ReadAudit

DEFAULT_WINDOW = timedelta(hours=1)
MAX_FILTER_LENGTH = 256
# FilterLogEvents' nextToken is opaque and some hundred characters long; the token comes
# back from the URL, so anything far longer is refused before AWS sees it.
MAX_TOKEN_LENGTH = 4096


class BadInput(ValueError):
    pass


def parse_time(value: str, label: str) -> datetime:
    """An ISO 8601 time from a form, in UTC; naive times (``datetime-local`` inputs) are UTC.

    Times outside ``[EARLIEST_TIME, LATEST_TIME)`` are refused too: windows computed
    around them would leave datetime's range (a 500) or go below epoch 0 (which AWS
    refuses)."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(
            f"{label} is not a valid time (use ISO 8601, e.g. 2024-05-01T12:00)."
        ) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if not reads.EARLIEST_TIME <= moment < reads.LATEST_TIME:
        raise BadInput(
            f"{label} must be between {reads.EARLIEST_TIME:%Y-%m-%d} and "
            f"{reads.LATEST_TIME:%Y-%m-%d}."
        )
    return moment.astimezone(UTC)


def parse_window(params: dict[str, str], now: datetime | None = None) -> tuple[datetime, datetime]:
    """``start`` / ``end`` from the query string; the last hour by default."""
    now = now or datetime.now(tz=UTC)
    end = parse_time(params["end"], "End") if params.get("end") else now
    if params.get("start"):
        start = parse_time(params["start"], "Start")
    else:
        start = max(end - DEFAULT_WINDOW, reads.EARLIEST_TIME)
    if end <= start:
        raise BadInput("The end of the window must be after its start.")
    return start, end


def fragment_status(request: HtmxHttpRequest, status: int) -> int:
    """htmx swaps only 2xx answers: an htmx fragment that carries an error message is
    sent as 200 so the message shows; full pages keep their 4xx/5xx status."""
    return 200 if request.htmx else status


def get_archive(name: str) -> Cached[ArchiveView]:
    """The archive (cached); 404 when AWS says it does not exist."""
    try:
        return reads.cached_archive(name)
    except reads.ArchiveNotFound:
        raise Http404(f"No archive named {name}.") from None


def with_archive(view_func: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Call ``view_func(request, archive_view, ...)`` for the URL's archive name.

    Unknown archive: 404. AWS failing with no last good value: a 502 page that
    says why (a stale value, when there is one, is used and marked by the page).
    """

    @wraps(view_func)
    def wrapper(request: HtmxHttpRequest, name: str, *args: Any, **kwargs: Any) -> HttpResponse:
        found = get_archive(name)
        if found.value is None:
            context = {"name": name, "error": found.error}
            return render(request, "archive/unavailable.html", context, status=502)
        return view_func(request, found.value, *args, **kwargs)

    return wrapper


@dataclass
class ReplayRow:
    """One replay: from ListReplays, from an Operation row, or both."""

    name: str
    archive: str
    state: str
    event_start: datetime | None
    event_end: datetime | None
    started: datetime | None
    operation: Operation | None = None
    operation_url: str = ""

    @property
    def progress_url(self) -> str:
        """The replay-specific page (EventLastReplayedTime across the window)."""
        if self.operation is None:
            return ""
        return env_reverse(
            "replay_detail", self.operation.pk, environment=self.operation.environment
        )


def replay_history(archive_arn: str = "") -> tuple[list[ReplayRow], str]:
    """ListReplays merged with the replay Operation rows, newest first."""
    listed = cached(
        f"archive:replays:{archive_arn}", lambda: events.list_replays(source_arn=archive_arn)
    )
    ops = Operation.objects.filter(
        kind=Operation.Kind.REPLAY, environment=environments.current_name()
    )
    if archive_arn:
        ops = ops.filter(target=archive_arn)
    by_name = {op.parameters.get("replay_name", f"#{op.pk}"): op for op in ops[:200]}
    rows = []
    for replay in listed.value or []:
        op = by_name.pop(replay.name, None)
        archive_name = replay.source_arn.rsplit("/", 1)[-1]
        rows.append(
            ReplayRow(
                replay.name,
                archive_name,
                replay.state,
                replay.event_start,
                replay.event_end,
                replay.replay_start,
                op,
                operation_url(op) if op else "",
            )
        )
    for name, op in by_name.items():
        params = op.parameters
        rows.append(
            ReplayRow(
                name,
                op.target_label,
                op.get_state_display(),
                _iso(params.get("start")),
                _iso(params.get("end")),
                op.created_at,
                op,
                operation_url(op),
            )
        )
    rows.sort(key=lambda r: r.started or datetime.min.replace(tzinfo=UTC), reverse=True)
    return rows, listed.error


def _iso(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


@require_GET
def archives(request: HtmxHttpRequest) -> HttpResponse:
    """Every archive with state, retention, pattern, counts; the replay history."""
    found = reads.list_archive_details()
    history, history_error = replay_history()
    by_bus: dict[str, list[events.ArchiveDetail]] = {}
    for archive in found.value or []:
        by_bus.setdefault(archive.bus_name, []).append(archive)
    context = {
        "archives": found,
        "by_bus": sorted(by_bus.items()),
        "history": history,
        "history_error": history_error,
    }
    return render(request, "archive/archives.html", context)


@require_GET
@with_archive
def archive_detail(request: HtmxHttpRequest, view: ArchiveView) -> HttpResponse:
    """One archive: its numbers, its bus's rules, its replays and the actions."""
    found = get_archive(view.archive.name)
    history, history_error = replay_history(view.archive.arn)
    context = {
        "found": found,
        "view": view,
        "history": history,
        "history_error": history_error,
    }
    return render(request, "archive/detail.html", context)


def read_filters(params: dict[str, str]) -> EventFilters:
    values = {
        key: params.get(key, "").strip() for key in ("source", "detail_type", "correlation_id", "q")
    }
    if any(len(v) > MAX_FILTER_LENGTH for v in values.values()):
        raise BadInput(f"Filters are limited to {MAX_FILTER_LENGTH} characters.")
    return EventFilters(
        source=values["source"],
        detail_type=values["detail_type"],
        correlation_id=values["correlation_id"],
        text=values["q"],
    )


@require_GET
@with_archive
def archive_events(request: HtmxHttpRequest, view: ArchiveView) -> HttpResponse:
    """Browse the archive's events in a window, filtered, one bounded page at a time."""
    params = request.GET.dict()
    context: dict[str, object] = {"view": view, "params": params, "page": None, "error": ""}
    status = 200
    try:
        start, end = parse_window(params)
        masked = masking.must_mask(request.user, environments.current_name())
        # A masked person's filters look at the events as they see them.
        filters = replace(read_filters(params), masked=masked)
        token = params.get("token", "")
        if len(token) > MAX_TOKEN_LENGTH:
            raise BadInput("The page token is not valid: open the first page again.")
        context.update(start=start, end=end, filters=filters)
        query_budget.check_window(start, end)
        if end - start > reads.FILTER_WINDOW:  # read with a Logs Insights query
            query_budget.spend_query(request.user.pk)
        page = reads.read_events(view.log_group, start, end, filters, token=token)
        if masked:
            page.events = [event.masked for event in page.events]
        context["page"] = page
        if page.next_token:
            context["next_url"] = "?" + urlencode({**params, "token": page.next_token})
    except (BadInput, reads.InvalidTime) as exc:
        context["error"], status = str(exc), 400
    except query_budget.OverBudget as exc:
        context["error"], status = str(exc), exc.status
    except QueryTimedOut as exc:
        context["error"], status = str(exc), 504
    except AwsError as exc:
        context["error"], status = describe_error(exc), 502
    template = "archive/_events.html" if request.htmx else "archive/events.html"
    response = render(request, template, context, status=fragment_status(request, status))
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_GET
@with_archive
def archive_event(request: HtmxHttpRequest, view: ArchiveView, event_id: str) -> HttpResponse:
    """One event: escaped pretty JSON and the rules it matches."""
    try:
        around = reads.time_from_epoch_ms(request.GET.get("t", ""), "event's time")
    except reads.InvalidTime:
        around = None
    if around is None or not reads.EVENT_ID_RE.match(event_id):
        # No usable time (the "t" the event list's links carry) or a malformed ID.
        raise Http404("Open events from the archive's event list (the link carries their time).")
    try:
        event = reads.find_event(view.log_group, event_id, around)
    except AwsError as exc:
        return render(
            request, "archive/event.html", {"view": view, "error": describe_error(exc)}, status=502
        )
    if event is None:
        raise Http404("This event is not in the event log (it may have expired).")
    masked = masking.must_mask(request.user, environments.current_name())
    kind = ReadAudit.Kind.VIEWED_MESSAGE
    target = f"{view.archive.name} {event.id}"
    read_audit.record(request.user, kind, target, count=1, unmasked=not masked)
    context = {
        "view": view,
        # Matching rules and the re-publish form use the original; the page shows this.
        "event": event.masked if masked else event,
        "masked": masked,
        "rules": reads.matching_rules(event, view.rules),
        "window_start": event.time - timedelta(minutes=5),
        "window_end": event.time + timedelta(minutes=5),
    }
    return render(request, "archive/event.html", context)
