"""Specification of ``qstar.tasks.number_expr``: exact numbers and bare expressions of the number games.

The independent value oracle is Python's own parser (``ast``) walked with exact fractions: it
knows operator precedence and associativity without any help from the code under test.
"""

from __future__ import annotations

import ast
import re
from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from qstar.errors import ParseError
from qstar.tasks.number_expr import OPS, apply_op, combine_text, fmt, parse_expression, parse_number

_AST_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


def exact(a: Fraction, op: str, b: Fraction) -> Fraction | None:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return None if b == 0 else a / b


def ast_value(text: str) -> Fraction | None:
    """Exact value of plain arithmetic text by Python's grammar; None on division by zero."""

    def walk(node: ast.AST) -> Fraction | None:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return Fraction(node.value)
        assert isinstance(node, ast.BinOp) and type(node.op) in _AST_OPS, ast.dump(node)
        a, b = walk(node.left), walk(node.right)
        if a is None or b is None:
            return None
        return exact(a, _AST_OPS[type(node.op)], b)

    return walk(ast.parse(text, mode="eval").body)


# An expression tree is an int leaf or (left, op, right).
trees = st.recursive(
    st.integers(0, 30),
    lambda sub: st.tuples(sub, st.sampled_from(OPS), sub),
    max_leaves=6,
)


def tree_value(tree) -> Fraction | None:
    if isinstance(tree, int):
        return Fraction(tree)
    left, op, right = tree
    a, b = tree_value(left), tree_value(right)
    return None if a is None or b is None else exact(a, op, b)


def tree_leaves(tree) -> list[int]:
    return [tree] if isinstance(tree, int) else tree_leaves(tree[0]) + tree_leaves(tree[2])


def tree_intermediates(tree) -> list[Fraction]:
    """Every operation's result, left subtree first, then right, then the node (bottom-up)."""
    if isinstance(tree, int):
        return []
    left, _, right = tree
    return [*tree_intermediates(left), *tree_intermediates(right), tree_value(tree)]


def fully_parenthesised(tree) -> str:
    if isinstance(tree, int):
        return str(tree)
    left, op, right = tree
    return f"({fully_parenthesised(left)} {op} {fully_parenthesised(right)})"


def minimal_text(tree) -> tuple[str, int]:
    if isinstance(tree, int):
        return str(tree), 3
    left, op, right = tree
    return combine_text(minimal_text(left), op, minimal_text(right))


# -- fmt / parse_number ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Fraction(6), "6"),
        (Fraction(0), "0"),
        (Fraction(1, 5), "1/5"),
        (Fraction(-4), "-4"),
        (Fraction(-1, 5), "-1/5"),
        (Fraction(24, 5), "24/5"),
        (Fraction(6, 4), "3/2"),
    ],
)
def test_fmt_writes_integers_bare_and_fractions_in_lowest_terms(value, text):
    assert fmt(value) == text


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("6", Fraction(6)),
        (" 6 ", Fraction(6)),
        ("1/5", Fraction(1, 5)),
        ("-4", Fraction(-4)),
        ("2/4", Fraction(1, 2)),
    ],
)
def test_parse_number_reads_integers_and_fractions(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize(
    "text", ["", "abc", "1.5", "1/", "/5", "+5", "1 / 5", "--4", "1/2/3", "6x", "9" * 41]
)
def test_parse_number_rejects_anything_else_with_a_parse_error(text):
    with pytest.raises(ParseError, match="is not a number"):
        parse_number(text)


def test_parse_number_rejects_a_zero_denominator_with_a_parse_error():
    with pytest.raises(ParseError):
        parse_number("1/0")


@settings(max_examples=100, deadline=None)
@given(st.fractions(max_denominator=10**6).filter(lambda x: abs(x.numerator) < 10**12))
def test_parse_number_inverts_fmt(value):
    assert parse_number(fmt(value)) == value


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="0123456789/- x", max_size=12))
@example("1/0")
def test_parse_number_raises_only_parse_error_on_arbitrary_text(text):
    try:
        value = parse_number(text)
    except ParseError:
        return
    assert isinstance(value, Fraction)


# -- apply_op ----------------------------------------------------------------------------------


def test_apply_op_is_exact_and_gives_none_for_division_by_zero():
    assert apply_op(Fraction(8), "/", Fraction(3)) == Fraction(8, 3)
    assert apply_op(Fraction(3), "-", Fraction(8, 3)) == Fraction(1, 3)
    assert apply_op(Fraction(5), "*", Fraction(24, 5)) == 24
    assert apply_op(Fraction(4), "+", Fraction(-6)) == -2
    assert apply_op(Fraction(4), "/", Fraction(0)) is None


def test_apply_op_rejects_an_unknown_operator():
    with pytest.raises(ParseError, match=r"\^"):
        apply_op(Fraction(2), "^", Fraction(3))


