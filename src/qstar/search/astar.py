"""Q*: best-first (A*) search over reasoning steps (Wang et al. 2024, "Q*: Improving Multi-step
Reasoning for LLMs with Deliberative Planning", arXiv 2406.14283, Section 4).

Each open state ``s`` has the priority

    f(s) = g(s) + lambda * h(s)

- ``g(s)``: the aggregated utility of the path to ``s``, ``Agg(R(s_1), ..., R(s_t))`` over
  the scorer's values of the states after each step (``g_aggregate``: ``"min"``, ``"mean"``,
  ``"last"``), or ``"logprob"``: the sum of the policy's log-probabilities of the steps. The
  paper leaves ``Agg`` open (min, max, sum, last); ``"min"`` (a path is as good as its weakest
  step) is our default.
- ``h(s)``: the heuristic, ``max_a Q*(s, a)`` in the paper. Until a learned Q-value model
  exists, ``h`` is the scorer's value of ``s`` itself; pass ``q_fn(states) -> values`` to plug
  one in (if ``q_fn`` has a ``usage`` account, its model calls are charged to the search).
- ``lambda`` = ``heuristic_weight`` (1.0).

The search pops the open state with the largest ``f`` (ties: created first), expands it (one
expansion; ``batch_size`` > 1 pops that many and expands them in one policy call), values all
children in one batched scorer call, and pushes them. Transpositions are merged: a child whose
``task.state_key`` was seen before is flagged ``"transposition"`` and not pushed again
(``merge_transpositions``). The search returns on the first verified solution it creates; on a
task without a test-time verifier it returns the first terminal state it pops (A*'s goal test).
Each node records ``g``, ``h`` and ``f`` in ``extra``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from qstar.errors import ConfigError
from qstar.policy.base import Policy
from qstar.rewards.base import Scorer
from qstar.search.checks import as_rng, check_choice, check_float, check_int
from qstar.search.expand import ExpandStats
from qstar.search.grow import expand_nodes, value_nodes
from qstar.search.meter import Meter, charge_usage
from qstar.search.tree import AGGREGATES, aggregate, best_node, is_solution, make_result, new_tree
from qstar.tasks.base import Task
from qstar.types import Budget, Problem, SearchResult, State

__all__ = ["QStarConfig", "qstar"]


@dataclass(frozen=True, kw_only=True)
class QStarConfig:
    """Knobs of :func:`qstar` (module docstring)."""

    heuristic_weight: float = 1.0
    g_aggregate: str = "min"
    q_fn: Callable[[Sequence[State]], Sequence[float]] | None = None
    batch_size: int = 1
    merge_transpositions: bool = True
    num_samples: int = 8
    temperature: float = 1.0

    def __post_init__(self) -> None:
        check_float("qstar", "heuristic_weight", self.heuristic_weight, low=0.0)
        check_choice("qstar", "g_aggregate", self.g_aggregate, AGGREGATES)
        if self.q_fn is not None and not callable(self.q_fn):
            raise ConfigError(f"qstar: q_fn must be a function of a list of states, got {self.q_fn!r}")
        check_int("qstar", "batch_size", self.batch_size)
        check_int("qstar", "num_samples", self.num_samples)
        check_float("qstar", "temperature", self.temperature, low=0.0)


def qstar(
    problem: Problem,
    task: Task,
    policy: Policy,
    scorer: Scorer,
    budget: Budget | None = None,
    config: QStarConfig | None = None,
    rng: np.random.Generator | int | None = None,
) -> SearchResult:
    """Q* best-first search (module docstring)."""
    config = config or QStarConfig()
    meter, rng, stats = Meter(budget or Budget()), as_rng(rng), ExpandStats()
    tree = new_tree(task, problem, "qstar")
    tree.extra[0].update(g=0.0, h=None, f=0.0)
    open_heap: list[tuple[float, int]] = [] if tree.terminal[0] else [(-0.0, 0)]
    seen = {tree.key[0]: 0}

    def done(node: int) -> SearchResult:
        return make_result(tree, task, node, meter.tick(), info={"expand": stats.to_json()})

    while open_heap:
        n = meter.clip(config.batch_size)
        if n == 0:
            break
        batch: list[int] = []
        while open_heap and len(batch) < n:
            _, node = heapq.heappop(open_heap)
            if tree.terminal[node]:  # only unverifiable terminals are pushed
                if not batch:
                    return done(node)
                heapq.heappush(open_heap, (-tree.extra[node]["f"], node))
                break
            batch.append(node)
        new = expand_nodes(tree, task, policy, batch, config, cost=meter.cost, rng=rng, stats=stats)
        solution = next((c for c in new if is_solution(tree, c)), None)
        if solution is not None:
            return done(solution)
        fresh = []
        for c in new:
            if tree.terminal[c] and tree.outcome[c] is not None:
                continue  # verified wrong: nothing to search below it
            if config.merge_transpositions and tree.key[c] in seen:
                tree.flag(c, "transposition")
                tree.extra[c]["same_as"] = seen[tree.key[c]]
                continue
            seen.setdefault(tree.key[c], c)
            fresh.append(c)
        if not fresh:
            continue
        if config.g_aggregate != "logprob" or config.q_fn is None:
            value_nodes(tree, task, scorer, fresh, cost=meter.cost)
        if config.q_fn is None:
            h = [tree.value[c] for c in fresh]
        else:
            usage = getattr(config.q_fn, "usage", None)
            before = usage.snapshot() if usage is not None else None
            h = [float(x) for x in config.q_fn([tree.state[c] for c in fresh])]
            if usage is not None:
                charge_usage(meter.cost, before, usage)
        for c, hc in zip(fresh, h, strict=True):
            g = aggregate(tree, c, config.g_aggregate)
            f = g + config.heuristic_weight * hc
            tree.extra[c].update(g=g, h=hc, f=f)
            heapq.heappush(open_heap, (-f, c))
    return done(best_node(tree, lambda i: tree.extra[i].get("f")))
