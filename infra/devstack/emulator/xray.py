"""X-Ray: ``GetTraceSummaries`` with filter expressions, annotations and pagination.

moto stores segment documents but answers any ``FilterExpression`` with an InternalFailure and
returns empty ``Annotations``. This module replaces the response handler of
``GetTraceSummaries`` (not the HTTP parsing: it reads the same JSON parameters moto does) with
one that builds AWS-shaped summaries from moto's stored segments and applies a filter
expression.

Supported filter language (the subset of X-Ray's that an operator console needs):

- ``annotation.<key> <op> <value>`` and ``annotation[<key>] <op> <value>`` with ``=``, ``!=``,
  ``<``, ``<=``, ``>``, ``>=``, ``BEGINSWITH``, ``ENDSWITH``, ``CONTAINS``; values are
  double-quoted strings (``\\"`` and ``\\\\`` escapes), numbers or ``true``/``false``;
- a bare ``annotation.<key>``: the annotation is present (and not ``false``);
- the flags ``error``, ``fault``, ``throttle``, ``ok``, ``partial`` (bare or ``= true|false``);
- ``duration`` and ``responsetime`` (seconds), ``http.status``, ``http.url``, ``http.method``,
  ``http.useragent``, ``http.clientip``, ``user`` with the operators above;
- ``service("name")``; ``AND``, ``OR``, ``!``/``NOT`` and parentheses.

Anything else is rejected with ``InvalidRequestException`` ("Invalid filter expression"), which
is the error code botocore's model lists for this operation, never an InternalFailure.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_PAGE_SIZE = 100
VIEW_CACHE = "_eventops_trace_views"
INVALID_FILTER = "Invalid filter expression"

Response = tuple[str, dict[str, int]] | str


class FilterError(ValueError):
    """The filter expression cannot be parsed or uses an unsupported keyword."""


# --- the trace as the filter sees it ----------------------------------------------------------


@dataclass
class AnnotationHit:
    value: Any
    service: dict[str, str]


@dataclass
class TraceView:
    """Everything a summary and a filter need from one trace's stored segments."""

    trace_id: str
    start: float
    end: float
    response_time: float
    has_error: bool
    has_fault: bool
    has_throttle: bool
    is_partial: bool
    annotations: dict[str, list[AnnotationHit]] = field(default_factory=dict)
    http: dict[str, Any] = field(default_factory=dict)
    users: list[str] = field(default_factory=list)
    services: list[dict[str, str]] = field(default_factory=list)
    resource_arns: list[str] = field(default_factory=list)
    entry_point: dict[str, str] | None = None

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)

    def summary(self) -> dict[str, Any]:
        annotations = {
            key: [
                {"AnnotationValue": _annotation_value(hit.value), "ServiceIds": [hit.service]}
                for hit in hits
            ]
            for key, hits in self.annotations.items()
        }
        summary: dict[str, Any] = {
            "Id": self.trace_id,
            "StartTime": self.start,
            "Duration": round(self.duration, 3),
            "ResponseTime": round(self.response_time, 3),
            "HasFault": self.has_fault,
            "HasError": self.has_error,
            "HasThrottle": self.has_throttle,
            "IsPartial": self.is_partial,
            "Http": self.http,
            "Annotations": annotations,
            "Users": [{"UserName": user, "ServiceIds": []} for user in self.users],
            "ServiceIds": self.services,
            "ResourceARNs": [{"ARN": arn} for arn in self.resource_arns],
            "InstanceIds": [],
            "AvailabilityZones": [],
            "FaultRootCauses": [],
            "ErrorRootCauses": [],
            "ResponseTimeRootCauses": [],
            "Revision": 1,
        }
        if self.entry_point:
            summary["EntryPoint"] = self.entry_point
        return summary


def _annotation_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BooleanValue": value}
    if isinstance(value, int | float):
        return {"NumberValue": float(value)}
    return {"StringValue": str(value)}


def _walk(document: dict[str, Any]) -> list[dict[str, Any]]:
    """A segment document and all its nested subsegments."""
    found = [document]
    for sub in document.get("subsegments") or []:
        if isinstance(sub, dict):
            found.extend(_walk(sub))
    return found


