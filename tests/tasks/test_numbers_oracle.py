"""Specification of the exhaustive number-game oracles (``qstar.tasks.numbers_oracle``) and of
``verify`` judged against them.

Independent oracles written here, never the code under test: a Game-of-24 brute force over
``itertools`` permutations, operator triples and the five bracketings; Python's ``ast`` walked
with exact fractions for bare expressions; a line-by-line step checker; and small searches for
Countdown's positive-integer arithmetic.
"""

from __future__ import annotations

import ast
import re
from fractions import Fraction
from functools import cache
from itertools import combinations, permutations, product

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from qstar.tasks.countdown import COUNTDOWN_4, CountdownTask
from qstar.tasks.game24 import Game24Task
from qstar.tasks.numbers_oracle import all_solutions, has_solution, reachable_integers, solvable_from
from qstar.types import State

G24 = Game24Task()
C4 = CountdownTask(COUNTDOWN_4)
OPS = "+-*/"
ALL_PUZZLES = sorted({p.text for split in ("train", "val", "test") for p in G24.problems(split)})
TEST_PUZZLES = [p.text for p in G24.problems("test")]


def exact(a: Fraction | None, op: str, b: Fraction | None) -> Fraction | None:
    if a is None or b is None:
        return None
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return None if b == 0 else a / b


# -- independent oracles ---------------------------------------------------------------------------


def values_of_all_expressions(numbers: tuple[int, ...], *, integers_only: bool = False):
    """The value of every expression of the four numbers: each ordering, operator triple and
    bracketing (None where it divides by zero, or leaves the integers when they are required)."""

    def op(x, o, y):
        r = exact(x, o, y)
        return None if r is None or (integers_only and r.denominator != 1) else r

    for a, b, c, d in set(permutations(Fraction(n) for n in numbers)):
        for o1, o2, o3 in product(OPS, repeat=3):
            yield op(op(op(a, o1, b), o2, c), o3, d)  # ((a b) c) d
            yield op(op(a, o1, op(b, o2, c)), o3, d)  # (a (b c)) d
            yield op(op(a, o1, b), o2, op(c, o3, d))  # (a b) (c d)
            yield op(a, o1, op(op(b, o2, c), o3, d))  # a ((b c) d)
            yield op(a, o1, op(b, o2, op(c, o3, d)))  # a (b (c d))


@cache
def count_24(numbers: tuple[int, ...], *, integers_only: bool = False) -> int:
    """How many expressions of the four numbers make 24."""
    return sum(v == 24 for v in values_of_all_expressions(numbers, integers_only=integers_only))


def some_expression_makes_24(numbers: tuple[int, ...]) -> bool:
    return any(v == 24 for v in values_of_all_expressions(numbers))


def makes_24(values: list[Fraction]) -> bool:
    """Can every one of ``values`` be combined (any order, negatives allowed) into 24?"""
    if len(values) == 1:
        return values[0] == 24
    for i, j in combinations(range(len(values)), 2):
        a, b = values[i], values[j]
        rest = [values[k] for k in range(len(values)) if k not in (i, j)]
        results = {a + b, a - b, b - a, a * b}
        results |= {a / b} if b else set()
        results |= {b / a} if a else set()
        if any(makes_24([*rest, r]) for r in results):
            return True
    return False


