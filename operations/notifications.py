"""Notifications: when an operation ends (any final state) or a failure group opens or
regresses, tell the configured destinations, with the absolute link to its page.

- ``EVENTOPS_NOTIFY_WEBHOOKS``: Slack-compatible incoming webhooks (``{"text", "blocks"}``);
- ``EVENTOPS_NOTIFY_SNS_TOPIC_ARN``: an SNS topic (Publish, in the default environment).

Each destination gets its own Celery task (``operations.notify``), retried with growing
delays up to ``MAX_RETRIES`` times, so one failing destination neither delays nor repeats
the others. A notification that finally fails is logged and counted
(``eventops_notifications_total{outcome="failed"}``); it never touches the operation.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.urls import NoReverseMatch, reverse

from operations import metrics
from operations.aws import sns
from operations.aws.errors import AwsError

logger = logging.getLogger(__name__)
MAX_RETRIES = 5
TIMEOUT = 5.0
STATE_EMOJI = {
    "succeeded": ":white_check_mark:",
    "partial": ":warning:",
    "failed": ":x:",
    "cancelled": ":no_entry_sign:",
}
DLQ_KINDS = frozenset({"redrive", "native_redrive", "delete_messages", "edit_resend"})
WEBHOOK = "webhook"
SNS = "sns"


class DeliveryFailed(Exception):
    """A destination refused or could not be reached (retried)."""


def destinations() -> list[tuple[str, str]]:
    """``(kind, address)`` of every configured destination."""
    found = [(WEBHOOK, url) for url in getattr(settings, "EVENTOPS_NOTIFY_WEBHOOKS", []) or []]
    topic = str(getattr(settings, "EVENTOPS_NOTIFY_SNS_TOPIC_ARN", "") or "")
    if topic:
        found.append((SNS, topic))
    return found


def absolute(path: str) -> str:
    base = str(getattr(settings, "EVENTOPS_BASE_URL", "") or "").rstrip("/")
    return f"{base}{path}" if path else ""


def _escape(text: str) -> str:
    """Slack mrkdwn: &, < and > are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def message(title: str, lines: list[str], link: str, runbook: str = "") -> dict[str, Any]:
    """The notification: ``text`` (plain, for SNS and fallbacks), Slack ``blocks``, and a
    ``subject``."""
    links = [f"Open: {link}"] if link else []
    if runbook:
        links.append(f"Runbook: {runbook}")
    text = "\n".join([title, *lines, *links])
    body = "\n".join(_escape(line) for line in lines)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{_escape(title)}*\n{body}"}}
    ]
    elements = []
    if link:
        elements.append({"type": "mrkdwn", "text": f"<{link}|Open in eventops>"})
    if runbook:
        elements.append({"type": "mrkdwn", "text": f"<{runbook}|Runbook>"})
    if elements:
        blocks.append({"type": "context", "elements": elements})
    return {"subject": title, "text": text, "blocks": blocks}


def operation_message(op: Any) -> dict[str, Any]:
    """What an ended operation says: what, where, outcome, counters, who and why."""
    title = (
        f"{STATE_EMOJI.get(op.state, '')} {op.get_kind_display()} #{op.pk} on "
        f"{op.target_label or op.target} {op.get_state_display().lower()}"
    ).strip()
    via = f" via API token {op.via_token}" if op.via == "api" else ""
    lines = [
        f"Environment: {op.environment}",
        f"Moved {op.moved}, failed {op.failed}, skipped {op.skipped}"
        + (f" of {op.total}" if op.total is not None else ""),
        f"Requested by {op.requested_by_name}{via}: {op.reason}"[:500],
    ]
    if op.error:
        lines.append(f"Error: {op.error}"[:500])
    try:
        path = reverse("operations:detail", args=[op.environment, op.pk])
    except NoReverseMatch:
        path = ""
    return message(title, lines, absolute(path), queue_runbook(op))


