"""Step-level beam search guided by a process reward scorer.

Beam search over reasoning steps as in Snell et al. 2024 ("Scaling LLM test-time compute
optimally", arXiv 2408.03314, Section 5.1 "beam search"), with the PRM-guided step selection of
Lightman et al. 2023 and Wang et al. 2024 (Math-Shepherd): keep ``beam_width`` partial paths;
expand each into at most ``num_samples`` candidate next steps (on tasks with enumerable steps,
the ``num_samples`` most probable under the policy); score every candidate path with the
scorer, aggregated along the path (``aggregate``: ``"last"``, the value of the newest step, is
what Snell et al. found best; ``"min"``, ``"mean"`` and ``"logprob"`` are alternatives); keep
the ``beam_width`` best. Paths that reach a terminal state leave the beam for a pool of finished
hypotheses, and the best finished hypothesis is the answer. A verified solution ends the search
at once.

Compared with :func:`~qstar.search.tot.tot_bfs` (which keeps the best ``b`` of *all* children):
a per-beam candidate limit, a path-aggregated score, and a pool of finished paths.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qstar.policy.base import Policy
from qstar.rewards.base import Scorer
from qstar.search.checks import as_rng, check_choice, check_float, check_int
from qstar.search.expand import ExpandStats
from qstar.search.grow import expand_nodes, value_nodes
from qstar.search.meter import Meter
from qstar.search.tree import AGGREGATES, aggregate, is_solution, make_result, new_tree
from qstar.tasks.base import Task
from qstar.types import Budget, Problem, SearchResult

__all__ = ["BeamConfig", "beam"]


@dataclass(frozen=True, kw_only=True)
class BeamConfig:
    """``beam_width`` paths kept per depth; ``num_samples`` candidate steps per path (Snell et al.
    use ``N / beam_width`` candidates per beam); ``aggregate`` of the scorer values along a path;
    ``temperature`` of sampling on open-ended tasks; ``max_depth``: ``None`` = ``task.max_steps``."""

    beam_width: int = 4
    num_samples: int = 4
    aggregate: str = "last"
    temperature: float = 0.7
    max_depth: int | None = None

    def __post_init__(self) -> None:
        check_int("beam", "beam_width", self.beam_width)
        check_int("beam", "num_samples", self.num_samples)
        check_choice("beam", "aggregate", self.aggregate, AGGREGATES)
        check_float("beam", "temperature", self.temperature, low=0.0)
        check_int("beam", "max_depth", self.max_depth, allow_none=True)


def beam(
    problem: Problem,
    task: Task,
    policy: Policy,
    scorer: Scorer,
    budget: Budget | None = None,
    config: BeamConfig | None = None,
    rng: np.random.Generator | int | None = None,
) -> SearchResult:
    """Step-level beam search (module docstring); ties go to the higher prior, then the earlier node."""
    config = config or BeamConfig()
    meter, rng, stats = Meter(budget or Budget()), as_rng(rng), ExpandStats()
    tree = new_tree(task, problem, "beam")
    max_depth = config.max_depth or task.max_steps
    beams = [] if tree.terminal[0] else [0]
    finished: list[int] = []

    def score(i: int) -> float:
        return tree.extra[i]["score"]

    for _depth in range(max_depth):
        n = meter.clip(len(beams))
        if n == 0:
            break
        batch = beams[:n]
        # Enumerated steps come with every legal step: keep the most probable num_samples.
        new = expand_nodes(
            tree,
            task,
            policy,
            batch,
            config,
            cost=meter.cost,
            rng=rng,
            stats=stats,
            most_probable=config.num_samples,
        )
        solution = next((c for c in new if is_solution(tree, c)), None)
        if solution is not None:
            return make_result(tree, task, solution, meter.tick(), info={"expand": stats.to_json()})
        value_nodes(tree, task, scorer, new, cost=meter.cost)
        pool = []
        for c in new:
            tree.extra[c]["score"] = aggregate(tree, c, config.aggregate)
            if tree.terminal[c]:
                if tree.outcome[c] is None:  # unverifiable: a finished hypothesis
                    finished.append(c)
                continue
            pool.append(c)
        beams = sorted(pool, key=lambda c: (-score(c), -tree.prior[c], c))[: config.beam_width]
        for c in beams:
            tree.flag(c, "selected")
    if finished:
        final = max(finished, key=lambda c: (score(c), -c))
    else:
        scored = [i for i in range(1, len(tree)) if "score" in tree.extra[i]]
        final = max(scored, key=lambda c: (tree.terminal[c], tree.depth(c), score(c), -c)) if scored else 0
    return make_result(tree, task, final, meter.tick(), info={"expand": stats.to_json()})
