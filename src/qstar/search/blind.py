"""The no-model baseline: random-order depth-first search with the exact verifier at the leaves.

Every model-guided search must beat this at equal expansions. It asks no policy and no scorer:
the children of a state are its legal steps (``task.legal_steps``, uniform prior), visited in
an order shuffled by ``rng``, depth first; terminal states are checked by the verifier (free)
and the search returns the first verified solution. On the 100 Game-of-24 test puzzles of Tree
of Thoughts (ranks 901-1000) it solves about 12% within 10 expansions, 45% within 50 and 67%
within 100 (a whole tree is about 650 expansions).

It needs a task with enumerable steps and a test-time verifier (else
:class:`~qstar.errors.ConfigError`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qstar.errors import ConfigError
from qstar.policy.base import Policy
from qstar.rewards.base import Scorer
from qstar.search.checks import as_rng
from qstar.search.expand import expand
from qstar.search.meter import Meter
from qstar.search.tree import add_children, best_node, is_solution, make_result, new_tree
from qstar.tasks.base import Task
from qstar.types import Budget, Problem, SearchResult

__all__ = ["BlindConfig", "blind"]


@dataclass(frozen=True, kw_only=True)
class BlindConfig:
    """No knobs: the baseline is defined by the task, the budget and the seed."""


def blind(
    problem: Problem,
    task: Task,
    policy: Policy | None = None,
    scorer: Scorer | None = None,
    budget: Budget | None = None,
    config: BlindConfig | None = None,
    rng: np.random.Generator | int | None = None,
) -> SearchResult:
    """Random-order DFS (module docstring); ``policy`` and ``scorer`` are ignored."""
    if not task.has_test_time_verifier:
        raise ConfigError(f"blind search needs a task with a test-time verifier; {task.name!r} has none")
    meter, rng = Meter(budget or Budget()), as_rng(rng)
    tree = new_tree(task, problem, "blind")
    stack = [0]
    while stack:
        node = stack.pop()
        if tree.terminal[node] or tree.depth(node) >= task.max_steps:
            continue
        if meter.exhausted():
            break
        (children,) = expand(task, None, [tree.state[node]], cost=meter.cost)
        new = add_children(tree, task, node, children)
        solution = next((c for c in new if is_solution(tree, c)), None)
        if solution is not None:
            return make_result(tree, task, solution, meter.tick())
        stack.extend(new[i] for i in rng.permutation(len(new)))
    return make_result(tree, task, best_node(tree), meter.tick())
