"""Read-only areas: environments, the overview, alarms and the correlation lookup."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from ninja import Field, Query, Router, Schema

from dashboard.api import schemas
from dashboard.api.auth import environment_scope
from dashboard.api.pagination import ListParams, page
from dashboard.api.problems import Problem
from dashboard.api.render import Viewer, absolute, iso
from dashboard.environment import env_url
from operations import access, alarms, runbooks, topology
from operations import correlation as corr
from operations.aws.cloudwatch import Alarm

router = Router(tags=["Reads"])


@router.get("/environments/", response={200: list[schemas.EnvironmentOut]}, summary="Environments")
def environment_list(request: HttpRequest) -> Any:
    """The environments you may see; every other path takes one of their names."""
    return [
        {
            "name": env.name,
            "label": env.label,
            "region": env.region,
            "url": absolute(request, reverse("api-v1:overview", args=[env.name])),
        }
        for env in access.visible_environments(request.user)
    ]


def _alarm(request: HttpRequest, a: Alarm) -> dict[str, Any]:
    return {
        "name": a.name,
        "arn": a.arn,
        "kind": a.kind,
        "state": a.state,
        "state_reason": a.state_reason,
        "changed_at": iso(a.changed_at),
        "runbook": runbooks.known_runbook(a),
        "page": absolute(request, env_url("alarm_detail", a.name)),
    }


@router.get(
    "/env/{environment}/overview",
    response={200: schemas.OverviewOut},
    summary="Overview",
    url_name="overview",
)
def overview(request: HttpRequest, environment: str) -> Any:
    """Every consumer, worst first: its queue, DLQ depth and age, alarms, rules and Lambdas.
    ``errors`` lists the sources that failed (their last good value is used)."""
    with environment_scope(request, environment) as env:
        view = topology.overview()
        consumers = [
            {
                "queue": c.queue.name,
                "visible": c.queue.visible,
                "in_flight": c.queue.in_flight,
                "dlq": c.dlq.name if c.dlq else None,
                "dlq_depth": c.dlq_depth,
                "dlq_age_seconds": c.dlq_age_seconds,
                "expires_in_seconds": c.expires_in_seconds,
                "alarm_state": c.alarm_state,
                "alarms": [_alarm(request, a) for a in c.alarms],
                "rules": [{"bus": bus, "rule": rule} for bus, rule in c.rules],
                "functions": c.functions,
            }
            for c in view.consumers
        ]
        errors = [
            {"source": label, "error": source.error, "stale": source.stale}
            for label, source in view.panels
            if source.error
        ]
        return {
            "environment": env.name,
            "alarms_firing": view.alarms_firing,
            "dlq_messages": view.dlq_messages,
            "data_time": iso(view.data_time),
            "errors": errors,
            "consumers": consumers,
        }


class AlarmParams(ListParams):
    state: str = Field("", max_length=32)


@router.get(
    "/env/{environment}/alarms/",
    response={200: schemas.PageOut, 422: schemas.ProblemOut},
    summary="Alarms",
)
def alarm_list(request: HttpRequest, environment: str, params: Query[AlarmParams]) -> Any:
    """Metric and composite alarms, worst first; ``state`` filters (OK, ALARM,
    INSUFFICIENT_DATA)."""
    with environment_scope(request, environment):
        if params.state and params.state not in alarms.STATES:
            raise Problem(422, f"state must be one of {', '.join(alarms.STATES)}.")
        found = alarms.list_alarms(params.state)
        if found.error and not found.alarms:
            raise Problem(502, found.error, kind="aws-error")
        result = page(
            request, found.alarms, params.limit, params.offset, lambda a: _alarm(request, a)
        )
        return {**result, "stale": found.stale, "error": found.error}


class CorrelationParams(Schema):
    since: str = Field("", max_length=8, description="How far back: 30m, 6h, 7d.")


@router.get(
    "/env/{environment}/correlation/{query}",
    response={200: schemas.CorrelationOut, 422: schemas.ProblemOut},
    summary="Correlation lookup",
)
def correlation(
    request: HttpRequest, environment: str, query: str, params: Query[CorrelationParams]
) -> Any:
    """Everything about one business transaction, by correlation ID, X-Ray or W3C trace ID,
    or event ID: traces, events, DLQ messages, idempotency and outbox records, operations."""
    with environment_scope(request, environment) as env:
        try:
            lookup = corr.parse_lookup(query)
            since = corr.parse_since(params.since or None)
        except corr.InvalidLookup as exc:
            raise Problem(422, str(exc), kind="validation-error") from None
        found = corr.timeline(lookup, since).as_json()
        viewer = Viewer(request, env.name)
        for entry in found["timeline"]:
            entry["title"] = viewer.text(entry["title"])
            entry["detail"] = viewer.text(entry["detail"]) if viewer.bodies else ""
        return found
