"""Searches that only walk paths: greedy chain of thought, self-consistency, best-of-N.

- :func:`greedy`: chain-of-thought decoding (Wei et al. 2022, arXiv 2201.11903), "System 1":
  one line at temperature 0 per step, parsed and applied, until a terminal state or
  ``task.max_steps``. A line that does not parse or breaks the rules ends the path as a failure.
- :func:`self_consistency`: ``num_samples`` sampled paths, answer by majority vote over their
  final answers, ``argmax_a sum_i 1[a_i = a]`` (Wang et al. 2022, arXiv 2203.11171, Eq. 1 with
  unweighted votes). Pure voting: the verifier is not consulted.
- :func:`best_of_n`: ``num_samples`` sampled paths reranked by the scorer on their final states
  (Cobbe et al. 2021, arXiv 2110.14168, "verifiers"). As everywhere in ``search/``, a terminal
  state of a task with a test-time verifier is valued by the verifier itself (free).

Each step of each path is one expansion. Paths run in waves of ``batch_size`` that advance in
lockstep (one batched ``generate`` call per depth); the budget is clipped per depth, so paths
of a wave that the budget cannot advance stop where they are. Paths that write the same steps
share nodes in the tree; ``visits`` counts the paths through a node.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from qstar.policy.base import Policy
from qstar.rewards.base import Scorer
from qstar.search.checks import as_rng, check_float, check_int
from qstar.search.expand import ExpandStats, sample_steps
from qstar.search.grow import value_nodes
from qstar.search.meter import Meter
from qstar.search.tree import Tree, add_children, find_child, make_result, new_tree
from qstar.tasks.base import Task
from qstar.types import Budget, Problem, SearchResult

__all__ = [
    "GreedyConfig",
    "greedy",
    "SelfConsistencyConfig",
    "self_consistency",
    "BestOfNConfig",
    "best_of_n",
]


@dataclass(frozen=True, kw_only=True)
class GreedyConfig:
    """``max_new_tokens``: the longest line the policy may write for one step."""

    max_new_tokens: int = 64

    def __post_init__(self) -> None:
        check_int("greedy", "max_new_tokens", self.max_new_tokens)


@dataclass(frozen=True, kw_only=True)
class SelfConsistencyConfig:
    """``num_samples`` paths at ``temperature`` (Wang et al. sample 40 paths at T = 0.5-0.7;
    ToT's CoT-SC baseline used 100 at 0.7), advanced ``batch_size`` at a time (``None``: all)."""

    num_samples: int = 10
    temperature: float = 0.7
    batch_size: int | None = None
    max_new_tokens: int = 64

    def __post_init__(self) -> None:
        check_int("self_consistency", "num_samples", self.num_samples)
        check_float("self_consistency", "temperature", self.temperature, low=0.0, low_open=True)
        check_int("self_consistency", "batch_size", self.batch_size, allow_none=True)
        check_int("self_consistency", "max_new_tokens", self.max_new_tokens)


@dataclass(frozen=True, kw_only=True)
class BestOfNConfig:
    """``num_samples`` (N) paths at ``temperature``, advanced ``batch_size`` at a time."""

    num_samples: int = 10
    temperature: float = 0.7
    batch_size: int | None = None
    max_new_tokens: int = 64

    def __post_init__(self) -> None:
        check_int("best_of_n", "num_samples", self.num_samples)
        check_float("best_of_n", "temperature", self.temperature, low=0.0, low_open=True)
        check_int("best_of_n", "batch_size", self.batch_size, allow_none=True)
        check_int("best_of_n", "max_new_tokens", self.max_new_tokens)


def _walk_paths(
    problem: Problem,
    task: Task,
    policy: Policy,
    budget: Budget | None,
    rng: np.random.Generator | int | None,
    method: str,
    *,
    num_paths: int,
    temperature: float,
    batch_size: int | None,
    max_new_tokens: int,
) -> tuple[Tree, Meter, ExpandStats, list[dict]]:
    """Start the tree of ``method`` and walk up to ``num_paths`` paths from its root. Returns
    the tree, the meter, the expansion stats and one record per path that was started:
    ``{"node": last node, "end": "terminal" | "invalid_step" | "max_steps" | "budget"}``."""
    meter, rng, stats = Meter(budget or Budget()), as_rng(rng), ExpandStats()
    tree = new_tree(task, problem, method)
    records: list[dict] = []
    wave = batch_size or num_paths
    while len(records) < num_paths and not meter.exhausted():
        paths = [{"node": 0, "end": None} for _ in range(min(wave, num_paths - len(records)))]
        records.extend(paths)
        while True:
            live = []
            for p in paths:
                if p["end"] is not None:
                    continue
                if tree.terminal[p["node"]]:
                    p["end"] = "terminal"
                elif tree.depth(p["node"]) >= task.max_steps:
                    p["end"] = "max_steps"
                else:
                    live.append(p)
            if not live:
                break
            n = meter.clip(len(live))
            for p in live[n:]:
                p["end"] = "budget"
            if n == 0:
                break
            live = live[:n]
            steps = sample_steps(
                task,
                policy,
                [tree.state[p["node"]] for p in live],
                temperature=temperature,
                max_new_tokens=max_new_tokens,
                cost=meter.cost,
                rng=rng,
                stats=stats,
            )
            for p, step in zip(live, steps, strict=True):
                node = p["node"]
                child = None if step is None else find_child(tree, node, step.text)
                if step is not None and child is None:
                    # The prior of a sampled step is its probability under the policy.
                    (child,) = add_children(tree, task, node, [(step, float(np.exp(min(0.0, step.logprob))))])
                else:
                    tree.expanded[node] = True
                    tree.expansion_order.append(node)
                if step is None:
                    tree.flag(node, "invalid_step")
                    p["end"] = "invalid_step"
                else:
                    p["node"] = child
    for p in records:
        for node in tree.path_nodes(p["node"]):
            tree.visits[node] += 1
    return tree, meter, stats, records


def _sample_paths(
    problem: Problem,
    task: Task,
    policy: Policy,
    budget: Budget | None,
    rng: np.random.Generator | int | None,
    method: str,
    config: SelfConsistencyConfig | BestOfNConfig,
) -> tuple[Tree, Meter, ExpandStats, list[dict]]:
    """The ``config.num_samples`` sampled paths that self-consistency and best-of-N share (they
    differ only in how they pick the answer among them); see :func:`_walk_paths`."""
    return _walk_paths(
        problem,
        task,
        policy,
        budget,
        rng,
        method,
        num_paths=config.num_samples,
        temperature=config.temperature,
        batch_size=config.batch_size,
        max_new_tokens=config.max_new_tokens,
    )


def _info(records: list[dict], stats: ExpandStats, tree: Tree, task: Task) -> dict:
    return {
        "paths": [
            {"node": p["node"], "end": p["end"], "answer": task.answer(tree.state[p["node"]])}
            for p in records
        ],
        "expand": stats.to_json(),
    }


def greedy(
    problem: Problem,
    task: Task,
    policy: Policy,
    scorer: Scorer | None = None,
    budget: Budget | None = None,
    config: GreedyConfig | None = None,
    rng: np.random.Generator | int | None = None,
) -> SearchResult:
    """Chain of thought at temperature 0 (module docstring); ``scorer`` is not used."""
    config = config or GreedyConfig()
    tree, meter, stats, records = _walk_paths(
        problem,
        task,
        policy,
        budget,
        rng,
        "greedy",
        num_paths=1,
        temperature=0.0,
        batch_size=1,
        max_new_tokens=config.max_new_tokens,
    )
    node = records[0]["node"] if records else 0
    return make_result(tree, task, node, meter.tick(), info=_info(records, stats, tree, task))


def self_consistency(
    problem: Problem,
    task: Task,
    policy: Policy,
    scorer: Scorer | None = None,
    budget: Budget | None = None,
    config: SelfConsistencyConfig | None = None,
    rng: np.random.Generator | int | None = None,
) -> SearchResult:
    """Majority vote over sampled paths (module docstring); ``scorer`` is not used. Ties go to
    the answer that appeared first; the returned path is the first one with that answer."""
    config = config or SelfConsistencyConfig()
    tree, meter, stats, records = _sample_paths(
        problem, task, policy, budget, rng, "self_consistency", config
    )
    info = _info(records, stats, tree, task)
    answers = [p["answer"] for p in info["paths"] if p["end"] == "terminal" and p["answer"] is not None]
    votes = Counter(answers)
    info["votes"] = dict(votes)
    if votes:
        top = max(votes.values())
        winner = next(a for a in answers if votes[a] == top)
        node = next(p["node"] for p in info["paths"] if p["end"] == "terminal" and p["answer"] == winner)
    else:
        node = records[0]["node"] if records else 0
    return make_result(tree, task, node, meter.tick(), info=info)


def best_of_n(
    problem: Problem,
    task: Task,
    policy: Policy,
    scorer: Scorer | None,
    budget: Budget | None = None,
    config: BestOfNConfig | None = None,
    rng: np.random.Generator | int | None = None,
) -> SearchResult:
    """Sampled paths reranked by ``scorer`` on their final states (module docstring). Finished
    paths rank above unfinished ones; ties go to the earlier path."""
    config = config or BestOfNConfig()
    tree, meter, stats, records = _sample_paths(problem, task, policy, budget, rng, "best_of_n", config)
    ends = list(dict.fromkeys(p["node"] for p in records))
    value_nodes(tree, task, scorer, ends, cost=meter.cost)
    node = max(ends, key=lambda i: (tree.terminal[i], tree.value[i], -ends.index(i))) if ends else 0
    return make_result(tree, task, node, meter.tick(), info=_info(records, stats, tree, task))
