"""The metric math parser and evaluator on their own: precedence, operators, arrays."""

from __future__ import annotations

from typing import Any

import pytest

from infra.devstack.emulator.metric_math import Evaluator, MathError, Series, parse

SERIES = {
    "a": Series({0: 1.0, 60: 2.0, 120: 3.0}, "a"),
    "b": Series({0: 4.0, 60: 0.0}, "b"),
}


def _eval(expression: str) -> Any:
    evaluator = Evaluator(SERIES.__getitem__, range(0, 180, 60), metric_ids=["a", "b"])
    return evaluator.evaluate(parse(expression))


def test_multiplication_binds_tighter_than_addition_and_power_tighter_still():
    assert _eval("1 + 2 * 3 ^ 2") == 19.0
    assert _eval("-(1 + 2) * 2") == -6.0


def test_division_by_zero_gives_no_point():
    assert _eval("a / b").points == {0: 0.25}


def test_not_and_or_give_one_or_zero_where_both_sides_have_a_point():
    assert _eval("NOT (a > 1) || b == 4").points == {0: 1.0, 60: 0.0}


def test_metrics_gives_the_array_and_aggregates_reduce_it():
    assert [s.label for s in _eval('METRICS("a")')] == ["a"]
    assert _eval("MAX(METRICS())").points == {0: 4.0, 60: 2.0, 120: 3.0}
    assert _eval("AVG(a)") == 2.0


def test_if_without_an_else_drops_the_false_points():
    assert _eval("IF(a >= 2, a)").points == {60: 2.0, 120: 3.0}


@pytest.mark.parametrize(
    "expression", ["a b", "(a", "FILL(a)", "[a, ", "a $ b", "METRICS(a)", "a + [a, b] * [a]"]
)
def test_malformed_expressions_raise_math_error(expression):
    with pytest.raises(MathError):
        _eval(expression)