# -- combine_text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "op", "right", "text"),
    [
        (("10 - 4", 1), "*", ("13 - 9", 1), "(10 - 4) * (13 - 9)"),
        (("10", 3), "-", ("13 - 9", 1), "10 - (13 - 9)"),
        (("10 - 4", 1), "-", ("1", 3), "10 - 4 - 1"),
        (("1 + 2", 1), "+", ("3 + 4", 1), "1 + 2 + 3 + 4"),
        (("1 + 2", 1), "-", ("3 + 4", 1), "1 + 2 - (3 + 4)"),
        (("2", 3), "*", ("3 / 4", 2), "2 * 3 / 4"),
        (("2", 3), "/", ("3 * 4", 2), "2 / (3 * 4)"),
        (("2 / 3", 2), "*", ("4", 3), "2 / 3 * 4"),
        (("8", 3), "/", ("3 - 8 / 3", 1), "8 / (3 - 8 / 3)"),
        (("5", 3), "*", ("5 - 1 / 5", 1), "5 * (5 - 1 / 5)"),
    ],
)
def test_combine_text_writes_only_the_parentheses_the_value_needs(left, op, right, text):
    assert combine_text(left, op, right)[0] == text


def test_combine_text_reports_the_precedence_of_the_result():
    assert combine_text(("1", 3), "+", ("2", 3))[1] == 1
    assert combine_text(("1", 3), "-", ("2", 3))[1] == 1
    assert combine_text(("1", 3), "*", ("2", 3))[1] == 2
    assert combine_text(("1", 3), "/", ("2", 3))[1] == 2


@settings(max_examples=100, deadline=None)
@given(trees.filter(lambda t: not isinstance(t, int) and tree_value(t) is not None))
def test_combine_text_keeps_the_value_and_the_order_of_the_numbers(tree):
    text, _ = minimal_text(tree)
    assert ast_value(text) == tree_value(tree)
    assert [int(t) for t in text.replace("(", " ").replace(")", " ").split() if t.isdigit()] == tree_leaves(
        tree
    )


# -- parse_expression --------------------------------------------------------------------------


def test_parse_expression_evaluates_exactly_and_lists_leaves_and_intermediates():
    expr = parse_expression("(10-4)*(13-9)")
    assert expr.value == 24
    assert expr.leaves == (10, 4, 13, 9)
    assert expr.intermediates == (6, 4, 24)


def test_parse_expression_keeps_fractions_exact():
    expr = parse_expression("8 / (3 - 8 / 3)")
    assert expr.value == 24
    assert expr.intermediates == (Fraction(8, 3), Fraction(1, 3), 24)
    assert parse_expression("5 * (5 - 1 / 5)").value == 24


def test_parse_expression_follows_precedence_and_left_associativity():
    assert parse_expression("2 + 3 * 4").value == 14
    assert parse_expression("10 - 4 - 3").value == 3
    assert parse_expression("12 / 4 / 3").value == 1
    assert parse_expression("12 / 4 * 3").value == 9


@pytest.mark.parametrize("text", ["10 × 4", "10 x 4", "10 X 4", "10*4"])
def test_parse_expression_reads_multiplication_signs(text):
    assert parse_expression(text).value == 40


@pytest.mark.parametrize(("text", "value"), [("12 ÷ 4", 3), ("10 − 4", 6), ("  (1+2)  ", 3)])
def test_parse_expression_reads_other_spellings_and_spacing(text, value):
    assert parse_expression(text).value == value


def test_parse_expression_ignores_a_trailing_claimed_value_and_recomputes():
    assert parse_expression("(10-4)*(13-9) = 24").value == 24
    assert parse_expression("3 * 8 = 25").value == 24


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "expected an expression"),
        ("= 24", "expected an expression"),
        ("1 = 2 = 3", "expected an expression"),
        ("(1 + 2", "ends too early"),
        ("1 + 2)", "unexpected ')'"),
        ("(1 + 2))", "unexpected ')'"),
        ("1 +", "ends too early"),
        ("-3 + 5", "expected a number"),
        ("2 ^ 3", "unexpected character '^'"),
        ("1 2", "unexpected '2'"),
        ("4 / (2 - 2)", "divides by zero"),
        ("(" * 200 + "1" + ")" * 200, "nested too deeply"),
    ],
)
def test_parse_expression_rejects_malformed_text_with_the_reason(text, reason):
    with pytest.raises(ParseError, match=re.escape(reason)):
        parse_expression(text)


def test_parse_expression_allows_moderate_nesting():
    assert parse_expression("(" * 20 + "7" + ")" * 20).value == 7


def test_parse_expression_rejects_an_absurdly_long_number_with_a_parse_error():
    with pytest.raises(ParseError):
        parse_expression("9" * 5000)


@settings(max_examples=100, deadline=None)
@given(trees)
def test_parse_expression_agrees_with_a_tree_evaluator(tree):
    text = fully_parenthesised(tree)
    value = tree_value(tree)
    if value is None:
        with pytest.raises(ParseError, match="divides by zero"):
            parse_expression(text)
        return
    expr = parse_expression(text)
    assert expr.value == value
    assert list(expr.leaves) == tree_leaves(tree)
    assert list(expr.intermediates) == tree_intermediates(tree)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40))
def test_parse_expression_raises_only_parse_error_on_arbitrary_text(text):
    try:
        expr = parse_expression(text)
    except ParseError:
        return
    assert isinstance(expr.value, Fraction)
