"""``arith``: evaluate an integer expression one operation per step.

``(12+7)*3-5`` -> ``19*3-5`` -> ``57-5`` -> ``52``. It is the CPU-sized stand-in for GSM8K: a
multi-step derivation whose intermediate steps can be right or wrong, so process rewards and
outcome rewards differ.

Rules. Expressions hold integers, ``+ - *`` (no division, so every value is an integer) and
parentheses, with the usual precedence (``*`` before ``+ -``) and left associativity. One step
evaluates exactly one binary operation whose two operands are both integer literals and which
may go next under precedence and associativity: ``2+3*4`` allows only ``2+12``, ``1+2+3`` only
``3+3``, ``(1+2)*(3+4)`` both ``3*(3+4)`` and ``(1+2)*7``. Parentheses that end up around a
lone number vanish with the step. A step's text is the whole next expression on one line; it
is checked by comparing syntax trees, so ``(19) * 3 - 5`` is as good as ``19*3-5``. The
reasoning ends when the expression is a single integer, which is the answer.

Canonical text (``State.content``, ``Problem.text``) has no spaces and only the parentheses the
tree needs. A negative number produced on the way is written bare when it opens the expression
or a parenthesised group (``-12+3``, ``2*(-3*4)``) and as ``(-12)`` elsewhere (``5-(-12)``).
The parser reads ``-`` directly before a number, where a number is expected, as the sign of
that number, so canonical text always parses back to the same tree.

Verifier. A user at test time does not know the value, so ``has_test_time_verifier`` is
False: :meth:`ArithTask.outcome` and :meth:`ArithTask.verify` are ground truth for labels and
metrics only, and searches and scorers must not call them on this task. With ``strict=True``
(the default) :meth:`ArithTask.apply` rejects a wrong value, so every path is correct and
``legal_steps`` enumerates the correct steps. With ``strict=False`` any *single* operation may
be replaced by any integer, so a model can make arithmetic slips, ``legal_steps`` is ``None``
(not enumerable) and ``outcome`` tells right endings from wrong ones.

Problems. ``problems(split)`` generates them from fixed seeds (:data:`SPLIT_SEEDS`) with sizes
:data:`SPLIT_SIZES`: 4-8 operations (uniform); operators ``+`` 40 %, ``-`` 35 %, ``*`` 25 %;
operands 1-99 with probability 85 %, 100-999 with 10 %, 0 with 5 %; tree shape: each operation's
right operand is a lone number with probability 1/2, otherwise the operations below it are split
uniformly between its two sides, which yields parentheses where the tree needs them. Expressions
with any intermediate value beyond +-999 999 are redrawn so the arithmetic stays learnable. The
test split is drawn first, then val without test's expressions, then train without either, so
the splits are disjoint by canonical text and growing train never changes test.
"""

from __future__ import annotations

import functools
import random
import re
from typing import Any, NamedTuple

from qstar.errors import ConfigError, IllegalStepError, ParseError, ProblemError
from qstar.tasks.base import SPLITS, TaskBase
from qstar.types import Problem, State, Step, Verdict

__all__ = [
    "ArithTask",
    "BinOp",
    "Expr",
    "parse_expression",
    "format_expression",
    "value_of",
    "solution_steps",
    "MAX_OPERATIONS",
    "MAX_OPERAND",
    "SPLIT_SEEDS",
    "SPLIT_SIZES",
]

MAX_OPERATIONS = 8
MAX_OPERAND = 999
SPLIT_SEEDS = {"train": 1001, "val": 1002, "test": 1003}
SPLIT_SIZES = {"train": 20_000, "val": 500, "test": 500}
_MAX_GENERATED_MAGNITUDE = 999_999

# Guards that keep the parser total on arbitrary text: Python's recursion limit and its
# 4300-digit int() limit would otherwise turn bad input into crashes instead of ParseErrors.
_MAX_DIGITS = 100
_MAX_NESTING = 64
_MAX_PARSED_OPERATIONS = 200

_DIGITS = frozenset("0123456789")
_PRECEDENCE = {"+": 1, "-": 1, "*": 2}
_LITERAL_PRECEDENCE = 3


class BinOp(NamedTuple):
    """One binary operation of the syntax tree; a leaf of the tree is a plain ``int``."""

    op: str  # "+", "-" or "*"
    left: Expr
    right: Expr


Expr = int | BinOp