def countdown_results(a: int, b: int) -> set[int]:
    out = {a + b, a * b, abs(a - b)}
    if a % b == 0:
        out.add(a // b)
    if b % a == 0:
        out.add(b // a)
    return {r for r in out if r > 0}


def integers_made_by(numbers: list[int]) -> set[int]:
    """Every number in every pool reachable by positive-integer steps: what subsets can make."""
    made: set[int] = set()
    seen: set[tuple[int, ...]] = set()

    def walk(pool: list[int]) -> None:
        key = tuple(sorted(pool))
        if key in seen:
            return
        seen.add(key)
        made.update(pool)
        for i, j in combinations(range(len(pool)), 2):
            rest = [pool[k] for k in range(len(pool)) if k not in (i, j)]
            for r in countdown_results(pool[i], pool[j]):
                walk([*rest, r])

    walk(list(numbers))
    return made


def produces(numbers: list[int], target: int) -> bool:
    """Can some Countdown step on ``numbers`` produce ``target``?"""
    for i, j in combinations(range(len(numbers)), 2):
        rest = [numbers[k] for k in range(len(numbers)) if k not in (i, j)]
        for r in countdown_results(numbers[i], numbers[j]):
            if r == target or produces([*rest, r], target):
                return True
    return False


_AST_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


def expression_facts(text: str) -> tuple[Fraction, list[int], list[Fraction]] | None:
    """(value, leaves, intermediate results) of plain arithmetic text; None on division by zero."""
    leaves: list[int] = []
    inter: list[Fraction] = []

    def walk(node: ast.AST) -> Fraction | None:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            leaves.append(node.value)
            return Fraction(node.value)
        assert isinstance(node, ast.BinOp) and type(node.op) in _AST_OPS, ast.dump(node)
        r = exact(walk(node.left), _AST_OPS[type(node.op)], walk(node.right))
        if r is not None:
            inter.append(r)
        return r

    value = walk(ast.parse(text, mode="eval").body)
    return None if value is None else (value, leaves, inter)


def steps_are_a_solution(
    numbers: list[int], target: int, lines: list[str], *, must_use_all: bool, integer_only: bool
) -> bool:
    """Check 'a op b = c (left: ...)' lines one by one, from the rules as the games state them."""
    pool = sorted(Fraction(n) for n in numbers)
    last = None

    def ended() -> bool:
        return len(pool) == 1 or (not must_use_all and last == target)

    for line in lines:
        if ended():
            return False
        head, _, tail = line.partition("(left:")
        a, op, b, _, c = head.split()
        a, b, c = Fraction(a), Fraction(b), Fraction(c)
        rest = list(pool)
        for x in (a, b):
            if x not in rest:
                return False
            rest.remove(x)
        value = exact(a, op, b)
        if value is None or value != c or (integer_only and (value.denominator != 1 or value <= 0)):
            return False
        pool = sorted([*rest, value])
        if sorted(Fraction(t) for t in tail.replace(")", " ").split()) != pool:
            return False
        last = value
    if not ended():
        return False
    return pool == [target] if must_use_all else last == target


@cache
def game24_solutions(puzzle: str) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(path) for path in all_solutions(G24, G24.parse_problem(puzzle), limit=60))


@cache
def countdown_solutions(problem: str) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(path) for path in all_solutions(C4, C4.parse_problem(problem), limit=20))


def final_state(task, problem, lines) -> State:
    return task.replay(problem, list(lines))


# -- all_solutions / has_solution ------------------------------------------------------------------


def test_1_5_5_5_has_exactly_one_canonical_solution_and_it_goes_through_fractions():
    assert all_solutions(G24, G24.parse_problem("1 5 5 5")) == [
        ["1 / 5 = 1/5 (left: 1/5 5 5)", "5 - 1/5 = 24/5 (left: 24/5 5)", "5 * 24/5 = 24 (left: 24)"]
    ]


def test_1_5_5_5_is_solvable_only_through_fractions():
    assert count_24((1, 5, 5, 5)) > 0
    assert count_24((1, 5, 5, 5), integers_only=True) == 0
    problem = G24.parse_problem("1 5 5 5")
    assert has_solution(G24, problem)
    assert G24.verify(problem, "5 * (5 - 1 / 5)")
    state = final_state(G24, problem, all_solutions(G24, problem)[0])
    assert G24.answer(state) == "5 * (5 - 1 / 5)"


@pytest.mark.parametrize("puzzle", ["1 1 1 1", "1 1 1 2", "13 13 13 13", "1 1 2 2"])
def test_an_unsolvable_puzzle_has_no_solutions(puzzle):
    assert count_24(tuple(int(n) for n in puzzle.split())) == 0
    problem = G24.parse_problem(puzzle)
    assert all_solutions(G24, problem) == []
    assert not has_solution(G24, problem)


