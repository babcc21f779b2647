"""Growing a search tree: expand some of its nodes, value some of its nodes.

The tree-level side of :mod:`qstar.search.expand`: :func:`expand_nodes` asks :func:`expand` for
the children of several nodes in one batched policy call and records them with
:func:`~qstar.search.tree.add_children`; :func:`value_nodes` asks :func:`evaluate` for the values
of several nodes in one batched scorer call and records them in ``tree.value``. ToT (BFS and
DFS), beam and Q* expand with :func:`expand_nodes`; they, MCTS and best-of-N value with
:func:`value_nodes`. What an algorithm does with the new nodes (prune, rank, push, back up)
stays in the algorithm.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from qstar.policy.base import Policy
from qstar.rewards.base import Scorer
from qstar.search.expand import ExpandStats, evaluate, expand
from qstar.search.tree import Tree, add_children
from qstar.tasks.base import Task
from qstar.types import Cost

__all__ = ["SamplingConfig", "expand_nodes", "value_nodes"]


class SamplingConfig(Protocol):
    """What :func:`expand_nodes` reads of a search's config: lines drawn per state and their
    temperature (used on open-ended tasks only)."""

    @property
    def num_samples(self) -> int: ...

    @property
    def temperature(self) -> float: ...


def expand_nodes(
    tree: Tree,
    task: Task,
    policy: Policy,
    nodes: Sequence[int],
    config: SamplingConfig,
    *,
    cost: Cost,
    rng: np.random.Generator,
    stats: ExpandStats,
    most_probable: int | None = None,
) -> list[int]:
    """Expand ``nodes`` (one expansion each, one batched :func:`expand` call) and add their
    children to ``tree``, node by node; returns the new child ids in creation order.

    ``most_probable``: keep only that many children per node, highest prior first (ties keep
    the order :func:`expand` gave); ``None`` keeps them all in that order."""
    kids = expand(
        task,
        policy,
        [tree.state[i] for i in nodes],
        num_samples=config.num_samples,
        temperature=config.temperature,
        cost=cost,
        rng=rng,
        stats=stats,
    )
    if most_probable is not None:
        kids = [sorted(children, key=lambda sp: -sp[1])[:most_probable] for children in kids]
    return [
        c
        for node, children in zip(nodes, kids, strict=True)
        for c in add_children(tree, task, node, children)
    ]


def value_nodes(
    tree: Tree, task: Task, scorer: Scorer | None, nodes: Sequence[int], *, cost: Cost
) -> list[float]:
    """Value the states of ``nodes`` (one batched :func:`evaluate` call), record each value in
    ``tree.value`` and return the values in the order of ``nodes``."""
    values = evaluate(task, scorer, [tree.state[i] for i in nodes], cost=cost)
    for node, v in zip(nodes, values, strict=True):
        tree.value[node] = v
    return values
