"""Amazon SNS HTTPS deliveries: signature verification, subscription confirmation and the
CloudWatch alarm notifications they carry (``POST /hooks/sns``, dashboard/views/hooks.py).

Verification follows AWS's "Verifying the signatures of Amazon SNS messages":

- ``SigningCertURL`` must be ``https://sns.<region>.amazonaws.com[.cn]/...pem``; the
  certificate is fetched once per URL and cached;
- the string to sign is ``Name\\nValue\\n`` for the fields AWS lists for the message's type,
  in that (alphabetical) order, ``Subject`` only when present (Notification only);
- ``SignatureVersion`` 1 is SHA1withRSA, 2 is SHA256withRSA; anything else is refused;
- the topic must be one of ``EVENTOPS_SNS_TOPIC_ARNS``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction

from operations import environments
from operations.models import AlarmTransition

logger = logging.getLogger(__name__)

NOTIFICATION = "Notification"
SUBSCRIBE = "SubscriptionConfirmation"
UNSUBSCRIBE = "UnsubscribeConfirmation"
# https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
SIGNED_FIELDS = {
    NOTIFICATION: ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    SUBSCRIBE: ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    UNSUBSCRIBE: (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
SNS_HOST = re.compile(r"^sns\.([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com(?:\.cn)?$")
CERT_CACHE_SECONDS = 24 * 3600
MAX_CERT_BYTES = 64 * 1024
FETCH_TIMEOUT = 5.0


class Rejected(Exception):
    """The post is not a genuine SNS message for a configured topic (answered 403)."""


def configured_topics() -> frozenset[str]:
    return frozenset(getattr(settings, "EVENTOPS_SNS_TOPIC_ARNS", []) or [])


def sns_host_region(url: str) -> str:
    """The Region of an ``https://sns.<region>.amazonaws.com`` URL; "" if it is not one."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme != "https" or parts.port not in (None, 443) or parts.username:
        return ""
    match = SNS_HOST.fullmatch(parts.hostname or "")
    return match.group(1) if match else ""


def string_to_sign(message: dict[str, Any]) -> str:
    fields = SIGNED_FIELDS[str(message.get("Type"))]
    lines = []
    for name in fields:
        if name not in message:
            if name == "Subject":
                continue
            raise Rejected(f"The message lacks {name}.")
        lines.append(f"{name}\n{message[name]}\n")
    return "".join(lines)


def fetch_certificate(url: str) -> bytes:
    """The PEM at ``url`` (an SNS host, checked before this is called)."""
    request = urllib.request.Request(url, headers={"User-Agent": "eventops-sns-hook"})
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:  # noqa: S310
        return bytes(response.read(MAX_CERT_BYTES + 1))[: MAX_CERT_BYTES + 1]


def certificate(url: str) -> x509.Certificate:
    key = "eventops:sns-cert:" + url
    pem = cache.get(key)
    if pem is None:
        try:
            pem = fetch_certificate(url)
        except OSError as exc:
            raise Rejected(f"The signing certificate could not be fetched: {exc}") from exc
        if len(pem) > MAX_CERT_BYTES:
            raise Rejected("The signing certificate is too large.")
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise Rejected("The signing certificate is not a PEM certificate.") from exc
    cache.set(key, pem, CERT_CACHE_SECONDS)
    return cert


def verify(message: dict[str, Any]) -> None:
    """Raise ``Rejected`` unless ``message`` is a genuine SNS message for a configured topic."""
    kind = message.get("Type")
    if kind not in SIGNED_FIELDS:
        raise Rejected(f"Unknown message type {kind!r}.")
    topic = message.get("TopicArn")
    if topic not in configured_topics():
        raise Rejected(f"Topic {topic!r} is not configured (EVENTOPS_SNS_TOPIC_ARNS).")
    algorithm = HASHES.get(str(message.get("SignatureVersion")))
    if algorithm is None:
        raise Rejected("Unsupported or missing SignatureVersion.")
    cert_url = str(message.get("SigningCertURL") or "")
    if not sns_host_region(cert_url) or not urlsplit(cert_url).path.endswith(".pem"):
        raise Rejected("SigningCertURL is not an https .pem on an sns.<region>.amazonaws.com host.")
    try:
        signature = base64.b64decode(str(message.get("Signature") or ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Rejected("The signature is not base64.") from exc
    if not signature:
        raise Rejected("The message is not signed.")
    public_key = certificate(cert_url).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise Rejected("The signing certificate's key is not RSA.")
    try:
        public_key.verify(
            signature, string_to_sign(message).encode("utf-8"), padding.PKCS1v15(), algorithm()
        )
    except InvalidSignature as exc:
        raise Rejected("The signature does not match.") from exc


def confirm_subscription(message: dict[str, Any], get: Callable[[str], Any] | None = None) -> None:
    """GET the SubscribeURL of a verified confirmation: only on the topic's own SNS host."""
    url = str(message.get("SubscribeURL") or "")
    topic_region = str(message.get("TopicArn", "")).split(":")[3:4]
    if not sns_host_region(url) or [sns_host_region(url)] != topic_region:
        raise Rejected("SubscribeURL is not on the topic's sns.<region>.amazonaws.com host.")
    (get or _get)(url)
    logger.info("SNS subscription confirmed for %s", message.get("TopicArn"))


def _get(url: str) -> None:
    with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT) as response:  # noqa: S310
        response.read(MAX_CERT_BYTES)


@dataclass(frozen=True)
class AlarmChange:
    name: str
    arn: str
    old_state: str
    new_state: str
    reason: str
    at: datetime


def alarm_change(message: dict[str, Any]) -> AlarmChange | None:
    """The CloudWatch alarm state change a Notification carries, or None if it carries
    something else."""
    try:
        body = json.loads(str(message.get("Message") or ""))
    except ValueError:
        return None
    if not isinstance(body, dict) or not body.get("AlarmName") or not body.get("NewStateValue"):
        return None
    at = _time(str(body.get("StateChangeTime") or "")) or _time(str(message.get("Timestamp")))
    if at is None:
        return None
    return AlarmChange(
        name=str(body["AlarmName"])[:255],
        arn=str(body.get("AlarmArn") or "")[:1024],
        old_state=str(body.get("OldStateValue") or "")[:32],
        new_state=str(body["NewStateValue"])[:32],
        reason=str(body.get("NewStateReason") or "")[:10_000],
        at=at,
    )


def _time(value: str) -> datetime | None:
    """CloudWatch writes ``2024-05-01T12:00:00.000+0000``; SNS ``...000Z``."""
    text = value.strip().replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def record(change: AlarmChange) -> bool:
    """Add the transition to the alarm history; False if it was already there (a repeated
    delivery of the same message, or the same change seen by polling)."""
    try:
        with transaction.atomic():
            AlarmTransition.objects.create(
                environment=environments.name_for_arn(change.arn),
                alarm_name=change.name,
                alarm_arn=change.arn,
                old_state=change.old_state,
                new_state=change.new_state,
                reason=change.reason,
                changed_at=change.at,
            )
    except IntegrityError:
        return False
    return True
