"""AlphaZero Monte-Carlo tree search with PUCT (Silver et al. 2017, "Mastering chess and shogi
by self-play...", arXiv 1712.01815; pseudocode of Silver et al. 2018, Science).

One simulation: *select* from the root by the PUCT rule until a leaf,

    score(s, a) = Q(s, a) + C(s) * P(s, a) * sqrt(N(s)) / (1 + N(s, a)),
    C(s) = log((1 + N(s) + pb_c_base) / pb_c_base) + pb_c_init,

*expand* the leaf (priors ``P`` from :func:`~qstar.search.expand.expand`), *evaluate* it (the
scorer's value ``v`` of the leaf state; a terminal leaf gets the verifier's outcome where the
task has a test-time verifier) and *back up* ``v`` into every node of the path
(``N += 1``, ``Q`` = running mean). A child never visited has ``Q = init_q`` (AlphaZero's
pseudocode uses 0 on its [-1, 1] scale, the midpoint; ours is [0, 1], so 0.5).

- **Dirichlet noise** (``add_noise``): the root's priors become
  ``(1 - dirichlet_fraction) * P + dirichlet_fraction * Dir(dirichlet_alpha)``
  (0.25 and 0.3, the chess values); the raw priors stay in ``extra["raw_prior"]``.
- **Virtual loss** (Segal 2010; AlphaGo, Silver et al. 2016): ``batch_size`` leaves are selected
  before any is evaluated; every node on a selected path counts ``virtual_loss`` extra visits of
  value 0 meanwhile, which steers the next selection elsewhere. The batch's leaves are then
  expanded in ONE policy call and valued in ONE scorer call. A batch stops early if a leaf
  repeats or the expansion budget is reached.
- **Solved subtrees**: a visited terminal node, a dead end (no valid step) and a node whose
  children are all closed are *closed* and no longer selected (as MCTS-Solver, Winands et al.
  2008); every simulation thus expands a node or visits a new terminal, so the search ends.
  A dead end is valued 0.
- **Early stop** (``stop_on_solution``): our tasks have a verifier, so the search returns as
  soon as an expansion creates a verified solution.

Otherwise the answer is the most visited path, extended greedily by visits (then prior) to a
terminal or unexpanded node. ``num_simulations = None`` runs until the budget is spent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from qstar.policy.base import Policy
from qstar.rewards.base import Scorer
from qstar.search.checks import as_rng, check_float, check_int
from qstar.search.expand import ExpandStats, expand
from qstar.search.grow import value_nodes
from qstar.search.meter import Meter
from qstar.search.tree import (
    Tree,
    add_children,
    backup,
    is_solution,
    make_result,
    most_visited_leaf,
    new_tree,
)
from qstar.tasks.base import Task
from qstar.types import Budget, Problem, SearchResult

__all__ = ["MctsConfig", "mcts", "puct_score"]


@dataclass(frozen=True, kw_only=True)
class MctsConfig:
    """Knobs of :func:`mcts` with AlphaZero's defaults (module docstring)."""

    num_simulations: int | None = None
    batch_size: int = 1
    pb_c_base: float = 19652.0
    pb_c_init: float = 1.25
    init_q: float = 0.5
    virtual_loss: float = 1.0
    add_noise: bool = False
    dirichlet_alpha: float = 0.3
    dirichlet_fraction: float = 0.25
    num_samples: int = 8
    temperature: float = 1.0
    stop_on_solution: bool = True

    def __post_init__(self) -> None:
        check_int("mcts", "num_simulations", self.num_simulations, allow_none=True)
        check_int("mcts", "batch_size", self.batch_size)
        check_float("mcts", "pb_c_base", self.pb_c_base, low=0.0, low_open=True)
        check_float("mcts", "pb_c_init", self.pb_c_init, low=0.0)
        check_float("mcts", "init_q", self.init_q, low=0.0, high=1.0)
        check_float("mcts", "virtual_loss", self.virtual_loss, low=0.0)
        check_float("mcts", "dirichlet_alpha", self.dirichlet_alpha, low=0.0, low_open=True)
        check_float("mcts", "dirichlet_fraction", self.dirichlet_fraction, low=0.0, high=1.0)
        check_int("mcts", "num_samples", self.num_samples)
        check_float("mcts", "temperature", self.temperature, low=0.0)


def puct_score(
    parent_visits: float, child_visits: float, child_q: float | None, prior: float, config: MctsConfig
) -> float:
    """AlphaZero's ``ucb_score`` (module docstring); ``child_q`` is ignored while unvisited."""
    pb_c = math.log((parent_visits + config.pb_c_base + 1) / config.pb_c_base) + config.pb_c_init
    pb_c *= math.sqrt(parent_visits) / (child_visits + 1)
    q = child_q if child_visits > 0 and child_q is not None else config.init_q
    return q + pb_c * prior


