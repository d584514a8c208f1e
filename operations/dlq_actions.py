"""Delete chosen DLQ messages, or edit one and send it again: operations run by the worker.

The page writes the ``Operation`` row and enqueues its task; the task finds the
messages (SQS cannot look one up by ID, so within bounded receives), acts, reports its
progress and ends with an honest outcome (``operations.outcomes``).

Edit-and-resend sends the edited copy first, keeping the message attributes and the
X-Ray trace header and adding the attribute ``eventops_operation`` (the operation's
id), then deletes the original. A failed delete ends it ``partial``, never
``succeeded``: the poison original is still in the DLQ, and a redrive would send it
again. A worker that dies after the send resumes with the delete, never a second send.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from operations import outcomes
from operations.aws import sqs
from operations.aws.errors import AwsError
from operations.dlq import DlqMessage, body_diff, describe, find_messages, normalise_json, release
from operations.dlq_peek import forget_peek
from operations.enqueue import enqueue
from operations.models import Operation, TouchedCorrelation

logger = logging.getLogger(__name__)

# How many messages one delete may name (the page offers one peek's worth).
MAX_DELETE = 100
# What the audit keeps of each deleted body.
AUDIT_BODY_CHARS = 4096
LEASE_SECONDS = 120
# The message attribute that names the operation on an edited copy.
OPERATION_ATTRIBUTE = "eventops_operation"
# SQS allows this many message attributes on one message.
MAX_MESSAGE_ATTRIBUTES = 10


@dataclass
class Actor:
    """Who asks, and why (every operation records it)."""

    reason: str
    user: Any = None
    user_name: str = ""


def _create(kind: str, dlq_url: str, actor: Actor, parameters: dict[str, Any]) -> Operation:
    """Write the audit row (IntegrityError if another operation is active on this DLQ)."""
    with transaction.atomic():
        return Operation.objects.create(
            kind=kind,
            target=dlq_url,
            target_label=sqs.queue_name_from_url(dlq_url),
            parameters=parameters,
            reason=actor.reason,
            requested_by=actor.user,
            requested_by_name=actor.user_name,
            total=int(parameters.get("total") or 0) or None,
        )


def start_delete(dlq_url: str, message_ids: set[str], actor: Actor) -> Operation:
    """Write the delete operation and enqueue it. ``IntegrityError`` if another operation
    is active on the DLQ; ``QueueUnavailable`` if the broker cannot take it."""
    ids = sorted(message_ids)[:MAX_DELETE]
    op = _create(
        Operation.Kind.DELETE_MESSAGES, dlq_url, actor, {"message_ids": ids, "total": len(ids)}
    )
    enqueue(op)
    return op


def start_edit_resend(
    dlq_url: str, message_id: str, new_body: str, actor: Actor, *, fallback_arn: str = ""
) -> Operation:
    """Write the edit-and-resend operation (with the whole edited body) and enqueue it."""
    value, _pretty = normalise_json(new_body)
    compact = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    parameters = {
        "message_id": message_id,
        "destination_arn": fallback_arn,
        "body": compact,
        "total": 1,
    }
    op = _create(Operation.Kind.EDIT_RESEND, dlq_url, actor, parameters)
    enqueue(op)
    return op


# --- delete ------------------------------------------------------------------------------


def run_delete(op: Operation, token: Any) -> str:
    """Delete the named messages still in the DLQ; returns the final state.

    A resumed run skips the ones an earlier run recorded as deleted."""
    url = op.target
    wanted = [str(i) for i in op.parameters.get("message_ids", [])]
    deleted: list[dict[str, str]] = list((op.progress or {}).get("deleted") or [])
    refused: dict[str, str] = {}
    error = ""
    found: dict[str, sqs.SqsMessage] = {}
    try:
        found = find_messages(url, set(wanted) - {d["MessageId"] for d in deleted})
        items = list(found.values())
        for start in range(0, len(items), sqs.MAX_BATCH_ENTRIES):
            if op.cancel_requested:
                break
            chunk = {f"d{i}": m for i, m in enumerate(items[start : start + sqs.MAX_BATCH_ENTRIES])}
            result = sqs.delete_message_batch(url, {k: m.receipt_handle for k, m in chunk.items()})
            deleted += [_audit(describe(chunk[key])) for key in result.succeeded]
            for failure in result.failed:
                refused[chunk[failure.entry_id].message_id] = failure.code or "error"
            op.report(token, LEASE_SECONDS, progress={"deleted": deleted}, moved=len(deleted))
    except AwsError as exc:
        logger.warning("operation %s: delete failed: %s", op.pk, exc)
        error = str(exc)
    gone = {d["MessageId"] for d in deleted}
    # Found but not deleted (refused, an error, or a cancel): visible again at once.
    release(url, (m for m in found.values() if m.message_id not in gone))
    if gone:
        forget_peek(url)  # the pages show the DLQ without them from the next view
    _touch(op, (d["CorrelationId"] for d in deleted))
    reasons = []
    for message_id in wanted:
        if message_id in gone:
            continue
        if message_id in refused:
            reasons.append(f"delete refused by SQS: {refused[message_id]}")
        elif error and message_id in found:
            reasons.append(f"not deleted: {error}")
        elif op.cancel_requested and message_id in found:
            reasons.append("not deleted: cancelled")
        else:
            reasons.append("not found in the DLQ (searched within bounded receives)")
    grouped = outcomes.group_reasons(reasons)
    state = outcomes.final_state(len(gone), len(wanted))
    if op.cancel_requested and state != Operation.State.SUCCEEDED:
        state = Operation.State.CANCELLED
    op.finish(
        token,
        state,
        error=error or "; ".join(outcomes.reason_lines({"reasons": grouped})),
        total=len(wanted),
        moved=len(gone),
        failed=len(wanted) - len(gone),
        outcome={
            "deleted": deleted,
            "not_deleted": sorted(set(wanted) - gone),
            "reasons": grouped,
        },
    )
    return state


def _audit(message: DlqMessage) -> dict[str, str]:
    return {
        "MessageId": message.message_id,
        "CorrelationId": message.correlation_id,
        "EventType": message.event_type,
        "Body": message.raw.body[:AUDIT_BODY_CHARS],
    }


def _touch(op: Operation, correlation_ids: Iterable[str]) -> None:
    ids = {c[:256] for c in correlation_ids if c}
    TouchedCorrelation.objects.bulk_create(
        [TouchedCorrelation(operation=op, correlation_id=c) for c in ids], ignore_conflicts=True
    )


# --- edit and resend -------------------------------------------------------------------------


def run_edit_resend(op: Operation, token: Any) -> str:
    """Send the edited copy (unless an earlier run did), then delete the original;
    returns the final state."""
    url, params = op.target, op.parameters
    message_id = str(params["message_id"])
    sent = dict(op.progress or {})
    try:
        original = find_messages(url, {message_id}).get(message_id)
    except AwsError as exc:
        return _end(op, token, Operation.State.FAILED, f"Could not look for the message: {exc}")
    if original is None:
        if sent.get("sent_message_id"):
            return _end(
                op,
                token,
                Operation.State.PARTIAL,
                "The edited copy was sent, but the original was not found in the DLQ any more "
                "(an earlier attempt probably deleted it before its worker stopped): check it.",
                outcome={**sent, "reasons": {"original not found after the send": 1}},
                moved=1,
            )
        return _end(op, token, Operation.State.FAILED, "The message was not found in the queue.")
    message = describe(original)
    if not sent.get("sent_message_id"):
        if op.cancel_requested:
            release(url, [original])
            return _end(op, token, Operation.State.CANCELLED, "Cancelled before it was sent.")
        try:
            destination = sqs.queue_url_for_arn(message.source_arn or params["destination_arn"])
            entry, marked = edited_entry(original, str(params["body"]), op.pk)
            new_id = sqs.send_message(destination, entry)
        except AwsError as exc:
            release(url, [original])
            return _end(op, token, Operation.State.FAILED, f"Not sent, original kept: {exc}")
        sent = {"sent_message_id": new_id, "destination": destination, "marked": marked}
        op.report(token, LEASE_SECONDS, progress=sent, moved=1)
    outcome = {**sent, "diff": body_diff(message, normalise_json(str(params["body"]))[1])[:20_000]}
    refusal = _delete_original(url, original)
    forget_peek(url)
    if refusal:
        release(url, [original])
        error = (
            f"The edited copy was sent, but the original could not be deleted ({refusal}): it "
            "is still in the DLQ, and a redrive would send it again. Delete it from the "
            "messages page."
        )
        outcome["reasons"] = {f"original not deleted from the DLQ: {refusal}": 1}
        return _end(op, token, Operation.State.PARTIAL, error, outcome=outcome, moved=1)
    _touch(op, [message.correlation_id])
    return _end(op, token, Operation.State.SUCCEEDED, "", outcome=outcome, moved=1)


def _delete_original(url: str, original: sqs.SqsMessage) -> str:
    """Delete the original; "" when it is gone, else why not."""
    try:
        result = sqs.delete_message_batch(url, {"original": original.receipt_handle})
    except AwsError as exc:
        return str(exc)
    if result.failed:
        failure = result.failed[0]
        return f"{failure.code}: {failure.message}".strip(": ")
    return ""


def edited_entry(
    original: sqs.SqsMessage, body: str, operation_id: int
) -> tuple[dict[str, Any], bool]:
    """The SendMessage request for the edited copy, and whether it carries the
    ``eventops_operation`` attribute (not when the original already has SQS's maximum of
    10 attributes: they are kept whole rather than one dropped)."""
    entry: dict[str, Any] = {"MessageBody": body}
    attributes = {
        name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
        for name, value in original.message_attributes.items()
    }
    marked = len(attributes) < MAX_MESSAGE_ATTRIBUTES or OPERATION_ATTRIBUTE in attributes
    if marked:
        attributes[OPERATION_ATTRIBUTE] = {"DataType": "String", "StringValue": str(operation_id)}
    entry["MessageAttributes"] = attributes
    trace = original.attributes.get("AWSTraceHeader")
    if trace:
        entry["MessageSystemAttributes"] = {
            "AWSTraceHeader": {"DataType": "String", "StringValue": trace}
        }
    if original.attributes.get("MessageGroupId"):
        entry["MessageGroupId"] = original.attributes["MessageGroupId"]
        # A new body is a new message: a fresh deduplication ID, or FIFO would drop it.
        entry["MessageDeduplicationId"] = f"edit-{operation_id}-{original.message_id}"[:128]
    return entry, marked


def _end(
    op: Operation,
    token: Any,
    state: str,
    error: str,
    *,
    outcome: dict[str, Any] | None = None,
    moved: int = 0,
) -> str:
    outcome = dict(outcome or {})
    if state == Operation.State.FAILED and "reasons" not in outcome:
        outcome["reasons"] = {error: 1}
    op.finish(token, state, error=error, total=1, moved=moved, failed=1 - moved, outcome=outcome)
    return state