# -- parsing ---------------------------------------------------------------------------------
def _tokenize(text: str) -> list[tuple[str, str, int]]:
    """(kind, text, 1-based position); kind is "num" or the character itself."""
    tokens: list[tuple[str, str, int]] = []
    depth = 0
    i = 0
    while i < len(text):
        c = text[i]
        if c in " \t":
            i += 1
        elif c in _DIGITS:
            j = i
            while j < len(text) and text[j] in _DIGITS:
                j += 1
            if j - i > _MAX_DIGITS:
                raise ParseError(f"number at position {i + 1} has more than {_MAX_DIGITS} digits")
            tokens.append(("num", text[i:j], i + 1))
            i = j
        elif c in "+-*()":
            depth += {"(": 1, ")": -1}.get(c, 0)
            if depth < 0:
                raise ParseError(f"unbalanced parenthesis: ')' at position {i + 1} has no matching '('")
            if depth > _MAX_NESTING:
                raise ParseError(f"parentheses nested more than {_MAX_NESTING} deep")
            tokens.append((c, c, i + 1))
            i += 1
        elif c == "/":
            raise ParseError("division is not supported (only + - * and parentheses)")
        else:
            raise ParseError(
                f"unexpected character {c!r} at position {i + 1} (only digits, + - * and parentheses)"
            )
    if depth > 0:
        raise ParseError("unbalanced parenthesis: a '(' is never closed")
    return tokens


class _Parser:
    """Recursive descent: expr = term (('+'|'-') term)*, term = factor ('*' factor)*,
    factor = number | '-' number | '(' expr ')'."""

    def __init__(self, tokens: list[tuple[str, str, int]]):
        self.tokens = tokens
        self.i = 0
        self.num_operations = 0

    def peek(self) -> str | None:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        self.i += 1
        return self.tokens[self.i - 1]

    def binop(self, op: str, left: Expr, right: Expr) -> BinOp:
        self.num_operations += 1
        if self.num_operations > _MAX_PARSED_OPERATIONS:
            raise ParseError(f"more than {_MAX_PARSED_OPERATIONS} operations")
        return BinOp(op, left, right)

    def expr(self) -> Expr:
        node = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()[0]
            node = self.binop(op, node, self.term())
        return node

    def term(self) -> Expr:
        node = self.factor()
        while self.peek() == "*":
            self.take()
            node = self.binop("*", node, self.factor())
        return node

    def factor(self) -> Expr:
        if self.peek() is None:
            raise ParseError("the expression ends where a number was expected")
        kind, text, pos = self.take()
        if kind == "num":
            return int(text)
        if kind == "-" and self.peek() == "num":
            return -int(self.take()[1])
        if kind == "(":
            node = self.expr()
            if self.peek() != ")":  # balance was checked, so something else stands here
                found, where = (self.tokens[self.i][1], self.tokens[self.i][2]) if self.peek() else ("end", 0)
                raise ParseError(f"expected an operator or ')' at position {where}, found {found!r}")
            self.take()
            return node
        raise ParseError(f"expected a number at position {pos}, found {text!r}")

    def parse(self) -> Expr:
        if not self.tokens:
            raise ParseError("empty expression")
        node = self.expr()
        if self.i < len(self.tokens):
            _, found, where = self.tokens[self.i]
            raise ParseError(f"expected an operator at position {where}, found {found!r}")
        return node