def _select(tree: Tree, closed: list[bool], pending: list[int], config: MctsConfig) -> list[int]:
    """Path from the root to a leaf by PUCT, counting ``pending`` selections as virtual losses."""
    node, path = 0, [0]
    while tree.expanded[node] and not tree.terminal[node]:
        kids = [c for c in tree.children[node] if not closed[c]]
        if not kids:
            break
        parent_n = tree.visits[node] + config.virtual_loss * pending[node]

        def score(c: int, parent_n: float = parent_n) -> float:
            n = tree.visits[c] + config.virtual_loss * pending[c]
            # A virtual visit is a loss (value 0): it lowers Q as well as raising N.
            q = (tree.q[c] or 0.0) * tree.visits[c] / n if n > 0 else None
            return puct_score(parent_n, n, q, tree.prior[c], config)

        node = max(kids, key=lambda c: (score(c), -c))
        path.append(node)
    return path


def _closed(tree: Tree, closed: list[bool], node: int) -> bool:
    if tree.terminal[node]:
        return tree.visits[node] > 0
    return tree.expanded[node] and all(closed[c] for c in tree.children[node])


def mcts(
    problem: Problem,
    task: Task,
    policy: Policy,
    scorer: Scorer,
    budget: Budget | None = None,
    config: MctsConfig | None = None,
    rng: np.random.Generator | int | None = None,
) -> SearchResult:
    """AlphaZero PUCT search (module docstring)."""
    config = config or MctsConfig()
    meter, rng, stats = Meter(budget or Budget()), as_rng(rng), ExpandStats()
    tree = new_tree(task, problem, "mcts")
    closed = [False]
    num_sims, solution = 0, None
    while solution is None and not tree.terminal[0] and not closed[0]:
        if config.num_simulations is not None and num_sims >= config.num_simulations:
            break
        if meter.exhausted():
            break
        left = meter.budget.expansions_left(meter.cost)
        limit = config.batch_size
        if config.num_simulations is not None:
            limit = min(limit, config.num_simulations - num_sims)
        pending = [0] * len(tree)
        paths: list[list[int]] = []
        to_expand: list[int] = []
        while len(paths) < limit:
            path = _select(tree, closed, pending, config)
            leaf = path[-1]
            if any(p[-1] == leaf for p in paths):
                break
            grow = not tree.terminal[leaf] and not tree.expanded[leaf]
            if grow and left is not None and len(to_expand) >= left:
                break
            paths.append(path)
            if grow:
                to_expand.append(leaf)
            for node in path:
                pending[node] += 1
        # Expand every new leaf of the batch in one policy call.
        kids = (
            expand(
                task,
                policy,
                [tree.state[i] for i in to_expand],
                num_samples=config.num_samples,
                temperature=config.temperature,
                cost=meter.cost,
                rng=rng,
                stats=stats,
            )
            if to_expand
            else []
        )
        for leaf, children in zip(to_expand, kids, strict=True):
            noisy = leaf == 0 and config.add_noise and len(children) > 0
            if noisy:
                noise = rng.dirichlet([config.dirichlet_alpha] * len(children))
                frac = config.dirichlet_fraction
                mixed = [
                    (s, (1 - frac) * p + frac * float(x)) for (s, p), x in zip(children, noise, strict=True)
                ]
            new = add_children(tree, task, leaf, mixed if noisy else children)
            if noisy:
                for c, (_, p) in zip(new, children, strict=True):
                    tree.extra[c]["raw_prior"] = p
            closed.extend(False for _ in new)
            if config.stop_on_solution and solution is None:
                solution = next((c for c in new if is_solution(tree, c)), None)
        # Value every leaf in one scorer call; dead ends are worth 0.
        for leaf in {p[-1] for p in paths}:
            if tree.expanded[leaf] and not tree.children[leaf]:
                tree.value[leaf] = 0.0
        ask = sorted({p[-1] for p in paths if tree.value[p[-1]] is None})
        value_nodes(tree, task, scorer, ask, cost=meter.cost)
        for path in paths:
            backup(tree, path, tree.value[path[-1]])
            for node in reversed(path):
                closed[node] = _closed(tree, closed, node)
                if not closed[node]:
                    break
        num_sims += len(paths)
    final = solution if solution is not None else most_visited_leaf(tree)
    info = {"num_simulations": num_sims, "expand": stats.to_json()}
    return make_result(tree, task, final, meter.tick(), info=info)
