"""CloudWatch metric math: a tokenizer, a parser and an evaluator over time series (no ``eval``).

Supported, as the CloudWatch metric math reference describes them:

- numbers, references to other query Ids, ``[a, b, ...]`` arrays and ``METRICS([filter])``;
- ``+ - * / ^`` and unary minus: between two series only the timestamps both have give a point,
  a series with a scalar applies to each point, and a division by zero gives no point;
- comparisons ``== != < <= > >=`` and logic ``AND``/``&&``, ``OR``/``||``, ``NOT``/``!``
  (1 for true, 0 for false);
- ``SUM``, ``AVG``, ``MIN``, ``MAX``: of an array, a series of the per-timestamp aggregate (over
  the series that have a point there); of one series, a scalar;
- ``FILL(x, value | REPEAT | LINEAR)`` over the request's period grid (``REPEAT`` carries the
  last value forward, ``LINEAR`` interpolates inside gaps; gaps at the edges stay empty);
- ``IF(condition, a[, b])``: where the condition is non-zero ``a``, else ``b`` (no point without
  ``b``); ``ABS(x)``.

Errors raise :class:`MathError` with a message meant for the caller (the GetMetricData wrapper
turns it into AWS's ``ValidationError``).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


class MathError(ValueError):
    """An expression that cannot be parsed or evaluated."""


@dataclass
class Series:
    """One time series: epoch seconds -> value."""

    points: dict[int, float] = field(default_factory=dict)
    label: str = ""


Value = float | Series | list[Series]

# --- tokens -------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<string>"[^"]*"|'[^']*')
      | (?P<op>==|!=|<=|>=|&&|\|\||[-+*/^<>()\[\],!])
    )""",
    re.VERBOSE,
)


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos, text = 0, text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise MathError(f"Unexpected character {text[pos:].strip()[:1]!r} at position {pos}.")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "name" and value.upper() in ("AND", "OR", "NOT"):
            kind, value = "op", value.upper()
        tokens.append((kind, value))
        pos = match.end()
    return tokens


# --- syntax tree ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    kind: str  # number, ref, string, array, call, unary, binary
    value: Any = None
    children: tuple[Node, ...] = ()

    def refs(self) -> set[str]:
        found = {self.value} if self.kind == "ref" else set()
        for child in self.children:
            found |= child.refs()
        return found


_BINARY_LEVELS: tuple[tuple[str, ...], ...] = (
    ("OR", "||"),
    ("AND", "&&"),
    ("==", "!=", "<", "<=", ">", ">="),
    ("+", "-"),
    ("*", "/"),
)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise MathError("Unexpected end of expression.")
        if expected is not None and token[1] != expected:
            raise MathError(f"Expected {expected!r} but found {token[1]!r}.")
        self.pos += 1
        return token

    def parse(self) -> Node:
        if not self.tokens:
            raise MathError("The expression is empty.")
        node = self.binary(0)
        if self.peek() is not None:
            raise MathError(f"Unexpected token {self.tokens[self.pos][1]!r}.")
        return node

    def binary(self, level: int) -> Node:
        if level == len(_BINARY_LEVELS):
            return self.unary()
        node = self.binary(level + 1)
        while (token := self.peek()) is not None and token[0] == "op":
            if token[1] not in _BINARY_LEVELS[level]:
                break
            self.take()
            node = Node("binary", token[1], (node, self.binary(level + 1)))
        return node

    def unary(self) -> Node:
        token = self.peek()
        if token is not None and token[1] in ("-", "NOT", "!"):
            self.take()
            return Node("unary", token[1], (self.unary(),))
        node = self.primary()
        if (after := self.peek()) is not None and after[1] == "^":
            self.take()
            return Node("binary", "^", (node, self.unary()))
        return node

    def primary(self) -> Node:
        kind, value = self.take()
        if kind == "number":
            return Node("number", float(value))
        if kind == "string":
            return Node("string", value[1:-1])
        if kind == "name":
            if (after := self.peek()) is not None and after[1] == "(":
                self.take("(")
                return Node("call", value.upper(), self.items(")"))
            return Node("ref", value)
        if value == "(":
            node = self.binary(0)
            self.take(")")
            return node
        if value == "[":
            return Node("array", None, self.items("]"))
        raise MathError(f"Unexpected token {value!r}.")

    def items(self, closing: str) -> tuple[Node, ...]:
        items: list[Node] = []
        if (token := self.peek()) is not None and token[1] == closing:
            self.take()
            return ()
        while True:
            items.append(self.binary(0))
            separator = self.take()[1]
            if separator == closing:
                return tuple(items)
            if separator != ",":
                raise MathError(f"Expected ',' or {closing!r} but found {separator!r}.")


