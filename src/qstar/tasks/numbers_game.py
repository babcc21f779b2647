"""Rules shared by the number games (Game of 24, Countdown): combine two numbers per step.

A step takes two of the numbers left, combines them with + - * /, and writes the result in the
Tree-of-Thoughts format (Yao et al. 2023): ``10 - 4 = 6 (left: 5 6 6)``. The numbers left are
listed in ascending order. The final expression is rebuilt from the steps, so a path of steps
and the bare expression ``(10 - 4) * (13 - 9)`` are two views of the same answer.

Enumerated steps (``legal_steps``) are canonical: the larger operand first for + and *, and no
negative results; ``legal`` and ``apply`` accept any correct step (either operand order,
negative results where the game allows them), so a model may write what it likes and the
rules still judge it exactly.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from qstar.errors import IllegalStepError, ParseError
from qstar.tasks.base import TaskBase
from qstar.tasks.number_expr import apply_op, combine_text, fmt, parse_expression, parse_number
from qstar.types import Problem, State, Step, Verdict

__all__ = ["NumbersContent", "NumbersGame"]

_NUM = r"-?\d+(?:/\d+)?"
# Numbers in the left list are separated by whitespace (``\s+``): with ``\s*`` a run of digits
# could be split in exponentially many ways and the regex would backtrack for ever.
_STEP = re.compile(
    rf"^\s*({_NUM})\s*([-+*/×xX÷−])\s*({_NUM})\s*=\s*({_NUM})\s*"
    rf"(?:\(\s*left\s*:\s*((?:{_NUM}(?:\s+{_NUM})*)?)\s*\))?\s*$"
)
_MAX_STEP_CHARS = 400
_OP_ALIASES = {"×": "*", "x": "*", "X": "*", "÷": "/", "−": "-"}


@dataclass(frozen=True)
class NumbersContent:
    """The numbers left (ascending) and, aligned with them, the expression that made each."""

    values: tuple[Fraction, ...]
    exprs: tuple[tuple[str, int], ...]
    #: The value produced by the last step (None at the root).
    last: Fraction | None = None


@dataclass(frozen=True)
class _ParsedStep:
    a: Fraction
    op: str
    b: Fraction
    result: Fraction
    left: tuple[Fraction, ...] | None


@lru_cache(maxsize=1 << 16)
def _parse_step_text(text: str) -> _ParsedStep:
    """Parse one step line (cached: search applies the same few thousand lines again and again,
    and a parsed step is immutable; a ParseError is raised afresh each time, never cached)."""
    m = _STEP.match(text) if len(text) <= _MAX_STEP_CHARS else None
    if not m:
        raise ParseError(
            f"step {text.strip()[:80]!r} is not of the form 'a op b = c (left: ...)', e.g. '10 - 4 = 6 (left: 5 6 6)'"
        )
    a, op, b, result, left = m.groups()
    left_values = None if left is None else tuple(sorted(parse_number(t) for t in left.split()))
    return _ParsedStep(
        parse_number(a), _OP_ALIASES.get(op, op), parse_number(b), parse_number(result), left_values
    )


def _step_line(a: Fraction, op: str, b: Fraction, result: Fraction, left: Sequence[Fraction]) -> str:
    return f"{fmt(a)} {op} {fmt(b)} = {fmt(result)} (left: {' '.join(fmt(v) for v in left)})"


@lru_cache(maxsize=1 << 17)
def _canonical_step_texts(values: tuple[Fraction, ...], integer_only: bool) -> tuple[str, ...]:
    """The canonical step lines from ``values`` (ascending), cached like the parser above: the
    same few thousand number sets recur across search, rule lines and evaluation.

    From positive numbers, non-negative results suffice (any solution can be rearranged so);
    once a non-canonical step has made a negative number, enumerate everything."""
    signed = any(v < 0 for v in values)
    out: dict[str, None] = {}  # insertion-ordered set
    for j in range(len(values)):
        for i in range(j):
            big, small = values[j], values[i]  # ascending order: values[i] <= values[j]
            rest = values[:i] + values[i + 1 : j] + values[j + 1 :]
            candidates = [(big, "+", small), (big, "-", small), (big, "*", small), (big, "/", small)]
            candidates += [(small, "/", big), (small, "-", big)] if signed else [(small, "/", big)]
            for a, op, b in candidates:
                r = apply_op(a, op, b)
                if r is None or (r < 0 and not signed):
                    continue
                if integer_only and (r.denominator != 1 or r <= 0):
                    continue
                out.setdefault(_step_line(a, op, b, r, tuple(sorted((*rest, r)))))
    return tuple(out)


class NumbersGame(TaskBase):
    """Base class: subclasses set the target, whether every number must be used, and whether
    intermediate results must be positive integers (Countdown) or may be any fraction (24)."""

    must_use_all: bool = True
    integer_only: bool = False

    # -- per-problem facts ------------------------------------------------------------------
    def numbers_of(self, problem: Problem) -> tuple[int, ...]:
        return tuple(problem.data["numbers"])

    def target_of(self, problem: Problem) -> Fraction:
        return Fraction(problem.data["target"])

    # -- states -----------------------------------------------------------------------------
    def initial_state(self, problem: Problem) -> State:
        values = tuple(sorted(Fraction(n) for n in self.numbers_of(problem)))
        return State(problem, (), NumbersContent(values, tuple((fmt(v), 3) for v in values)))

    def state_key(self, state: State) -> Hashable:
        c: NumbersContent = state.content
        return (c.values, self._reached(state))

    def _reached(self, state: State) -> bool:
        c: NumbersContent = state.content
        return c.last is not None and c.last == self.target_of(state.problem)

    def is_terminal(self, state: State) -> bool:
        c: NumbersContent = state.content
        return len(c.values) <= 1 or (not self.must_use_all and self._reached(state))

    def outcome(self, state: State) -> float | None:
        if not self.is_terminal(state):
            return None
        c: NumbersContent = state.content
        if self.must_use_all:
            return 1.0 if c.values == (self.target_of(state.problem),) else 0.0
        return 1.0 if self._reached(state) else 0.0

    def answer(self, state: State) -> str | None:
        if not self.is_terminal(state):
            return None
        c: NumbersContent = state.content
        if c.last is None:
            return None
        return c.exprs[c.values.index(c.last)][0]

    # -- steps ------------------------------------------------------------------------------
    def step_text(self, a: Fraction, op: str, b: Fraction, result: Fraction, left: Sequence[Fraction]) -> str:
        return _step_line(a, op, b, result, left)

    def _parse(self, text: str) -> _ParsedStep:
        return _parse_step_text(text)

    def parse_step(self, state: State, text: str) -> Step:
        """Read a step line; spacing and operator spelling are normalised, numbers are kept as
        written (``apply`` judges them). A missing ``(left: ...)`` is filled in from the state."""
        p = self._parse(text)
        left = p.left
        if left is None:
            remaining = self._remove(state.content.values, p.a, p.b)
            left = tuple(sorted((*remaining, p.result))) if remaining is not None else ()
        return Step(self.step_text(p.a, p.op, p.b, p.result, left))

    @staticmethod
    def _remove(values: tuple[Fraction, ...], a: Fraction, b: Fraction) -> list[Fraction] | None:
        rest = list(values)
        for x in (a, b):
            if x not in rest:
                return None
            rest.remove(x)
        return rest

    def _check(self, state: State, p: _ParsedStep) -> tuple[Fraction, ...]:
        """Return the numbers left after the step or raise IllegalStepError with the reason."""
        c: NumbersContent = state.content
        shown = " ".join(fmt(v) for v in c.values)
        if self.is_terminal(state):
            raise IllegalStepError(f"no step is allowed: the reasoning has ended (left: {shown})")
        rest = self._remove(c.values, p.a, p.b)
        if rest is None:
            raise IllegalStepError(f"{fmt(p.a)} and {fmt(p.b)} are not both among the numbers left ({shown})")
        true = apply_op(p.a, p.op, p.b)
        if true is None:
            raise IllegalStepError("division by zero")
        if true != p.result:
            raise IllegalStepError(f"{fmt(p.a)} {p.op} {fmt(p.b)} is {fmt(true)}, not {fmt(p.result)}")
        if self.integer_only and (true.denominator != 1 or true <= 0):
            raise IllegalStepError(
                f"{fmt(p.a)} {p.op} {fmt(p.b)} = {fmt(true)}: results must be positive integers"
            )
        left = tuple(sorted((*rest, true)))
        if p.left is not None and p.left != left:
            raise IllegalStepError(
                f"numbers left should be ({' '.join(fmt(v) for v in left)}), the step says "
                f"({' '.join(fmt(v) for v in p.left)})"
            )
        return left

    def apply(self, state: State, step: Step) -> State:
        p = self._parse(step.text)
        self._check(state, p)
        c: NumbersContent = state.content
        pairs = list(zip(c.values, c.exprs, strict=True))
        ia = next(i for i, (v, _) in enumerate(pairs) if v == p.a)
        _, ea = pairs.pop(ia)
        ib = next(i for i, (v, _) in enumerate(pairs) if v == p.b)
        _, eb = pairs.pop(ib)
        pairs.append((p.result, combine_text(ea, p.op, eb)))
        pairs.sort(key=lambda ve: ve[0])
        values = tuple(v for v, _ in pairs)
        exprs = tuple(e for _, e in pairs)
        return State(state.problem, (*state.steps, step), NumbersContent(values, exprs, p.result))

    def legal_steps(self, state: State) -> list[Step]:
        if self.is_terminal(state):
            return []
        return [Step(text) for text in _canonical_step_texts(state.content.values, self.integer_only)]

    # -- verification -----------------------------------------------------------------------
    def verify(self, problem: Problem, answer: str) -> Verdict:
        """Accept a correct sequence of step lines or a bare final expression; else say why."""
        lines = [ln for ln in answer.strip().splitlines() if ln.strip()]
        if not lines:
            return Verdict(False, "empty answer")
        if len(lines) > 1 or "left" in lines[0]:
            try:
                state = self.replay(problem, lines)
            except (ParseError, IllegalStepError) as err:
                return Verdict(False, str(err))
            if not self.is_terminal(state):
                return Verdict(False, "the steps stop before the reasoning ends")
            ok = self.outcome(state) == 1.0
            return Verdict(ok, "" if ok else f"the steps end at {self.answer(state)}, not the target")
        return self._verify_expression(problem, lines[0])

    def _verify_expression(self, problem: Problem, text: str) -> Verdict:
        try:
            expr = parse_expression(text)
        except ParseError as err:
            return Verdict(False, str(err))
        numbers = sorted(Fraction(n) for n in self.numbers_of(problem))
        used = sorted(expr.leaves)
        if self.must_use_all and used != numbers:
            return Verdict(
                False,
                f"the expression uses {' '.join(fmt(v) for v in used)}; it must use exactly "
                f"{' '.join(fmt(v) for v in numbers)}",
            )
        if any(used.count(v) > numbers.count(v) for v in used):
            return Verdict(False, "the expression uses a number that is not given (or uses one too often)")
        if self.integer_only and any(v.denominator != 1 or v <= 0 for v in expr.intermediates):
            return Verdict(False, "every intermediate result must be a positive integer")
        target = self.target_of(problem)
        if expr.value != target:
            return Verdict(False, f"the expression equals {fmt(expr.value)}, not {fmt(target)}")
        return Verdict(True)
