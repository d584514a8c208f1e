"""Bodies that carry secrets, for the masking tests of every surface."""

from __future__ import annotations

import json

CARD = "4111111111111111"  # Luhn-valid
SPACED_CARD = "4111 1111 1111 1111"
PASSWORD = "hunter2"
API_KEY = "sk_live_51abcdefSECRET"
SECRETS = (CARD, SPACED_CARD, PASSWORD, API_KEY)
CORRELATION_ID = "corr-secret"
DETAIL = {
    "correlationId": CORRELATION_ID,
    "card": CARD,
    "password": PASSWORD,
    "note": f"paid with {SPACED_CARD}",
}
BODY = json.dumps(
    {"id": "e-secret", "detail-type": "OrderPaid", "source": "shop", "detail": DETAIL}
)


def leaked(text: str) -> list[str]:
    """The secrets that appear in ``text`` (none, for someone who must see them masked)."""
    return [secret for secret in SECRETS if secret in text]
