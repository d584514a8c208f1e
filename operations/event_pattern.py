"""A local EventBridge event-pattern matcher.

EventBridge has no API that evaluates many events against many rules at once:
``TestEventPattern`` takes one event and one pattern per call. The replay preview
matches every event of a window against every rule of a bus, so it uses this
matcher instead (no API calls, no throttling). It follows the content-filtering
rules documented at
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html

Supported: exact values (strings, numbers, booleans, null), ``prefix``, ``suffix``
(both also with ``equals-ignore-case``), ``anything-but`` (a value, a list, or a
nested ``prefix`` / ``suffix`` / ``equals-ignore-case`` / ``wildcard``),
``numeric`` ranges, ``exists``, ``equals-ignore-case``, ``wildcard``, ``cidr`` and
``$or``. Array values in the event match when any element matches.
"""

from __future__ import annotations

import ipaddress
import json
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

_MISSING = object()

_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    ">=": operator.ge,
    ">": operator.gt,
}


class InvalidPattern(ValueError):
    """The pattern is not a valid EventBridge event pattern."""


def parse_pattern(pattern: str | Mapping[str, Any]) -> dict[str, Any]:
    """Parse and validate a pattern given as JSON text or a dict."""
    if isinstance(pattern, str):
        try:
            loaded = json.loads(pattern)
        except json.JSONDecodeError as exc:
            raise InvalidPattern(f"The pattern is not valid JSON: {exc.msg}") from None
    else:
        loaded = dict(pattern)
    if not isinstance(loaded, dict):
        raise InvalidPattern("An event pattern must be a JSON object.")
    _validate(loaded, path="")
    return loaded


def _validate(node: dict[str, Any], path: str) -> None:
    for key, value in node.items():
        where = f"{path}.{key}" if path else key
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2:
                raise InvalidPattern(f"{where} must be a list of at least two patterns.")
            for option in value:
                if not isinstance(option, dict):
                    raise InvalidPattern(f"Every option of {where} must be an object.")
                _validate(option, path)
        elif isinstance(value, dict):
            _validate(value, where)
        elif isinstance(value, list):
            if not value:
                raise InvalidPattern(f"{where}: empty arrays are not allowed.")
            for matcher in value:
                if isinstance(matcher, dict):
                    _validate_matcher(matcher, where)
                elif isinstance(matcher, list):
                    raise InvalidPattern(f"{where}: nested arrays are not allowed.")
        else:
            raise InvalidPattern(f"{where} must be an object or an array.")


def _validate_matcher(matcher: dict[str, Any], where: str) -> None:
    if len(matcher) != 1:
        raise InvalidPattern(f"{where}: a matcher object must have exactly one key.")
    name, arg = next(iter(matcher.items()))
    if name == "numeric":
        if not isinstance(arg, list) or len(arg) not in (2, 4):
            raise InvalidPattern(f"{where}: numeric takes one or two comparisons.")
        for op, value in zip(arg[::2], arg[1::2], strict=True):
            if op not in _NUMERIC_OPS or not _is_number(value):
                raise InvalidPattern(f"{where}: bad numeric comparison {op!r} {value!r}.")
    elif name == "exists":
        if not isinstance(arg, bool):
            raise InvalidPattern(f"{where}: exists takes true or false.")
    elif name not in {
        "prefix",
        "suffix",
        "anything-but",
        "equals-ignore-case",
        "wildcard",
        "cidr",
    }:
        raise InvalidPattern(f"{where}: unknown matcher {name!r}.")


def matches(pattern: str | Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether ``event`` (the full envelope) matches ``pattern``.

    An empty pattern matches nothing, as EventBridge refuses empty patterns on rules.
    """
    parsed = parse_pattern(pattern)
    if not parsed:
        return False
    return _match_object(parsed, event)


def _match_object(pattern: dict[str, Any], node: Any) -> bool:
    for key, expected in pattern.items():
        if key == "$or":
            if not any(_match_object(option, node) for option in expected):
                return False
            continue
        value = node.get(key, _MISSING) if isinstance(node, Mapping) else _MISSING
        if isinstance(expected, dict):
            if not _match_object(expected, value if isinstance(value, Mapping) else {}):
                return False
        elif not _match_field(expected, value):
            return False
    return True


def _match_field(matchers: list[Any], value: Any) -> bool:
    for matcher in matchers:
        if isinstance(matcher, dict) and "exists" in matcher:
            present = value is not _MISSING and not isinstance(value, Mapping)
            if isinstance(value, list):
                present = bool(value)
            if present == matcher["exists"]:
                return True
            continue
        if value is _MISSING or isinstance(value, Mapping):
            continue
        values = value if isinstance(value, list) else [value]
        if any(_match_one(matcher, item) for item in values):
            return True
    return False


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(expected: Any, actual: Any) -> bool:
    if _is_number(expected) and _is_number(actual):
        return float(expected) == float(actual)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    return type(expected) is type(actual) and expected == actual


def _match_one(matcher: Any, actual: Any) -> bool:
    if not isinstance(matcher, dict):
        return _equal(matcher, actual)
    name, arg = next(iter(matcher.items()))
    if name == "prefix":
        return _string_test(arg, actual, lambda a, e: a.startswith(e))
    if name == "suffix":
        return _string_test(arg, actual, lambda a, e: a.endswith(e))
    if name == "equals-ignore-case":
        return _string_test({"equals-ignore-case": arg}, actual, lambda a, e: a == e)
    if name == "wildcard":
        return isinstance(actual, str) and _wildcard(arg, actual)
    if name == "numeric":
        if not _is_number(actual):
            return False
        pairs = zip(arg[::2], arg[1::2], strict=True)
        return all(_NUMERIC_OPS[op](float(actual), float(bound)) for op, bound in pairs)
    if name == "cidr":
        return _in_cidr(arg, actual)
    if name == "anything-but":
        return _anything_but(arg, actual)
    return False


def _string_test(arg: Any, actual: Any, test: Callable[[str, str], bool]) -> bool:
    if not isinstance(actual, str):
        return False
    if isinstance(arg, dict) and "equals-ignore-case" in arg:
        expected = arg["equals-ignore-case"]
        options = expected if isinstance(expected, list) else [expected]
        return any(isinstance(o, str) and test(actual.lower(), o.lower()) for o in options)
    options = arg if isinstance(arg, list) else [arg]
    return any(isinstance(o, str) and test(actual, o) for o in options)


def _wildcard(pattern: str, actual: str) -> bool:
    # "*" matches any run of characters; "\*" and "\\" are literal.
    regex = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "*\\":
            regex.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        regex.append(".*" if char == "*" else re.escape(char))
        i += 1
    return re.fullmatch("".join(regex), actual, flags=re.DOTALL) is not None


def _in_cidr(arg: Any, actual: Any) -> bool:
    if not isinstance(arg, str) or not isinstance(actual, str):
        return False
    try:
        return ipaddress.ip_address(actual) in ipaddress.ip_network(arg, strict=False)
    except ValueError:
        return False


def _anything_but(arg: Any, actual: Any) -> bool:
    if isinstance(arg, dict):
        return not _match_one(arg, actual)
    options = arg if isinstance(arg, list) else [arg]
    return not any(_equal(option, actual) for option in options)