def test_all_solutions_stops_at_the_limit_and_lists_distinct_paths():
    problem = G24.parse_problem("4 9 10 13")
    every = all_solutions(G24, problem)
    assert len(every) > 2
    assert len({tuple(p) for p in every}) == len(every)
    assert all_solutions(G24, problem, limit=2) == every[:2]


def test_all_solutions_are_made_of_canonical_steps():
    problem = G24.parse_problem("4 9 10 13")
    for path in all_solutions(G24, problem):
        state = G24.initial_state(problem)
        for text in path:
            assert text in [s.text for s in G24.legal_steps(state)]
            state = G24.apply(state, G24.parse_step(state, text))


def count_canonical_paths(values: tuple[Fraction, ...]) -> int:
    """Independent count of canonical paths to 24: each unordered pair once, larger operand
    first for + - * and both divisions, no negative results, equal step texts counted once."""
    if len(values) == 1:
        return int(values[0] == 24)
    texts: dict[str, tuple[Fraction, ...]] = {}
    for i, j in combinations(range(len(values)), 2):
        small, big = sorted((values[i], values[j]))
        rest = [values[k] for k in range(len(values)) if k not in (i, j)]
        for a, op, b in (
            (big, "+", small),
            (big, "-", small),
            (big, "*", small),
            (big, "/", small),
            (small, "/", big),
        ):
            r = exact(a, op, b)
            if r is not None and r >= 0:
                texts[f"{a} {op} {b} -> {sorted([*rest, r])}"] = tuple(sorted([*rest, r]))
    return sum(count_canonical_paths(after) for after in texts.values())


@pytest.mark.parametrize("puzzle", ["4 9 10 13", "1 1 4 6", "2 4 6 8", "3 3 8 8"])
def test_all_solutions_finds_every_canonical_path(puzzle):
    numbers = tuple(sorted(Fraction(n) for n in puzzle.split()))
    assert len(all_solutions(G24, G24.parse_problem(puzzle))) == count_canonical_paths(numbers)


SAMPLE = [
    *ALL_PUZZLES[::54],
    "1 1 1 1",
    "1 1 1 2",
    "13 13 13 13",
    "1 1 2 2",
    "1 5 5 5",
    "3 3 8 8",
    "1 1 13 13",
]


def test_the_brute_force_sample_holds_solvable_and_unsolvable_puzzles():
    solvable = [count_24(tuple(int(n) for n in p.split())) > 0 for p in SAMPLE]
    assert 28 <= len(SAMPLE) <= 35
    assert solvable.count(False) >= 4
    assert solvable.count(True) >= 20


@pytest.mark.parametrize("puzzle", SAMPLE)
def test_has_solution_agrees_with_an_independent_brute_force(puzzle):
    expected = count_24(tuple(int(n) for n in puzzle.split())) > 0
    assert has_solution(G24, G24.parse_problem(puzzle)) is expected


def test_every_puzzle_of_the_tree_of_thoughts_test_split_is_solvable():
    assert sum(some_expression_makes_24(tuple(int(n) for n in p.split())) for p in TEST_PUZZLES) == 100
    assert sum(has_solution(G24, p) for p in G24.problems("test")) == 100


# -- every oracle solution verifies ----------------------------------------------------------------


@settings(max_examples=12, deadline=None)
@given(st.sampled_from(ALL_PUZZLES))
def test_every_oracle_solution_verifies_as_steps_and_as_the_rebuilt_expression(puzzle):
    problem = G24.parse_problem(puzzle)
    numbers = [int(n) for n in puzzle.split()]
    for path in game24_solutions(puzzle):
        assert steps_are_a_solution(numbers, 24, list(path), must_use_all=True, integer_only=False)
        assert G24.verify(problem, "\n".join(path)).ok
        expression = G24.answer(final_state(G24, problem, path))
        facts = expression_facts(expression)
        assert facts is not None
        value, leaves, _ = facts
        assert value == 24
        assert sorted(leaves) == sorted(numbers)
        assert G24.verify(problem, expression).ok


