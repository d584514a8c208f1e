"""Masking of sensitive values in message bodies and attributes, on the server.

What is masked (``EVENTOPS_MASKING=off`` turns it all off):

- every value under a key that names a secret (case-insensitive): password, passwd, secret,
  token, authorization, api_key/apikey, card, pan, cvv, cvc, ssn, iban, and the names in
  ``EVENTOPS_MASK_KEYS``. The long names match anywhere in the key (``clientSecret``,
  ``access_token``, ``X-Api-Key``); the short ones (card, pan, cvv, cvc, ssn, iban and the
  configured ones) match a whole word of it (``card_number``, ``cardNumber``, ``PAN``), so
  ``company`` or ``expand`` stay readable;
- any value that looks like a payment card number: 13 to 19 digits, optionally grouped by
  spaces or dashes, that pass the Luhn check and are not part of a word (the digits of a
  UUID or another hex identifier are not a card). It becomes ``••••`` and its last four digits;
- whatever the regular expressions in ``EVENTOPS_MASK_PATTERNS`` match.

Bodies that are JSON are masked value by value, keys kept, at any depth, including JSON held
in a string (an SNS envelope's ``Message``). Other bodies are masked as text: card numbers,
patterns and ``key=value`` / ``key: value`` pairs under a secret key. A body in which nothing
is masked comes back unchanged, byte for byte; one in which something is masked comes back
re-serialised.

Masking is for showing. Redrive, replay and re-publish always move the original bytes: they
never call this module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings

MASK = "••••"
# Matched anywhere in the key once it is lower-cased and stripped of separators.
LONG_KEYS = ("password", "passwd", "secret", "token", "authorization", "apikey")
# Matched as a whole word of the key (snake_case, kebab-case, camelCase, a plural "s").
SHORT_KEYS = ("card", "pan", "cvv", "cvc", "ssn", "iban")

# Not inside a word: digits between letters are part of an identifier (a UUID's hex groups
# "dcd9-4123-8123-4567048f" would otherwise pass as a 19-digit card number).
# "_" may touch one: "card_4111111111111111" is still a card.
_CARD = re.compile(r"(?<![^\W_])(?<!-)\d(?:[ -]?\d){12,18}(?![^\W_])(?!-)")
_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_SEPARATORS = re.compile(r"[^a-z0-9]")


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card_mask(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group(0))
    if 13 <= len(digits) <= 19 and luhn_ok(digits):
        return MASK + digits[-4:]
    return match.group(0)


def split_patterns(value: str) -> list[str]:
    """``EVENTOPS_MASK_PATTERNS``: a JSON array, or regular expressions separated by commas
    outside brackets and braces (so ``\\d{3,4}`` stays whole)."""
    value = value.strip()
    if not value:
        return []
    if value.startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and all(isinstance(item, str) for item in parsed):
            return [item for item in parsed if item]
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    escaped = False
    for char in value:
        if escaped:
            current.append(char)
            escaped = False
            continue
        if char == "\\":
            escaped = True
        elif char in "([{":
            depth += 1
        elif char in ")]}" and depth:
            depth -= 1
        elif char == "," and not depth:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def compile_patterns(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    """Compile ``EVENTOPS_MASK_PATTERNS``; a bad one is a configuration error naming it."""
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as error:
            message = f"EVENTOPS_MASK_PATTERNS: {pattern!r} is not a regular expression: {error}"
            raise ValueError(message) from error
    return tuple(compiled)


@dataclass(frozen=True)
class Masker:
    """Masks values; ``Masker.from_settings()`` is the configured one."""

    long_keys: tuple[str, ...] = LONG_KEYS
    short_keys: tuple[str, ...] = SHORT_KEYS
    patterns: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def from_settings(cls) -> Masker:
        extra = tuple(
            _SEPARATORS.sub("", key.lower())
            for key in getattr(settings, "EVENTOPS_MASK_KEYS", ())
            if _SEPARATORS.sub("", key.lower())
        )
        patterns = getattr(settings, "EVENTOPS_MASK_PATTERNS", ())
        return _masker(extra, tuple(patterns))

    # -- keys -------------------------------------------------------------------------------

    def sensitive_key(self, key: object) -> bool:
        if not isinstance(key, str) or not key:
            return False
        flat = _SEPARATORS.sub("", key.lower())
        if any(word in flat for word in self.long_keys):
            return True
        words = {word.lower() for word in _WORDS.findall(key)}
        words |= {word[:-1] for word in words if len(word) > 3 and word.endswith("s")}
        return flat in self.short_keys or not words.isdisjoint(self.short_keys)

    # -- values -----------------------------------------------------------------------------

    def mask_string(self, text: str) -> str:
        """Card numbers and configured patterns in free text (no key context)."""
        masked = _CARD.sub(_card_mask, text)
        for pattern in self.patterns:
            masked = pattern.sub(MASK, masked)
        return masked

    def _secret_value(self, value: Any) -> Any:
        """A value under a secret key: leaves masked, shape kept."""
        if isinstance(value, Mapping):
            return {key: self._secret_value(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._secret_value(item) for item in value]
        if value is None or isinstance(value, bool):
            return value
        digits = re.sub(r"[ -]", "", str(value))
        if digits.isdigit() and 13 <= len(digits) <= 19 and luhn_ok(digits):
            return MASK + digits[-4:]
        return MASK

    def mask_value(self, value: Any) -> Any:
        """A parsed JSON value, masked (a new object; the input is not changed)."""
        if isinstance(value, Mapping):
            return {
                key: self._secret_value(item) if self.sensitive_key(key) else self.mask_value(item)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self.mask_value(item) for item in value]
        if isinstance(value, str):
            nested = _parse_json_container(value)
            if nested is not None:
                masked = self.mask_value(nested)
                return value if masked == nested else json.dumps(masked, ensure_ascii=False)
            return self.mask_string(value)
        if isinstance(value, int) and not isinstance(value, bool):
            text = str(value)
            masked_text = self.mask_string(text)
            return value if masked_text == text else masked_text
        return value

    def mask_text(self, text: str) -> str:
        """A message body: JSON value by value, anything else as text."""
        if not text:
            return text
        parsed = _parse_json_container(text)
        if parsed is not None:
            try:
                masked = self.mask_value(parsed)
                if masked == parsed:
                    return text
                indent = 2 if "\n" in text.strip() else None
                return json.dumps(masked, ensure_ascii=False, indent=indent)
            except RecursionError:
                # Parses, yet too deep to walk: masked as text (pairs and card numbers),
                # never shown as it is.
                pass
        masked_text = self._key_value_pairs().sub(self._mask_pair, text)
        return self.mask_string(masked_text)

    def mask_attributes(self, attributes: Mapping[str, Any] | None) -> dict[str, Any]:
        """SQS message attributes (``{name: {DataType, StringValue|BinaryValue}}``) or plain
        ``{name: value}`` attributes (system attributes, EventBridge fields)."""
        masked: dict[str, Any] = {}
        for name, attribute in (attributes or {}).items():
            if isinstance(attribute, Mapping) and "DataType" in attribute:
                copy = dict(attribute)
                for field in ("StringValue", "BinaryValue"):
                    if field in copy:
                        if self.sensitive_key(name):
                            copy[field] = MASK
                        elif field == "StringValue" and isinstance(copy[field], str):
                            copy[field] = self.mask_text(copy[field])
                masked[name] = copy
            elif self.sensitive_key(name):
                masked[name] = self._secret_value(attribute)
            else:
                masked[name] = self.mask_value(attribute)
        return masked

    # -- free text: key=value -----------------------------------------------------------------

    def _key_value_pairs(self) -> re.Pattern[str]:
        return _pair_pattern(self.long_keys, self.short_keys)

    def _mask_pair(self, match: re.Match[str]) -> str:
        if not self.sensitive_key(match.group("key")):
            return match.group(0)
        value = match.group("value")
        quote = value[0] if value[:1] in "\"'" else ""
        return f"{match.group('head')}{quote}{MASK}{quote}"


@lru_cache(maxsize=16)
def _pair_pattern(long_keys: tuple[str, ...], short_keys: tuple[str, ...]) -> re.Pattern[str]:
    # key=value, key: value, "key": "value" in text that is not JSON (logs, form bodies, XML
    # attributes). The key must contain one of the names; sensitive_key() decides.
    names = "|".join(re.escape(name) for name in (*long_keys, *short_keys, "api_key", "api-key"))
    return re.compile(
        # A key starts a word and its parts are bounded: otherwise the match is tried and
        # backtracked from every character of a long run of word characters (64 KB took minutes).
        r"(?P<head>(?<![\w.-])(?P<key>[\w.-]{0,64}(?i:" + names + r")[\w.-]{0,64})[\"']?\s*[:=]\s*)"
        r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s&,;<>\"']+)"
    )


@lru_cache(maxsize=16)
def _masker(extra_keys: tuple[str, ...], patterns: tuple[str, ...]) -> Masker:
    return Masker(
        short_keys=SHORT_KEYS + extra_keys,
        patterns=compile_patterns(patterns),
    )


def _parse_json_container(text: str) -> Any:
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[":
        return None
    try:
        parsed = json.loads(stripped)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, (dict, list)) else None


def enabled() -> bool:
    return bool(getattr(settings, "EVENTOPS_MASKING", True))


def masker() -> Masker:
    return Masker.from_settings()


def mask_text(text: str) -> str:
    """``text`` masked when masking is on; unchanged when it is off."""
    return masker().mask_text(text) if enabled() else text


def mask_value(value: Any) -> Any:
    return masker().mask_value(value) if enabled() else value


def mask_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return masker().mask_attributes(attributes) if enabled() else dict(attributes or {})


def mask_record(value: Any) -> Any:
    """An audit record (operation parameters, outcome): like ``mask_value``, and free text
    in it (a diff, a truncated body, a reason) masked as ``mask_text`` masks a body."""
    if not enabled():
        return value
    active = masker()
    return _mask_record(active, value)


def _mask_record(active: Masker, value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            key: active._secret_value(item)
            if active.sensitive_key(key)
            else _mask_record(active, item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_mask_record(active, item) for item in value]
    if isinstance(value, str):
        return active.mask_text(value)
    return active.mask_value(value)


def must_mask(user: Any, environment: str) -> bool:
    """Whether what ``user`` sees in ``environment`` is masked: masking on and the user lacks
    "view unmasked" there."""
    if not enabled():
        return False
    from operations.access import Action, allows

    return not allows(user, Action.VIEW_UNMASKED, environment)


def for_viewer(text: str, user: Any, environment: str) -> str:
    """``text`` as ``user`` may see it in ``environment``."""
    return mask_text(text) if must_mask(user, environment) else text
