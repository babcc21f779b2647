"""Tree of Thoughts search (Yao et al. 2023, arXiv 2305.10601, Section 3 and Algorithms 1-2).

- :func:`tot_bfs` (ToT-BFS, Algorithm 1): per depth, expand every state of the frontier
  ``S_{t-1}`` into candidates ``S'_t`` (one batched policy call), value all candidates with the
  scorer ``V(p_theta, S'_t)`` (one batched call) and keep the best ``b`` of them,
  ``S_t = argmax_{S in S'_t, |S| = b} sum_{s in S} V(s)``. Yao et al. use ``b = 5`` on Game of 24.
- :func:`tot_dfs` (ToT-DFS, Algorithm 2): expand the most promising state first; children valued
  below ``value_threshold`` are pruned, and the search backtracks to the parent's next child
  when a subtree is exhausted.

Both return at once when a child is a verified solution (checking a terminal state is free).
Candidates of one BFS depth that are transpositions of an earlier candidate (equal
``task.state_key``) are flagged ``"duplicate"`` and not kept, so they do not waste beam slots.
Ties in value go to the step the policy prefers (higher prior), then to the earlier node, so
an uninformed scorer (the verifier's neutral 0.5) leaves the choice to the policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qstar.policy.base import Policy
from qstar.rewards.base import Scorer
from qstar.search.checks import as_rng, check_float, check_int
from qstar.search.expand import ExpandStats
from qstar.search.grow import expand_nodes, value_nodes
from qstar.search.meter import Meter
from qstar.search.tree import best_node, is_solution, make_result, new_tree
from qstar.tasks.base import Task
from qstar.types import Budget, Problem, SearchResult

__all__ = ["TotBfsConfig", "tot_bfs", "TotDfsConfig", "tot_dfs"]


@dataclass(frozen=True, kw_only=True)
class TotBfsConfig:
    """``beam_width`` = ToT's ``b`` (5 on Game of 24); ``num_samples``/``temperature``: lines
    drawn per state on open-ended tasks; ``max_depth``: ``None`` = ``task.max_steps``."""

    beam_width: int = 5
    num_samples: int = 8
    temperature: float = 0.7
    max_depth: int | None = None

    def __post_init__(self) -> None:
        check_int("tot_bfs", "beam_width", self.beam_width)
        check_int("tot_bfs", "num_samples", self.num_samples)
        check_float("tot_bfs", "temperature", self.temperature, low=0.0)
        check_int("tot_bfs", "max_depth", self.max_depth, allow_none=True)


@dataclass(frozen=True, kw_only=True)
class TotDfsConfig:
    """``value_threshold``: children valued below it are pruned (ToT's ``v_th``; 0.2 on our
    [0, 1] scale prunes what a value prompt would call "impossible" and keeps the neutral 0.5
    of an uninformed scorer); ``max_children``: how many of the best children to keep per
    state (``None``: all)."""

    value_threshold: float = 0.2
    max_children: int | None = None
    num_samples: int = 8
    temperature: float = 0.7

    def __post_init__(self) -> None:
        check_float("tot_dfs", "value_threshold", self.value_threshold, low=0.0, high=1.0)
        check_int("tot_dfs", "max_children", self.max_children, allow_none=True)
        check_int("tot_dfs", "num_samples", self.num_samples)
        check_float("tot_dfs", "temperature", self.temperature, low=0.0)


def tot_bfs(
    problem: Problem,
    task: Task,
    policy: Policy,
    scorer: Scorer,
    budget: Budget | None = None,
    config: TotBfsConfig | None = None,
    rng: np.random.Generator | int | None = None,
) -> SearchResult:
    """ToT-BFS (module docstring). Frontier states are expanded best first, so a budget that
    runs out inside a depth drops the weakest ones."""
    config = config or TotBfsConfig()
    meter, rng, stats = Meter(budget or Budget()), as_rng(rng), ExpandStats()
    tree = new_tree(task, problem, "tot_bfs")
    max_depth = config.max_depth or task.max_steps
    frontier = [] if tree.terminal[0] else [0]
    for _depth in range(max_depth):
        n = meter.clip(len(frontier))
        if n == 0:
            break
        batch = frontier[:n]
        new = expand_nodes(tree, task, policy, batch, config, cost=meter.cost, rng=rng, stats=stats)
        solution = next((c for c in new if is_solution(tree, c)), None)
        if solution is not None:
            return make_result(tree, task, solution, meter.tick(), info={"expand": stats.to_json()})
        value_nodes(tree, task, scorer, new, cost=meter.cost)
        candidates, seen = [], set()
        for c in new:
            if tree.terminal[c] and tree.outcome[c] is not None:
                continue  # verified wrong: a dead end
            if tree.key[c] in seen:
                tree.flag(c, "duplicate")
                continue
            seen.add(tree.key[c])
            candidates.append(c)
        frontier = sorted(candidates, key=lambda c: (-tree.value[c], -tree.prior[c], c))[: config.beam_width]
        for c in frontier:
            tree.flag(c, "selected")
        frontier = [c for c in frontier if not tree.terminal[c]]
    return make_result(tree, task, best_node(tree), meter.tick(), info={"expand": stats.to_json()})


def tot_dfs(
    problem: Problem,
    task: Task,
    policy: Policy,
    scorer: Scorer,
    budget: Budget | None = None,
    config: TotDfsConfig | None = None,
    rng: np.random.Generator | int | None = None,
) -> SearchResult:
    """ToT-DFS with pruning and backtracking (module docstring)."""
    config = config or TotDfsConfig()
    meter, rng, stats = Meter(budget or Budget()), as_rng(rng), ExpandStats()
    tree = new_tree(task, problem, "tot_dfs")
    stack = [0]
    while stack:
        node = stack.pop()
        if tree.terminal[node]:
            # Only unverifiable terminals are ever pushed: the first one that passed the
            # threshold is the answer, as ToT-DFS stops at its first final output.
            return make_result(tree, task, node, meter.tick(), info={"expand": stats.to_json()})
        if tree.depth(node) >= task.max_steps:
            continue
        if meter.exhausted():
            break
        new = expand_nodes(tree, task, policy, [node], config, cost=meter.cost, rng=rng, stats=stats)
        solution = next((c for c in new if is_solution(tree, c)), None)
        if solution is not None:
            return make_result(tree, task, solution, meter.tick(), info={"expand": stats.to_json()})
        value_nodes(tree, task, scorer, new, cost=meter.cost)
        keep = []
        for c in new:
            if tree.terminal[c] and tree.outcome[c] is not None:
                continue
            if tree.value[c] < config.value_threshold:
                tree.flag(c, "pruned")
                continue
            keep.append(c)
        keep.sort(key=lambda c: (-tree.value[c], -tree.prior[c], c))
        for c in keep[config.max_children :] if config.max_children is not None else []:
            tree.flag(c, "pruned")
        keep = keep[: config.max_children]
        stack.extend(reversed(keep))  # the best child is popped first
    return make_result(tree, task, best_node(tree), meter.tick(), info={"expand": stats.to_json()})