def parse(text: str) -> Node:
    """Parse ``text`` into a syntax tree; :class:`MathError` if it is not an expression."""
    return _Parser(text).parse()


# --- evaluation --------------------------------------------------------------------------------


def _pow(a: float, b: float) -> float:
    return float(a**b)


_OPS: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "^": _pow,
    "==": lambda a, b: float(a == b),
    "!=": lambda a, b: float(a != b),
    "<": lambda a, b: float(a < b),
    "<=": lambda a, b: float(a <= b),
    ">": lambda a, b: float(a > b),
    ">=": lambda a, b: float(a >= b),
    "AND": lambda a, b: float(bool(a) and bool(b)),
    "&&": lambda a, b: float(bool(a) and bool(b)),
    "OR": lambda a, b: float(bool(a) or bool(b)),
    "||": lambda a, b: float(bool(a) or bool(b)),
}
_AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "SUM": math.fsum,
    "AVG": lambda values: math.fsum(values) / len(values),
    "MIN": min,
    "MAX": max,
}


def _apply(op: Callable[[float, float], float], a: float, b: float) -> float | None:
    try:
        result = op(a, b)
    except (ZeroDivisionError, OverflowError, ValueError):
        return None
    return result if math.isfinite(result) else None


def _combine(name: str, left: Value, right: Value) -> Value:
    op = _OPS[name]
    if isinstance(left, list) or isinstance(right, list):
        lefts = left if isinstance(left, list) else None
        rights = right if isinstance(right, list) else None
        if lefts is not None and rights is not None:
            raise MathError("An operator cannot combine two arrays of time series.")
        if lefts is not None:
            return [_series(_combine(name, s, right)) for s in lefts]
        return [_series(_combine(name, left, s)) for s in rights or []]
    if isinstance(left, Series) and isinstance(right, Series):
        shared = left.points.keys() & right.points.keys()
        pairs = ((t, _apply(op, left.points[t], right.points[t])) for t in shared)
    elif isinstance(left, Series):
        pairs = ((t, _apply(op, v, float(right))) for t, v in left.points.items())  # type: ignore[arg-type]
    elif isinstance(right, Series):
        pairs = ((t, _apply(op, float(left), v)) for t, v in right.points.items())
    else:
        result = _apply(op, float(left), float(right))
        return math.nan if result is None else result
    label = left.label if isinstance(left, Series) else getattr(right, "label", "")
    return Series({t: v for t, v in sorted(pairs) if v is not None}, label)


def _series(value: Value) -> Series:
    if not isinstance(value, Series):
        raise MathError("Expected a time series.")
    return value