def queue_runbook(op: Any) -> str:
    """For an operation on a DLQ, the runbook of an alarm on that DLQ; best effort: a
    notification never waits on, nor fails for, an alarm lookup that fails."""
    if not op.target_label or op.kind not in DLQ_KINDS:
        return ""
    from operations import environments, runbooks

    environment = environments.get(op.environment)
    if environment is None:
        return ""
    try:
        with environments.activate(environment):
            return runbooks.for_queue(op.target_label)
    except Exception:
        logger.warning("runbook of %s: lookup failed", op.target_label, exc_info=True)
        return ""


def failure_group_message(group: Any, change: str) -> dict[str, Any]:
    """A failure group that opened or regressed: ``group`` is any object with ``title``,
    ``environment``, ``count`` and ``pk`` (and optionally ``runbook`` and ``url``)."""
    verb = "regressed" if change == "regressed" else "opened"
    title = f":rotating_light: Failure group {verb}: {group.title}"
    lines = [f"Environment: {group.environment}", f"{group.count} failures so far"]
    link = absolute(str(getattr(group, "url", "") or ""))
    return message(title, lines, link, str(getattr(group, "runbook", "") or ""))


def announce(note: dict[str, Any]) -> int:
    """Queue ``note`` for every destination; returns how many were queued."""
    queued = 0
    for kind, address in destinations():
        try:
            deliver.delay(kind, address, note)
            queued += 1
        except Exception:  # the broker is down: never the caller's problem
            logger.exception("notification to %s %s could not be queued", kind, address)
            metrics.notification(kind, "failed")
    return queued


def notify_operation(operation_id: int, **_: Any) -> None:
    """``operation_finished`` receiver."""
    if not destinations():
        return
    from operations.models import Operation

    op = Operation.objects.filter(pk=operation_id).first()
    # A part of a redrive split across workers: its parent is announced.
    if op is not None and op.is_finished and op.parent_id is None:
        announce(operation_message(op))


def notify_failure_group(group: Any, change: str, **_: Any) -> None:
    """``failure_group_changed`` receiver ("opened" or "regressed")."""
    if change in ("opened", "regressed") and destinations():
        announce(failure_group_message(group, change))


def connect() -> None:
    """Listen for ended operations and for opened or regressed failure groups."""
    from operations.operation_events import operation_finished

    operation_finished.connect(notify_operation, dispatch_uid="eventops-notify-operation")
    from operations.triage.signals import failure_group_changed

    failure_group_changed.connect(_on_group_changed, dispatch_uid="eventops-notify-failure-group")


def _on_group_changed(sender: Any = None, group: Any = None, change: str = "", **_: Any) -> None:
    if group is not None:
        notify_failure_group(group, change)


def send(kind: str, address: str, note: dict[str, Any]) -> None:
    """One delivery; ``DeliveryFailed`` when the destination refuses or cannot be reached."""
    if kind == SNS:
        try:
            sns.publish(address, note["subject"], note["text"])
        except AwsError as exc:
            raise DeliveryFailed(str(exc)) from exc
        return
    data = json.dumps({"text": note["text"], "blocks": note["blocks"]}).encode()
    request = urllib.request.Request(
        address, data=data, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            response.read(1024)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc


def retry_delay(retries: int) -> int:
    """10 s, 20 s, 40 s, 80 s, 160 s."""
    return int(min(300, 10 * 2**retries))


@shared_task(bind=True, name="operations.notify", ignore_result=True, max_retries=MAX_RETRIES)
def deliver(self: Task, kind: str, address: str, note: dict[str, Any]) -> None:
    """Deliver one notification to one destination, retried with backoff."""
    try:
        send(kind, address, note)
    except DeliveryFailed as exc:
        if self.request.retries >= MAX_RETRIES:
            logger.error(
                "notification to %s gave up after %s tries: %s", kind, MAX_RETRIES + 1, exc
            )
            metrics.notification(kind, "failed")
            return
        logger.warning("notification to %s failed (%s); retrying", kind, exc)
        raise self.retry(exc=exc, countdown=retry_delay(self.request.retries)) from exc
    metrics.notification(kind, "sent")
