"""Supervised data from oracle solutions: the ``sft-oracle`` imitation baseline.

This is the one place where an exhaustive oracle feeds training, and only for the baseline
the issues call ``sft-oracle`` (imitation of solutions, the reference ceiling for imitation).
The flagship loop learns from the rules and a verifier alone and never imports this module.

Two kinds of examples per task:

- LM examples: prompt = ``task.render(initial state)``, completion = the solution's step lines.
- Value examples (number games): states on a solution path are labelled 1, their other
  children 0 or 1 by whether the target is still reachable from them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

from qstar.tasks.arith import ArithTask, solution_steps
from qstar.tasks.base import Task
from qstar.tasks.numbers_game import NumbersGame
from qstar.tasks.numbers_oracle import all_solutions, solvable_from
from qstar.training.sft import LMExample, ValueExample
from qstar.types import Problem

__all__ = ["oracle_lm_examples", "oracle_value_examples", "oracle_examples"]


def _paths(task: Task, problem: Problem, max_paths: int | None) -> list[list[str]]:
    if isinstance(task, ArithTask):
        return [solution_steps(problem)]
    if isinstance(task, NumbersGame):
        return all_solutions(task, problem, limit=max_paths)
    raise TypeError(f"no oracle for task {task.name!r}")


def oracle_lm_examples(
    task: Task,
    problems: Iterable[Problem],
    *,
    max_paths: int | None = None,
    on_problem: Callable[[], None] | None = None,
) -> list[LMExample]:
    """Every oracle solution (at most ``max_paths`` per problem) as an LM example. Each path of
    a problem gets weight 1/num_paths, so puzzles with many solutions do not dominate."""
    out: list[LMExample] = []
    for problem in problems:
        paths = _paths(task, problem, max_paths)
        prompt = task.render(task.initial_state(problem))
        for path in paths:
            out.append(LMExample(prompt, "".join(s + "\n" for s in path), weight=1.0 / len(paths)))
        if on_problem is not None:
            on_problem()
    return out


def oracle_value_examples(
    task: NumbersGame, problems: Iterable[Problem], *, rng: random.Random, max_children: int = 8
) -> list[ValueExample]:
    """Value-head targets: 1 on a solution path's states, and for up to ``max_children`` other
    children of each of them the exact reachability of the target (0 or 1)."""
    out: list[ValueExample] = []
    for problem in problems:
        paths = all_solutions(task, problem, limit=1)
        if not paths:
            continue
        state = task.initial_state(problem)
        for text in paths[0]:
            out.append(ValueExample(task.render(state), 1.0))
            children = [c for c in task.legal_steps(state) if c.text != text]
            for step in rng.sample(children, min(max_children, len(children))):
                child = task.apply(state, step)
                out.append(ValueExample(task.render(child), 1.0 if solvable_from(task, child) else 0.0))
            state = task.apply(state, task.parse_step(state, text))
    return out


def oracle_examples(task: Task, problems: list[Problem], *, seed: int = 0, max_paths: int | None = None):
    """(lm_examples, value_examples) for one task's problems."""
    lm = oracle_lm_examples(task, problems, max_paths=max_paths)
    values: list[ValueExample] = []
    if isinstance(task, NumbersGame):
        values = oracle_value_examples(task, problems, rng=random.Random(seed))
    return lm, values
