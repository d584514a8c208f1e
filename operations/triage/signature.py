"""A failure's signature: consumer + exception name + normalised message + top frame.

Two messages that failed the same way share a signature even when the values in their error
differ: numbers, UUIDs, hex IDs and quoted values are replaced by placeholders.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from operations.triage.errors import ConsumerError

_UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
_HEX = re.compile(r"\b0x[0-9a-fA-F]+\b|\b[0-9a-fA-F]{16,}\b")
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?![\w.])|\d+")
_SPACE = re.compile(r"\s+")


def normalise(message: str) -> str:
    text = _UUID.sub("<uuid>", message)
    text = _QUOTED.sub("<value>", text)
    text = _HEX.sub("<hex>", text)
    text = _NUMBER.sub("<n>", text)
    return _SPACE.sub(" ", text).strip()[:500]


@dataclass(frozen=True)
class Signature:
    consumer: str
    exception_name: str
    message: str  # normalised
    top_frame: str

    @property
    def key(self) -> str:
        """A stable 32-character digest, the failure group's identity."""
        joined = "\x1f".join((self.consumer, self.exception_name, self.message, self.top_frame))
        return hashlib.sha256(joined.encode("utf-8", "replace")).hexdigest()[:32]

    @property
    def title(self) -> str:
        head = self.exception_name or "error"
        return f"{head}: {self.message}" if self.message else head


def signature_of(error: ConsumerError) -> Signature:
    return Signature(
        consumer=error.consumer,
        exception_name=error.exception_name,
        message=normalise(error.message) if error.recorded else "(no error recorded)",
        top_frame=error.location,
    )
