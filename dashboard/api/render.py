"""The API's JSON for the domain's objects, masked as the caller may see it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from dashboard.environment import operation_url
from operations import dlq, masking, redrive_parts
from operations.access import Action, allows
from operations.aws.sqs import QueueAttributes
from operations.models import Operation


def absolute(request: HttpRequest | None, path: str) -> str:
    """``path`` as an absolute URL: on ``EVENTOPS_BASE_URL`` when set, else on the host
    the request came to."""
    if not path:
        return ""
    base = str(getattr(settings, "EVENTOPS_BASE_URL", "") or "").rstrip("/")
    if base:
        return base + path
    return request.build_absolute_uri(path) if request is not None else path


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def queue(q: QueueAttributes) -> dict[str, Any]:
    return {
        "name": q.name,
        "arn": q.arn,
        "url": q.url,
        "fifo": q.fifo,
        "visible": q.visible,
        "in_flight": q.in_flight,
        "delayed": q.delayed,
        "retention_seconds": q.retention_seconds,
    }


def groups(found: list[dlq.Group]) -> list[dict[str, Any]]:
    return [{"key": g.key, "count": g.count} for g in found]


class Viewer:
    """What the caller may see in one environment: bodies at all, and unmasked or not."""

    def __init__(self, request: HttpRequest, environment: str) -> None:
        self.bodies = allows(request.user, Action.VIEW_BODIES, environment)
        self.mask = masking.must_mask(request.user, environment)

    def text(self, text: str) -> str:
        return masking.mask_text(text) if self.mask else text

    def value(self, value: Any) -> Any:
        return masking.mask_value(value) if self.mask else value

    def message(self, m: dlq.DlqMessage) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            k: dlq.export_attribute(v) for k, v in m.attributes_raw.items()
        }
        if self.mask:
            attributes = masking.mask_attributes(attributes)
        return {
            "message_id": m.message_id,
            "event_type": m.event_type,
            "correlation_id": m.correlation_id,
            "error": self.text(m.error),
            "receive_count": m.receive_count,
            "sent_at": iso(m.sent_at),
            "source_arn": m.source_arn,
            "body": self.text(m.pretty_body) if self.bodies else None,
            "body_masked": self.bodies and self.mask,
            "attributes": attributes if self.bodies else {},
            "system_attributes": m.system_attributes,
        }

    def operation(self, request: HttpRequest, op: Operation) -> dict[str, Any]:
        redrive_parts.live_totals(op)  # a redrive split across workers: its parts' sums
        parts = redrive_parts.part_rows(op)
        return {
            "id": op.pk,
            "kind": op.kind,
            "environment": op.environment,
            "state": op.state,
            "target": op.target,
            "target_label": op.target_label,
            "reason": op.reason,
            "requested_by": op.requested_by_name,
            "via": op.via,
            "via_token": op.via_token,
            "total": op.total,
            "moved": op.moved,
            "failed": op.failed,
            "skipped": op.skipped,
            "held_back": op.held_back,
            "processed": op.processed,
            "cancel_requested": op.cancel_requested,
            "error": self.text(op.error),
            "parameters": self.value(op.parameters or {}),
            "progress": self.value(op.progress or {}),
            "outcome": self.value(op.outcome or {}),
            "created_at": iso(op.created_at),
            "started_at": iso(op.started_at),
            "finished_at": iso(op.finished_at),
            "page": absolute(request, operation_url(op)),
            "parent": op.parent_id,
            "part": op.part,
            "parts": [
                {"id": p.pk, "part": p.part, "state": p.state, "moved": p.moved, "failed": p.failed}
                for p in parts
            ],
        }
