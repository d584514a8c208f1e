"""``POST /hooks/sns``: the alarms topic's HTTPS subscription (no login, no CSRF: every
message is verified by its SNS signature instead, operations/sns_messages.py)."""

from __future__ import annotations

import json
import logging

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from operations import metrics
from operations import sns_messages as sns

logger = logging.getLogger(__name__)
# SNS messages are at most 256 KiB; their JSON envelope adds a little.
MAX_BODY = 300 * 1024


@csrf_exempt
@login_not_required
@require_POST
def sns_hook(request: HttpRequest) -> HttpResponse:
    if len(request.body) > MAX_BODY:
        return JsonResponse({"error": "The message is too large."}, status=413)
    try:
        message = json.loads(request.body)
    except ValueError:
        return JsonResponse({"error": "The body is not JSON."}, status=400)
    if not isinstance(message, dict):
        return JsonResponse({"error": "The body is not an SNS message."}, status=400)
    try:
        sns.verify(message)
    except sns.Rejected as exc:
        logger.warning("SNS hook: refused a post from %s: %s", request.META.get("REMOTE_ADDR"), exc)
        metrics.sns_received("invalid", "refused")
        return JsonResponse({"error": f"Refused: {exc}"}, status=403)
    kind = message["Type"]
    metrics.sns_received(kind, "accepted")
    if kind == sns.SUBSCRIBE:
        try:
            sns.confirm_subscription(message)
        except sns.Rejected as exc:
            return JsonResponse({"error": f"Refused: {exc}"}, status=403)
        except OSError as exc:
            logger.error("SNS hook: confirming the subscription failed: %s", exc)
            return JsonResponse({"error": "The subscription could not be confirmed."}, status=502)
        return JsonResponse({"confirmed": True})
    if kind == sns.NOTIFICATION:
        change = sns.alarm_change(message)
        if change is None:
            return JsonResponse({"recorded": False, "note": "Not a CloudWatch alarm message."})
        return JsonResponse({"recorded": sns.record(change)})
    return JsonResponse({"ok": True})
