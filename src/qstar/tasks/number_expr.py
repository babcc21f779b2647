"""Exact arithmetic over fractions for the number games: formatting and bare expressions.

Numbers are :class:`fractions.Fraction` throughout, so ``8 / (3 - 8 / 3) = 24`` is exact.
``parse_expression`` reads a user's or model's final expression such as ``(10-4)*(13-9)``
with a small recursive-descent parser (never ``eval``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from qstar.errors import ParseError

__all__ = ["fmt", "parse_number", "Expr", "parse_expression", "combine_text", "OPS", "apply_op"]

OPS = ("+", "-", "*", "/")
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}
_OP_ALIASES = {"×": "*", "x": "*", "X": "*", "÷": "/", "−": "-"}


def fmt(x: Fraction) -> str:
    """``Fraction(6)`` -> ``"6"``, ``Fraction(1, 5)`` -> ``"1/5"``, ``Fraction(-4)`` -> ``"-4"``."""
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


_NUMBER = re.compile(r"^-?\d+(?:/\d+)?$")


def parse_number(text: str) -> Fraction:
    """Inverse of :func:`fmt`; raises :class:`ParseError` on anything else."""
    t = text.strip()
    if not _NUMBER.match(t) or len(t) > 40:
        raise ParseError(f"{text[:40]!r} is not a number (expected an integer like 6 or a fraction like 1/5)")
    if "/" in t and int(t.split("/")[1]) == 0:
        raise ParseError(f"{t!r} divides by zero")
    return Fraction(t)


def apply_op(a: Fraction, op: str, b: Fraction) -> Fraction | None:
    """``a op b`` exactly; ``None`` for division by zero."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return None if b == 0 else a / b
    raise ParseError(f"unknown operator {op!r} (use + - * /)")


def combine_text(left: tuple[str, int], op: str, right: tuple[str, int]) -> tuple[str, int]:
    """Write ``left op right`` with the fewest parentheses; items are (text, precedence),
    precedence 3 for an atom. Used to rebuild the final expression from the steps."""
    prec = _PREC[op]
    lt = left[0] if left[1] >= prec else f"({left[0]})"
    rt = right[0] if right[1] > prec or (right[1] == prec and op in "+*") else f"({right[0]})"
    return f"{lt} {op} {rt}", prec


@dataclass(frozen=True)
class Expr:
    """A parsed expression: its exact value and the leaf numbers it uses (in order)."""

    value: Fraction
    leaves: tuple[Fraction, ...]
    # Every intermediate result, bottom-up (games with integer-only rules check these).
    intermediates: tuple[Fraction, ...]


_MAX_DIGITS = 40
_TOKEN = re.compile(r"\s*(\d+|[()+\-*/×x÷−X])")


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ParseError(f"unexpected character {text[pos:].strip()[:1]!r} in expression {text!r}")
        tok = m.group(1)
        tokens.append(_OP_ALIASES.get(tok, tok))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0
        self.leaves: list[Fraction] = []
        self.inter: list[Fraction] = []

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise ParseError(f"expression {self.text!r} ends too early")
        self.pos += 1
        return tok

    def expr(self, depth: int = 0) -> Fraction:
        if depth > 50:
            raise ParseError(f"expression {self.text!r} is nested too deeply")
        value = self.term(depth)
        while self.peek() in ("+", "-"):
            op = self.take()
            value = self._op(value, op, self.term(depth))
        return value

    def term(self, depth: int) -> Fraction:
        value = self.atom(depth)
        while self.peek() in ("*", "/"):
            op = self.take()
            value = self._op(value, op, self.atom(depth))
        return value

    def atom(self, depth: int) -> Fraction:
        tok = self.take()
        if tok == "(":
            value = self.expr(depth + 1)
            if self.take() != ")":
                raise ParseError(f"expression {self.text!r}: missing ')'")
            return value
        if tok.isdigit():
            if len(tok) > _MAX_DIGITS:
                raise ParseError(
                    f"expression {self.text[:40]!r}...: a number has more than {_MAX_DIGITS} digits"
                )
            value = Fraction(int(tok))
            self.leaves.append(value)
            return value
        raise ParseError(f"expression {self.text!r}: expected a number or '(' but found {tok!r}")

    def _op(self, a: Fraction, op: str, b: Fraction) -> Fraction:
        out = apply_op(a, op, b)
        if out is None:
            raise ParseError(f"expression {self.text!r} divides by zero")
        self.inter.append(out)
        return out


def parse_expression(text: str) -> Expr:
    """Parse and evaluate an arithmetic expression over + - * / and parentheses.

    A trailing ``= 24`` is allowed and ignored (the value is recomputed, never trusted).
    Raises :class:`ParseError` with the reason on anything malformed.
    """
    body = text.split("=")[0] if text.count("=") == 1 else text
    if "=" in body or not body.strip():
        raise ParseError(f"expected an expression like (10-4)*(13-9), got {text!r}")
    parser = _Parser(body)
    value = parser.expr()
    if parser.peek() is not None:
        raise ParseError(f"expression {text!r}: unexpected {parser.peek()!r} after the end")
    return Expr(value, tuple(parser.leaves), tuple(parser.inter))