def _quote(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


@functools.lru_cache(maxsize=1 << 16)
def _parse(text: str) -> Expr:
    """The tree of ``text``; raises ParseError with the bare reason (callers add context)."""
    return _Parser(_tokenize(text)).parse()


def parse_expression(text: str) -> Expr:
    """Parse an expression (spaces allowed) into its tree; raises :class:`ParseError`."""
    try:
        return _parse(text.strip())
    except ParseError as err:
        raise ParseError(f"expression {_quote(text.strip())}: {err}") from None


# -- printing and evaluation -----------------------------------------------------------------
def _precedence(node: Expr) -> int:
    return _LITERAL_PRECEDENCE if isinstance(node, int) else _PRECEDENCE[node.op]


def _format(node: Expr, opens_group: bool) -> str:
    if isinstance(node, int):
        return str(node) if node >= 0 or opens_group else f"({node})"
    op, left, right = node
    # Left associativity: an equal-precedence left operand needs no parentheses, a right one does.
    if _precedence(left) < _PRECEDENCE[op]:
        left_text = f"({_format(left, True)})"
    else:
        left_text = _format(left, opens_group)
    if _precedence(right) <= _PRECEDENCE[op]:
        right_text = f"({_format(right, True)})"
    else:
        right_text = _format(right, False)
    return left_text + op + right_text


def format_expression(node: Expr) -> str:
    """Canonical text of a tree: no spaces, minimal parentheses; it parses back to ``node``."""
    return _format(node, True)


def _compute(op: str, a: int, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def _evaluate(node: Expr) -> int:
    if isinstance(node, int):
        return node
    return _compute(node.op, _evaluate(node.left), _evaluate(node.right))


def _num_operations(node: Expr) -> int:
    return 0 if isinstance(node, int) else 1 + _num_operations(node.left) + _num_operations(node.right)


def _leaves(node: Expr) -> list[int]:
    return [node] if isinstance(node, int) else _leaves(node.left) + _leaves(node.right)


def value_of(expression: str) -> int:
    """The exact value of an expression (for labels and metrics; raises :class:`ParseError`)."""
    return _evaluate(parse_expression(expression))


def _simplifications(node: Expr) -> list[Expr]:
    """Every tree one correct step away, leftmost operation first."""
    if isinstance(node, int):
        return []
    op, left, right = node
    if isinstance(left, int) and isinstance(right, int):
        return [_compute(op, left, right)]
    return [BinOp(op, x, right) for x in _simplifications(left)] + [
        BinOp(op, left, y) for y in _simplifications(right)
    ]


def _replaces_one_operation(before: Expr, after: Expr) -> bool:
    """True when ``after`` is ``before`` with one literal-operand operation replaced by any integer."""
    if isinstance(before, int):
        return False
    if isinstance(before.left, int) and isinstance(before.right, int):
        return isinstance(after, int)
    if isinstance(after, int) or after.op != before.op:
        return False
    return (after.left == before.left and _replaces_one_operation(before.right, after.right)) or (
        after.right == before.right and _replaces_one_operation(before.left, after.left)
    )


def solution_steps(problem: Problem) -> list[str]:
    """The oracle path (leftmost-innermost order) as canonical step texts; labels/metrics only."""
    node = _parse(problem.text)
    steps = []
    while not isinstance(node, int):
        node = _simplifications(node)[0]
        steps.append(format_expression(node))
    return steps


# -- problems --------------------------------------------------------------------------------
def _make_problem(node: Expr, id: str = "") -> Problem:
    text = format_expression(node)
    return Problem("arith", text, {"expression": text}, id)


def _random_operand(rng: random.Random) -> int:
    r = rng.random()
    return 0 if r < 0.05 else rng.randint(100, 999) if r < 0.15 else rng.randint(1, 99)


def _random_tree(rng: random.Random, num_operations: int) -> tuple[Expr, int, int]:
    """(tree, value, largest |intermediate value|) of a random tree with that many operations."""
    if num_operations == 0:
        leaf = _random_operand(rng)
        return leaf, leaf, leaf
    num_left = num_operations - 1 if rng.random() < 0.5 else rng.randrange(num_operations)
    left, left_value, left_max = _random_tree(rng, num_left)
    right, right_value, right_max = _random_tree(rng, num_operations - 1 - num_left)
    r = rng.random()
    op = "+" if r < 0.40 else "-" if r < 0.75 else "*"
    value = _compute(op, left_value, right_value)
    return BinOp(op, left, right), value, max(left_max, right_max, abs(value))


def _random_problem_text(rng: random.Random) -> str:
    while True:
        node, _, largest = _random_tree(rng, rng.randint(4, MAX_OPERATIONS))
        if largest <= _MAX_GENERATED_MAGNITUDE:
            return format_expression(node)


@functools.cache
def _split_problems(split: str) -> tuple[Problem, ...]:
    taken: set[str] = set()
    for earlier in ("test", "val", "train"):
        if earlier == split:
            break
        taken.update(p.text for p in _split_problems(earlier))
    rng = random.Random(SPLIT_SEEDS[split])
    texts: list[str] = []
    while len(texts) < SPLIT_SIZES[split]:
        text = _random_problem_text(rng)
        if text not in taken:
            taken.add(text)
            texts.append(text)
    return tuple(Problem("arith", t, {"expression": t}, f"{split}/{i}") for i, t in enumerate(texts))


_INTEGER = re.compile(r"-?[0-9]{1,100}")


# -- the task --------------------------------------------------------------------------------
class ArithTask(TaskBase):
    """Integer expression evaluation, one operation per step (see the module docstring).

    ``outcome`` and ``verify`` are ground truth for labels and metrics only: this task has no
    test-time verifier, and searches and scorers must not call them.
    """

    name = "arith"
    has_test_time_verifier = False
    max_steps = MAX_OPERATIONS

    def __init__(self, *, strict: bool = True):
        self.strict = strict

    # -- problems --------------------------------------------------------------------------
    def problems(self, split: str) -> list[Problem]:
        if split not in SPLITS:
            raise ConfigError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        return list(_split_problems(split))

    def _problem(self, text: str, id: str) -> Problem:
        text = text.strip()
        if not text:
            raise ProblemError("expression '': empty; write one like '(12+7)*3-5'")
        try:
            node = _parse(text)
        except ParseError as err:
            raise ProblemError(f"expression {_quote(text)}: {err}") from None
        leaves = _leaves(node)
        if min(leaves) < 0:
            raise ProblemError(
                f"expression {_quote(text)}: negative numbers are not allowed (operands are 0-999)"
            )
        if max(leaves) > MAX_OPERAND:
            raise ProblemError(f"expression {_quote(text)}: operand {max(leaves)} has more than 3 digits")
        num_operations = _num_operations(node)
        if num_operations == 0:
            raise ProblemError(f"expression {_quote(text)}: nothing to evaluate; use at least one of + - *")
        if num_operations > MAX_OPERATIONS:
            raise ProblemError(
                f"expression {_quote(text)}: has {num_operations} operations, at most {MAX_OPERATIONS} allowed"
            )
        return _make_problem(node, id)

    def parse_problem(self, text: str) -> Problem:
        return self._problem(text, "")

    def problem_from_json(self, obj: dict[str, Any], *, id: str = "") -> Problem:
        if obj.get("task", "arith") != "arith":
            raise ProblemError(f"problem is for task {obj['task']!r}, not 'arith'")
        expression = obj.get("expression")
        if not isinstance(expression, str):
            raise ProblemError('expected {"expression": "<text>"}, e.g. {"expression": "(12+7)*3-5"}')
        return self._problem(expression, id)

    # -- rules -----------------------------------------------------------------------------
    def initial_state(self, problem: Problem) -> State:
        return State(problem, (), self._problem(problem.text, problem.id).text)

    def is_terminal(self, state: State) -> bool:
        return isinstance(_parse(state.content), int)

    def legal_steps(self, state: State) -> list[Step] | None:
        if self.is_terminal(state):
            return []
        if not self.strict:
            return None
        texts = [format_expression(node) for node in _simplifications(_parse(state.content))]
        return [Step(text) for text in dict.fromkeys(texts)]

    def parse_step(self, state: State, text: str) -> Step:
        stripped = text.strip()
        if "\n" in stripped or "\r" in stripped:
            raise ParseError(f"step {_quote(stripped)}: a step is one line (the whole next expression)")
        try:
            _parse(stripped)
        except ParseError as err:
            raise ParseError(f"step {_quote(stripped)}: {err}") from None
        return Step(stripped)

    def apply(self, state: State, step: Step) -> State:
        if self.is_terminal(state):
            raise IllegalStepError(f"`{state.content}` is already a single number; no step can follow")
        before = _parse(state.content)
        after = _parse(self.parse_step(state, step.text).text)
        if self.strict and after not in _simplifications(before):
            raise IllegalStepError(
                f"`{step.text.strip()}` is not one correct simplification of `{state.content}` "
                "(evaluate exactly one operation whose two operands are numbers)"
            )
        if not self.strict and not _replaces_one_operation(before, after):
            raise IllegalStepError(
                f"`{step.text.strip()}` is not one simplification of `{state.content}` "
                "(replace exactly one operation whose two operands are numbers by a number)"
            )
        return State(state.problem, (*state.steps, step), format_expression(after))

    # -- ground truth (labels and metrics only) --------------------------------------------
    def outcome(self, state: State) -> float | None:
        """1.0/0.0 at a terminal state by the exact value, None before; never call it in search."""
        if not self.is_terminal(state):
            return None
        return 1.0 if _parse(state.content) == _evaluate(_parse(state.problem.text)) else 0.0

    def answer(self, state: State) -> str | None:
        return state.content if self.is_terminal(state) else None

    def verify(self, problem: Problem, answer: str) -> Verdict:
        """Exact check of an integer answer; ground truth for metrics, not a test-time verifier."""
        text = answer.strip()
        if not _INTEGER.fullmatch(text):
            return Verdict(False, f"answer {_quote(text)} is not an integer")
        if int(text) != _evaluate(_parse(problem.text)):
            return Verdict(False, f"answer {int(text)} is not the value of {problem.text}")
        return Verdict(True)