class Evaluator:
    """Evaluates parsed expressions against the series of other queries.

    ``resolve(id)`` gives a query's value (a series, or an array for expressions returning
    one); ``grid`` is the request's period grid (epoch seconds), which ``FILL`` fills;
    ``metric_ids`` are the Ids of the MetricStat queries (for ``METRICS()``).
    """

    def __init__(
        self,
        resolve: Callable[[str], Value],
        grid: Iterable[int],
        metric_ids: Iterable[str] = (),
    ) -> None:
        self.resolve = resolve
        self.grid = sorted(grid)
        self.metric_ids = list(metric_ids)

    def evaluate(self, node: Node) -> Value:
        if node.kind == "number":
            return float(node.value)
        if node.kind == "ref":
            return self.resolve(node.value)
        if node.kind == "string":
            raise MathError(f"A string ({node.value!r}) is only allowed as METRICS' argument.")
        if node.kind == "array":
            items: list[Series] = []
            for child in node.children:
                value = self.evaluate(child)
                items.extend(value if isinstance(value, list) else [_series(value)])
            return items
        if node.kind == "unary":
            operand = self.evaluate(node.children[0])
            if node.value == "-":
                return _combine("-", 0.0, operand)
            return _combine("==", operand, 0.0)
        if node.kind == "binary":
            left, right = (self.evaluate(child) for child in node.children)
            return _combine(node.value, left, right)
        return self.call(node.value, node.children)

    def call(self, name: str, args: tuple[Node, ...]) -> Value:
        if name in _AGGREGATES:
            self._arity(name, args, 1, 1)
            return self._aggregate(name, self.evaluate(args[0]))
        if name == "ABS":
            self._arity(name, args, 1, 1)
            return self._map(self.evaluate(args[0]), abs)
        if name == "FILL":
            self._arity(name, args, 2, 2)
            return self._fill(self.evaluate(args[0]), args[1])
        if name == "IF":
            self._arity(name, args, 2, 3)
            return self._if(*(self.evaluate(a) for a in args))
        if name == "METRICS":
            self._arity(name, args, 0, 1)
            wanted = ""
            if args:
                if args[0].kind != "string":
                    raise MathError("METRICS takes a string.")
                wanted = args[0].value
            return [_series(self.resolve(i)) for i in self.metric_ids if wanted in i]
        raise MathError(f"Unknown function {name}.")

    @staticmethod
    def _arity(name: str, args: tuple[Node, ...], least: int, most: int) -> None:
        if not least <= len(args) <= most:
            raise MathError(f"Function {name} takes {least} to {most} arguments, not {len(args)}.")

    @staticmethod
    def _map(value: Value, fn: Callable[[float], float]) -> Value:
        if isinstance(value, list):
            return [_series(Evaluator._map(s, fn)) for s in value]
        if isinstance(value, Series):
            return Series({t: fn(v) for t, v in value.points.items()}, value.label)
        return fn(value)

    @staticmethod
    def _aggregate(name: str, value: Value) -> Value:
        fn = _AGGREGATES[name]
        if isinstance(value, list):
            times = sorted({t for s in value for t in s.points})
            return Series(
                {t: fn([s.points[t] for s in value if t in s.points]) for t in times}, name
            )
        if isinstance(value, Series):
            values = list(value.points.values())
            return fn(values) if values else math.nan
        return float(value)

    def _fill(self, value: Value, how: Node) -> Value:
        if isinstance(value, list):
            return [_series(self._fill(s, how)) for s in value]
        if not isinstance(value, Series):
            raise MathError("FILL takes a time series.")
        filled = dict(value.points)
        mode = how.value.upper() if how.kind == "ref" else ""
        if mode == "REPEAT":
            last: float | None = None
            for t in self.grid:
                if t in filled:
                    last = filled[t]
                elif last is not None:
                    filled[t] = last
        elif mode == "LINEAR":
            known = sorted(filled)
            for t in self.grid:
                before = [k for k in known if k < t]
                after = [k for k in known if k > t]
                if t not in filled and before and after:
                    a, b = before[-1], after[0]
                    filled[t] = filled[a] + (filled[b] - filled[a]) * (t - a) / (b - a)
        else:
            with_value = self.evaluate(how)
            for t in self.grid:
                if t in filled:
                    continue
                if isinstance(with_value, Series):
                    if t in with_value.points:
                        filled[t] = with_value.points[t]
                elif isinstance(with_value, float):
                    filled[t] = with_value
                else:
                    raise MathError("FILL's second argument must be a value, REPEAT or LINEAR.")
        return Series(dict(sorted(filled.items())), value.label)

    def _if(self, condition: Value, yes: Value, no: Value | None = None) -> Value:
        if isinstance(condition, list) or isinstance(yes, list) or isinstance(no, list):
            raise MathError("IF does not take arrays of time series.")
        if not isinstance(condition, Series):
            chosen = yes if condition else no
            if chosen is None:
                return Series()
            return chosen

        def pick(branch: Value | None, t: int) -> float | None:
            if isinstance(branch, Series):
                return branch.points.get(t)
            return branch if isinstance(branch, float) else None

        points = {}
        for t, flag in condition.points.items():
            chosen_value = pick(yes if flag else no, t)
            if chosen_value is not None:
                points[t] = chosen_value
        return Series(points, condition.label)
