"""REST API tokens: made, checked and revoked here (the API, the token page and
``manage.py apitoken`` call these). A token is ``eo_<prefix>_<secret>``; only the SHA-256
of the whole token is stored, so a database dump holds no usable token."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils import timezone

from operations.models import ApiToken

SCHEME = "eo"
# last_used_at is written at most this often per token, not on every request.
TOUCH_SECONDS = 60
MAX_NAME = 100


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    # The secret, shown once.
    plaintext: str


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def create(user: Any, name: str = "", expires_days: int | None = None) -> NewToken:
    """A new token for ``user``; ``expires_days`` None or 0: it never expires."""
    name = (name or "").strip()[:MAX_NAME] or f"token {timezone.now():%Y-%m-%d %H:%M}"
    if expires_days is not None and expires_days < 0:
        raise ValueError("The expiry must be a positive number of days.")
    prefix = secrets.token_hex(6)
    plaintext = f"{SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    expires = timezone.now() + timedelta(days=expires_days) if expires_days else None
    token = ApiToken.objects.create(
        user=user, name=name, prefix=prefix, hashed=digest(plaintext), expires_at=expires
    )
    return NewToken(token=token, plaintext=plaintext)


def authenticate(plaintext: str) -> ApiToken | None:
    """The usable token this text is, or None (malformed, unknown, expired or revoked)."""
    scheme, _, rest = (plaintext or "").strip().partition("_")
    prefix, _, secret = rest.partition("_")
    if scheme != SCHEME or not prefix or not secret or len(plaintext) > 200:
        return None
    token = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
    if token is None or not hmac.compare_digest(token.hashed, digest(plaintext.strip())):
        return None
    if not token.is_usable or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > TOUCH_SECONDS:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def revoke(token: ApiToken) -> bool:
    """Revoke ``token``; False if it already was (revoking twice changes nothing)."""
    updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    token.refresh_from_db()
    return bool(updated)


def find(user: Any, ref: str) -> ApiToken | None:
    """One of ``user``'s tokens by its prefix or its id (None for anyone else's)."""
    rows = ApiToken.objects.filter(user=user)
    if ref.isdigit():
        return rows.filter(pk=int(ref)).first() or rows.filter(prefix=ref).first()
    return rows.filter(prefix=ref).first()