@settings(max_examples=20, deadline=None)
@given(st.sampled_from([p.text for p in C4.problems("test")[:40]]))
def test_every_countdown_oracle_solution_verifies_as_steps_and_as_the_rebuilt_expression(text):
    problem = C4.parse_problem(text)
    numbers, target = list(problem.data["numbers"]), problem.data["target"]
    paths = countdown_solutions(text)
    assert paths
    for path in paths:
        assert steps_are_a_solution(numbers, target, list(path), must_use_all=False, integer_only=True)
        assert C4.verify(problem, "\n".join(path)).ok
        expression = C4.answer(final_state(C4, problem, path))
        value, leaves, inter = expression_facts(expression)
        assert value == target
        assert all(v.denominator == 1 and v > 0 for v in inter)
        assert all(leaves.count(n) <= numbers.count(n) for n in leaves)
        assert C4.verify(problem, expression).ok


# -- an edited solution verifies only when it is still right --------------------------------------

EDIT_PUZZLES = TEST_PUZZLES[::10]
NUMBER_EDITS = [
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "8",
    "9",
    "10",
    "12",
    "13",
    "24",
    "-6",
    "1/5",
    "3/2",
    "24/5",
]


def edit_step_line(data, line: str) -> str:
    tokens = line.split(" ")  # a op b = c (left: x y z)
    k = data.draw(st.sampled_from([k for k in range(len(tokens)) if k not in (3, 5)]), label="token")
    if k == 1:
        tokens[k] = data.draw(st.sampled_from(OPS), label="operator")
    else:
        tail = ")" if tokens[k].endswith(")") else ""
        tokens[k] = data.draw(st.sampled_from(NUMBER_EDITS), label="number") + tail
    return " ".join(tokens)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_an_edited_game24_step_solution_verifies_only_when_it_is_still_correct(data):
    puzzle = data.draw(st.sampled_from(EDIT_PUZZLES), label="puzzle")
    lines = list(data.draw(st.sampled_from(game24_solutions(puzzle)), label="solution"))
    i = data.draw(st.integers(0, len(lines) - 1), label="line")
    lines[i] = edit_step_line(data, lines[i])
    numbers = [int(n) for n in puzzle.split()]
    expected = steps_are_a_solution(numbers, 24, lines, must_use_all=True, integer_only=False)
    event("still a solution" if expected else "broken")
    verdict = G24.verify(G24.parse_problem(puzzle), "\n".join(lines))
    assert verdict.ok is expected, verdict.reason
    assert verdict.ok or verdict.reason


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_an_edited_game24_expression_verifies_only_when_it_is_still_correct(data):
    puzzle = data.draw(st.sampled_from(EDIT_PUZZLES), label="puzzle")
    problem = G24.parse_problem(puzzle)
    path = data.draw(st.sampled_from(game24_solutions(puzzle)), label="solution")
    tokens = re.findall(r"\d+|[-+*/()]", G24.answer(final_state(G24, problem, path)))
    k = data.draw(st.sampled_from([k for k, t in enumerate(tokens) if t not in "()"]), label="token")
    if tokens[k].isdigit():
        tokens[k] = str(data.draw(st.sampled_from([*range(14), 24]), label="number"))
    else:
        tokens[k] = data.draw(st.sampled_from(OPS), label="operator")
    text = " ".join(tokens)
    facts = expression_facts(text)
    numbers = sorted(int(n) for n in puzzle.split())
    expected = facts is not None and facts[0] == 24 and sorted(facts[1]) == numbers
    event("still a solution" if expected else "broken")
    verdict = G24.verify(problem, text)
    assert verdict.ok is expected, (text, verdict.reason)
    assert verdict.ok or verdict.reason


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_an_edited_countdown_step_solution_verifies_only_when_it_is_still_correct(data):
    text = data.draw(st.sampled_from([p.text for p in C4.problems("test")[:10]]), label="problem")
    problem = C4.parse_problem(text)
    lines = list(data.draw(st.sampled_from(countdown_solutions(text)), label="solution"))
    i = data.draw(st.integers(0, len(lines) - 1), label="line")
    lines[i] = edit_step_line(data, lines[i])
    numbers, target = list(problem.data["numbers"]), problem.data["target"]
    expected = steps_are_a_solution(numbers, target, lines, must_use_all=False, integer_only=True)
    event("still a solution" if expected else "broken")
    verdict = C4.verify(problem, "\n".join(lines))
    assert verdict.ok is expected, verdict.reason


