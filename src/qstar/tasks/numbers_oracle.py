"""Exhaustive solvers of the number games, for metrics and tests only.

No search, scorer, policy or training path of qstar may call these: the flagship claim is
learning from the rules and a verifier alone. They answer "is this solvable?" for the CLI's
error message and count how many puzzles a method could have solved; the ``sft-oracle``
baseline (imitation of oracle solutions) is the one documented exception.
"""

from __future__ import annotations

from collections.abc import Hashable

from qstar.tasks.numbers_game import NumbersGame
from qstar.types import Problem, State

__all__ = ["all_solutions", "has_solution", "solvable_from", "reachable_integers"]


def all_solutions(task: NumbersGame, problem: Problem, *, limit: int | None = None) -> list[list[str]]:
    """Every distinct path of canonical steps (``task.legal_steps``) that reaches the target.

    Paths are distinct as sequences of step texts; order of independent steps counts (that is
    what a model writes). ``limit`` stops early after that many.
    """
    out: list[list[str]] = []
    dead: set[Hashable] = set()

    def walk(state: State) -> bool:
        if task.is_terminal(state):
            if task.outcome(state) == 1.0:
                out.append([s.text for s in state.steps])
                return True
            return False
        key = task.state_key(state)
        if key in dead:
            return False
        found = False
        for step in task.legal_steps(state):
            found |= walk(task.apply(state, step))
            if limit is not None and len(out) >= limit:
                return True
        if not found:
            dead.add(key)
        return found

    walk(task.initial_state(problem))
    return out


def has_solution(task: NumbersGame, problem: Problem) -> bool:
    """True when some sequence of canonical steps reaches the target."""
    return solvable_from(task, task.initial_state(problem))


def solvable_from(task: NumbersGame, state: State) -> bool:
    """True when the target can still be reached from ``state``. Countdown states use the
    subset dynamic programme of :func:`reachable_integers`; others a memoised DFS."""
    if task.is_terminal(state):
        return task.outcome(state) == 1.0
    if task.integer_only and not task.must_use_all:
        values = tuple(int(v) for v in state.content.values)
        return int(task.target_of(state.problem)) in reachable_integers(values)
    dead: set[Hashable] = set()

    def walk(s: State) -> bool:
        if task.is_terminal(s):
            return task.outcome(s) == 1.0
        key = task.state_key(s)
        if key in dead:
            return False
        if any(walk(task.apply(s, step)) for step in task.legal_steps(s)):
            return True
        dead.add(key)
        return False

    return walk(state)


def reachable_integers(numbers: tuple[int, ...]) -> set[int]:
    """Every positive integer that some subset of ``numbers`` makes under Countdown rules
    (+ - * /, every intermediate a positive integer). Subset dynamic programming over bitmasks:
    far faster than walking the step tree, used to generate solvable Countdown instances."""
    n = len(numbers)
    vals: dict[int, set[int]] = {1 << i: {x} for i, x in enumerate(numbers)}
    for mask in sorted(range(1, 1 << n), key=lambda m: bin(m).count("1")):
        if mask in vals:
            continue
        out: set[int] = set()
        sub = (mask - 1) & mask
        while sub:
            other = mask ^ sub
            if sub < other:  # each unordered split once
                for a in vals[sub]:
                    for b in vals[other]:
                        out.add(a + b)
                        out.add(a * b)
                        if a != b:
                            out.add(abs(a - b))
                        if a % b == 0:
                            out.add(a // b)
                        elif b % a == 0:
                            out.add(b // a)
            sub = (sub - 1) & mask
        vals[mask] = out
    reach: set[int] = set()
    for v in vals.values():
        reach |= v
    return reach