def build_view(trace_id: str, segments: list[Any]) -> TraceView | None:
    """Summarise moto's ``TraceSegment`` objects of one trace (None if it has none)."""
    documents: list[tuple[dict[str, Any], bool]] = []
    for segment in segments:
        try:
            doc = json.loads(segment.raw)
        except (TypeError, ValueError):
            continue
        if isinstance(doc, dict):
            documents.append((doc, doc.get("type") == "subsegment"))
    if not documents:
        return None
    starts = [float(d["start_time"]) for d, _ in documents if _is_number(d.get("start_time"))]
    ends = [float(d["end_time"]) for d, _ in documents if _is_number(d.get("end_time"))]
    if not starts:
        return None
    top = [d for d, is_sub in documents if not is_sub]
    roots = sorted(
        [d for d in top if not d.get("parent_id")] or top or [documents[0][0]],
        key=lambda d: float(d.get("start_time", 0)),
    )
    root = roots[0]
    root_end = root.get("end_time")
    view = TraceView(
        trace_id=trace_id,
        start=min(starts),
        end=max(ends) if ends else min(starts),
        response_time=(float(root_end) - float(root["start_time"])) if root_end else 0.0,
        has_error=False,
        has_fault=False,
        has_throttle=False,
        is_partial=False,
    )
    seen_services: set[tuple[str, str]] = set()
    for doc, is_sub in documents:
        service = {"Name": str(doc.get("name", ""))}
        if doc.get("origin"):
            service["Type"] = str(doc["origin"])
        key = (service["Name"], service.get("Type", ""))
        if not is_sub and key not in seen_services:
            seen_services.add(key)
            view.services.append(service)
        arn = (doc.get("aws") or {}).get("function_arn") or doc.get("resource_arn")
        if arn and arn not in view.resource_arns:
            view.resource_arns.append(str(arn))
        for node in _walk(doc):
            view.has_error = view.has_error or bool(node.get("error"))
            view.has_fault = view.has_fault or bool(node.get("fault"))
            view.has_throttle = view.has_throttle or bool(node.get("throttle"))
            view.is_partial = view.is_partial or bool(node.get("in_progress"))
            for key_name, value in (node.get("annotations") or {}).items():
                view.annotations.setdefault(str(key_name), []).append(AnnotationHit(value, service))
    http = root.get("http") or {}
    request, response = http.get("request") or {}, http.get("response") or {}
    view.http = {
        k: v
        for k, v in {
            "HttpURL": request.get("url"),
            "HttpStatus": response.get("status"),
            "HttpMethod": request.get("method"),
            "UserAgent": request.get("user_agent"),
            "ClientIp": request.get("client_ip"),
        }.items()
        if v is not None
    }
    if root.get("user"):
        view.users.append(str(root["user"]))
    entry = {"Name": str(root.get("name", ""))}
    if root.get("origin"):
        entry["Type"] = str(root["origin"])
    view.entry_point = entry
    return view


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- the filter language ----------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>")
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<op><=|>=|!=|=|<|>)
  | (?P<punct>[()!\[\],])
  | (?P<word>[A-Za-z_][A-Za-z0-9_.\-]*)
    """,
    re.VERBOSE,
)
_WORD_OPS = {"BEGINSWITH", "ENDSWITH", "CONTAINS"}
_FLAGS = {"error", "fault", "throttle", "ok", "partial"}
_NUMERIC_FIELDS = {"duration", "responsetime", "http.status"}
_STRING_FIELDS = {"http.url", "http.method", "http.useragent", "http.clientip", "user"}
MAX_FILTER_LENGTH = 2000


@dataclass(frozen=True)
class Token:
    kind: str  # string, number, op, punct, word
    text: str
    value: Any = None


def tokenize(expression: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(expression):
        match = _TOKEN.match(expression, pos)
        if not match:
            raise FilterError(f"unexpected character at {pos}")
        kind = match.lastgroup or ""
        if kind == "ws":
            pos = match.end()
            continue
        if kind == "string":
            value, pos = _read_string(expression, match.end())
            tokens.append(Token("string", value, value))
            continue
        text = match.group()
        pos = match.end()
        if kind == "number":
            tokens.append(Token("number", text, float(text)))
        elif kind == "word" and text.upper() in _WORD_OPS:
            tokens.append(Token("op", text.upper()))
        else:
            tokens.append(Token(kind, text))
    return tokens


def _read_string(expression: str, pos: int) -> tuple[str, int]:
    """Read a double-quoted string body starting after the opening quote."""
    chars: list[str] = []
    while pos < len(expression):
        char = expression[pos]
        if char == "\\":
            if pos + 1 >= len(expression):
                break
            chars.append(expression[pos + 1])
            pos += 2
            continue
        if char == '"':
            return "".join(chars), pos + 1
        chars.append(char)
        pos += 1
    raise FilterError("unterminated string")


Predicate = Callable[[TraceView], bool]


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise FilterError("unexpected end of expression")
        self.pos += 1
        return token

    def expect(self, kind: str, text: str) -> None:
        token = self.take()
        if token.kind != kind or token.text != text:
            raise FilterError(f"expected {text!r}")

    def _is_word(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "word" and token.text.upper() in words

    def parse(self) -> Predicate:
        predicate = self.or_expr()
        if self.peek() is not None:
            raise FilterError(f"unexpected {self.peek()!r}")
        return predicate

    def or_expr(self) -> Predicate:
        terms = [self.and_expr()]
        while self._is_word("OR"):
            self.take()
            terms.append(self.and_expr())
        if len(terms) == 1:
            return terms[0]
        return lambda view: any(term(view) for term in terms)

    def and_expr(self) -> Predicate:
        terms = [self.unary()]
        while self._is_word("AND"):
            self.take()
            terms.append(self.unary())
        if len(terms) == 1:
            return terms[0]
        return lambda view: all(term(view) for term in terms)

    def unary(self) -> Predicate:
        token = self.peek()
        if token is not None and (
            (token.kind == "punct" and token.text == "!") or self._is_word("NOT")
        ):
            self.take()
            inner = self.unary()
            return lambda view: not inner(view)
        if token is not None and token.kind == "punct" and token.text == "(":
            self.take()
            inner = self.or_expr()
            self.expect("punct", ")")
            return inner
        return self.predicate()

    def value(self) -> Any:
        token = self.take()
        if token.kind in ("string", "number"):
            return token.value
        if token.kind == "word" and token.text.lower() in ("true", "false"):
            return token.text.lower() == "true"
        raise FilterError("expected a value")

    def comparison(self) -> tuple[str, Any] | None:
        token = self.peek()
        if token is None or token.kind != "op":
            return None
        self.take()
        return token.text, self.value()

    def predicate(self) -> Predicate:
        token = self.take()
        if token.kind != "word":
            raise FilterError(f"unexpected {token.text!r}")
        name = token.text.lower()
        if name == "annotation" or name.startswith("annotation."):
            return self.annotation(token.text)
        if name == "service":
            self.expect("punct", "(")
            target = self.take()
            if target.kind != "string":
                raise FilterError("service() takes a quoted name")
            self.expect("punct", ")")
            wanted = target.value
            return lambda view: any(s.get("Name") == wanted for s in view.services)
        if name in _FLAGS:
            comparison = self.comparison()
            expected = True
            if comparison is not None:
                op, value = comparison
                if op not in ("=", "!=") or not isinstance(value, bool):
                    raise FilterError(f"{name} compares with = true|false")
                expected = value if op == "=" else not value
            return lambda view: _flag(view, name) == expected
        if name in _NUMERIC_FIELDS or name in _STRING_FIELDS:
            comparison = self.comparison()
            if comparison is None:
                raise FilterError(f"{name} needs a comparison")
            op, value = comparison
            return lambda view: _compare(_field(view, name), op, value)
        raise FilterError(f"unsupported keyword {token.text!r}")

    def annotation(self, word: str) -> Predicate:
        if word.lower() == "annotation":
            self.expect("punct", "[")
            key_token = self.take()
            if key_token.kind not in ("word", "string", "number"):
                raise FilterError("annotation[] takes a key")
            key = str(key_token.text if key_token.kind != "string" else key_token.value)
            self.expect("punct", "]")
        else:
            key = word.split(".", 1)[1]
        if not key or not re.fullmatch(r"[A-Za-z0-9_]+", key):
            raise FilterError("annotation keys are alphanumeric or _")
        comparison = self.comparison()
        if comparison is None:
            return lambda view: any(hit.value is not False for hit in view.annotations.get(key, []))
        op, value = comparison
        return lambda view: any(
            _compare(hit.value, op, value) for hit in view.annotations.get(key, [])
        )


def _flag(view: TraceView, name: str) -> bool:
    if name == "ok":
        return not (view.has_error or view.has_fault or view.has_throttle)
    return bool(
        {
            "error": view.has_error,
            "fault": view.has_fault,
            "throttle": view.has_throttle,
            "partial": view.is_partial,
        }[name]
    )


def _field(view: TraceView, name: str) -> Any:
    if name == "duration":
        return view.duration
    if name == "responsetime":
        return view.response_time
    if name == "user":
        return view.users[0] if view.users else None
    return view.http.get(
        {
            "http.status": "HttpStatus",
            "http.url": "HttpURL",
            "http.method": "HttpMethod",
            "http.useragent": "UserAgent",
            "http.clientip": "ClientIp",
        }[name]
    )


def _compare(actual: Any, op: str, expected: Any) -> bool:
    """X-Ray compares only values of the same type; a mismatch never matches."""
    if actual is None:
        return False
    if isinstance(expected, bool) or isinstance(actual, bool):
        if not (isinstance(expected, bool) and isinstance(actual, bool)):
            return False
        return {"=": actual == expected, "!=": actual != expected}.get(op, False)
    if isinstance(expected, float):
        if not _is_number(actual):
            return False
        number = float(actual)
        return {
            "=": number == expected,
            "!=": number != expected,
            "<": number < expected,
            "<=": number <= expected,
            ">": number > expected,
            ">=": number >= expected,
        }.get(op, False)
    if not isinstance(actual, str):
        return False
    return {
        "=": actual == expected,
        "!=": actual != expected,
        "BEGINSWITH": actual.startswith(expected),
        "ENDSWITH": actual.endswith(expected),
        "CONTAINS": expected in actual,
        "<": actual < expected,
        "<=": actual <= expected,
        ">": actual > expected,
        ">=": actual >= expected,
    }[op]


def compile_filter(expression: str | None) -> Predicate:
    """Compile a filter expression; raise :class:`FilterError` if it is not supported."""
    if expression is None or not expression.strip():
        return lambda view: True
    if len(expression) > MAX_FILTER_LENGTH:
        raise FilterError("expression too long")
    return _Parser(tokenize(expression)).parse()


# --- the GetTraceSummaries handler ------------------------------------------------------------


def _error(code: str, message: str) -> tuple[str, dict[str, int]]:
    return json.dumps({"__type": code, "message": message}), {"status": 400}


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str) -> int:
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise FilterError("invalid NextToken") from exc
    if not isinstance(offset, int) or offset < 0:
        raise FilterError("invalid NextToken")
    return offset


def trace_summaries(backend: Any, params: dict[str, Any], page_size: int) -> Response:
    """Answer ``GetTraceSummaries`` from an ``XRayBackend`` (as a moto response tuple)."""
    start, end = params.get("StartTime"), params.get("EndTime")
    for name, value in (("StartTime", start), ("EndTime", end)):
        if value is None:
            return json.dumps(
                {"__type": "MissingParameter", "message": f"Parameter {name} is missing"}
            ), {"status": 400}
        if not _is_number(value):
            return _error("InvalidRequestException", f"{name} must be a timestamp")
    if float(end) < float(start):  # type: ignore[arg-type]
        return _error("InvalidRequestException", "EndTime must be after StartTime")
    try:
        predicate = compile_filter(params.get("FilterExpression"))
        offset = _decode_token(params["NextToken"]) if params.get("NextToken") else 0
    except FilterError as exc:
        message = str(exc) if "NextToken" in str(exc) else INVALID_FILTER
        return _error("InvalidRequestException", message)

    in_window: list[TraceView] = []
    # Segments are only ever added, so a view stays valid while its segment count is unchanged.
    cache: dict[str, tuple[int, TraceView | None]] = backend.__dict__.setdefault(VIEW_CACHE, {})
    # moto's collection is a defaultdict keyed by trace ID; copy it, the server is threaded.
    for trace_id, trace in list(backend._segment_collection._traces.items()):
        segments = list(trace["segments"])
        cached = cache.get(trace_id)
        if cached is not None and cached[0] == len(segments):
            view = cached[1]
        else:
            view = build_view(trace_id, segments)
            cache[trace_id] = (len(segments), view)
        if view is not None and float(start) <= view.start <= float(end):  # type: ignore[arg-type]
            in_window.append(view)
    matched = [view for view in in_window if predicate(view)]
    matched.sort(key=lambda v: (v.start, v.trace_id), reverse=True)
    page = matched[offset : offset + page_size]
    result: dict[str, Any] = {
        "TraceSummaries": [view.summary() for view in page],
        "ApproximateTime": datetime.datetime.now(datetime.UTC).timestamp(),
        "TracesProcessedCount": len(in_window),
    }
    if offset + page_size < len(matched):
        result["NextToken"] = _encode_token(offset + page_size)
    return json.dumps(result)


def make_handler(page_size: Callable[[], int]) -> Callable[[Any], Response]:
    """Replaces ``XRayResponse.get_trace_summaries`` (``trace_summaries`` before moto 5.2)."""

    def handler(self: Any) -> Response:
        params = self.request_params
        if not isinstance(params, dict):
            params = {}
        return trace_summaries(self.xray_backend, params, page_size())

    handler.__name__ = "get_trace_summaries"
    return handler


# What moto parses out of a segment document and keeps next to the document itself (``raw``).
# Once GetTraceSummaries is this module's, nothing reads them: summaries are built from ``raw``,
# BatchGetTraces returns ``raw``, and moto orders segments by their start time. Dropping them
# keeps about half of each stored segment's memory.
PARSED_SEGMENT_FIELDS = ("subsegments", "annotations", "metadata", "aws", "http", "service")


def wrap_put_segment(original: Callable[..., None]) -> Callable[..., None]:
    """``SegmentCollection.put_segment`` that stores a segment without its parsed copies."""

    def put_segment(self: Any, segment: Any) -> None:
        original(self, segment)
        for name in PARSED_SEGMENT_FIELDS:
            setattr(segment, name, None)
        segment.misc = {}

    return put_segment