# -- solvable_from ---------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(TEST_PUZZLES), st.lists(st.integers(0, 10**6), max_size=2))
def test_solvable_from_a_reachable_state_agrees_with_an_independent_search(puzzle, picks):
    state = G24.initial_state(G24.parse_problem(puzzle))
    for pick in picks:
        steps = G24.legal_steps(state)
        state = G24.apply(state, steps[pick % len(steps)])
    assert solvable_from(G24, state) is makes_24(list(state.content.values))


def test_solvable_from_a_finished_state_is_its_outcome():
    problem = G24.parse_problem("4 9 10 13")
    won = final_state(G24, problem, ["10 - 4 = 6", "13 - 9 = 4", "6 * 4 = 24"])
    lost = final_state(G24, problem, ["10 - 4 = 6", "13 - 9 = 4", "6 + 4 = 10"])
    assert solvable_from(G24, won) is True
    assert solvable_from(G24, lost) is False


def test_solvable_from_a_state_with_a_negative_number_sees_every_legal_continuation():
    problem = G24.parse_problem("1 1 3 13")
    state = final_state(G24, problem, ["1 - 3 = -2 (left: -2 1 13)"])
    assert makes_24([Fraction(-2), Fraction(1), Fraction(13)])
    assert G24.verify(problem, "1 - 3 = -2\n1 - 13 = -12\n-12 * -2 = 24")
    assert solvable_from(G24, state) is True


@settings(max_examples=30, deadline=None)
@given(st.sampled_from([p.text for p in C4.problems("test")]), st.integers(0, 10**6))
def test_countdown_solvable_from_after_one_step_agrees_with_an_independent_search(text, pick):
    problem = C4.parse_problem(text)
    state = C4.initial_state(problem)
    steps = C4.legal_steps(state)
    state = C4.apply(state, steps[pick % len(steps)])
    if C4.is_terminal(state):
        assert solvable_from(C4, state) is (C4.outcome(state) == 1.0)
    else:
        values = [int(v) for v in state.content.values]
        assert solvable_from(C4, state) is produces(values, problem.data["target"])


# -- reachable_integers and Countdown's has_solution ----------------------------------------------


@pytest.mark.parametrize(
    ("numbers", "expected"),
    [
        ((5,), {5}),
        ((2, 3), {2, 3, 5, 1, 6}),
        ((4, 4), {4, 8, 16, 1}),
        ((2, 7), {2, 7, 9, 5, 14}),
        ((1, 2, 3), {1, 2, 3, 4, 5, 6, 7, 8, 9}),
    ],
)
def test_reachable_integers_of_small_sets_by_hand(numbers, expected):
    assert reachable_integers(numbers) == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 99), min_size=1, max_size=4))
def test_reachable_integers_agrees_with_an_independent_search(numbers):
    assert reachable_integers(tuple(numbers)) == integers_made_by(numbers)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 99), min_size=4, max_size=4), st.integers(1, 100))
def test_countdown_has_solution_agrees_with_an_independent_search(numbers, target):
    if target in numbers:
        return  # not a valid generated problem: the target must be produced by a step
    problem = C4.parse_problem(" ".join(map(str, numbers)), target=target)
    assert has_solution(C4, problem) is produces(numbers, target)


def test_countdown_has_solution_is_false_for_an_unreachable_target():
    # 1 + 1 + 1 + 1 = 4 and (1 + 1) * (1 + 1) = 4: nothing reaches 5.
    assert not produces([1, 1, 1, 1], 5)
    assert not has_solution(C4, C4.parse_problem("1 1 1 1 -> 5"))
    assert has_solution(C4, C4.parse_problem("1 1 1 1 -> 4"))
