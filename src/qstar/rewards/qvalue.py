"""A learned step Q-function ``Q(s, a)`` and the three kinds of targets it is trained on.

Steps are deterministic (``s' = apply(s, a)``) and the state text ends with the step, so
``Q(s, a)`` is read as the value head of a tiny GPT checkpoint at the last token of
``task.render(s')``: the last token of the action, with the whole state before it in context.
:class:`QValueScorer` plugs in as Q*'s heuristic (``QStarConfig(q_fn=scorer)``: ``h(s') =
Q(s, a)``) or as any search's scorer.

Rewards are 0 on every step except the last, which earns the outcome (1 right, 0 wrong).
Targets (``qstar train q --target``):

- ``mc``: the Monte-Carlo return, the share of rollouts from ``s'`` that succeed
  (Math-Shepherd's soft label; :func:`mc_targets`).
- ``best``: the Q* paper's estimate from rollouts, the best return among them,
  ``max_i gamma^k_i R_i`` (Wang et al. 2024, "Q*", arXiv 2406.14283, Section 4.2,
  "learning from rollout"; :func:`best_rollout_targets`).
- ``bellman``: fitted Q-iteration (Ernst et al. 2005; Riedmiller 2005) over saved search
  trees: ``y(s, a) = r(s, a) + gamma * max_a' Q_k(s', a')`` over the children ``a'`` the tree
  holds (:func:`bellman_targets`). With ``q_fn=None`` the max is taken recursively inside the
  tree (exact backup of the outcomes it contains); with ``q_fn`` (the current model) it is one
  step of fitted Q-iteration, which reaches past the tree's leaves. This is the Q-learning of
  "Q*".
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from qstar.policy.base import Policy, Usage
from qstar.rewards.labels import LabelRecord, step_prompts
from qstar.rewards.rollout import account
from qstar.search.checks import check_float
from qstar.search.tree import Tree
from qstar.tasks.base import Task
from qstar.types import Cost, State

__all__ = ["QValueScorer", "mc_targets", "best_rollout_targets", "bellman_targets", "Q_TARGETS"]

Q_TARGETS = ("mc", "best", "bellman")


class QValueScorer:
    """``Q(s, a)`` = the model's value of ``s' = apply(s, a)`` (module docstring)."""

    def __init__(self, task: Task, model: Policy, *, name: str = "", cost: Cost | None = None) -> None:
        self.task = task
        self.model = model
        self.cost = Cost() if cost is None else cost
        self.name = name or f"q:{getattr(model, 'name', 'model')}"
        self.usage = Usage()

    @classmethod
    def load(cls, task: Task, path: str | os.PathLike[str]) -> QValueScorer:
        from qstar.rewards.prm import load_value_model

        return cls(task, load_value_model(path), name=f"q:{path}")

    def value(self, states: Sequence[State]) -> list[float]:
        if not states:
            return []
        before = self.model.usage.snapshot()
        values = [float(v) for v in self.model.value([self.task.render(s) for s in states])]
        account(self.usage, self.cost, before, self.model.usage)
        return values

    __call__ = value  # Q*'s q_fn


def mc_targets(records: Sequence[LabelRecord]) -> list[tuple[str, float]]:
    """(rendered s', target) for every step: the soft MC value (the hard label if none)."""
    out = []
    for r in records:
        values = r.values or tuple(float(y) for y in r.labels)
        out += list(zip(step_prompts(r), values, strict=True))
    return out


def best_rollout_targets(records: Sequence[LabelRecord]) -> list[tuple[str, float]]:
    """(rendered s', target): Q*'s best-rollout return (the hard label if the file has none)."""
    out = []
    for r in records:
        values = r.best_values or tuple(float(y) for y in r.labels)
        out += list(zip(step_prompts(r), values, strict=True))
    return out


def bellman_targets(
    tree: Tree,
    *,
    gamma: float = 1.0,
    q_fn: Callable[[Sequence[State]], Sequence[float]] | None = None,
    reward_fn: Callable[[int], float | None] | None = None,
) -> dict[int, float]:
    """Bellman target ``y`` of each non-root node ``c`` (the edge parent -> c) that has one.

    - terminal ``c``: ``y = r``, the outcome (``reward_fn(c)`` where the tree has none, e.g.
      ground truth for a task without a test-time verifier; no target when that is None too);
    - ``c`` with children: ``y = gamma * max_c' Q(c')`` with ``Q(c')`` the outcome of a
      terminal child, else ``q_fn`` of its state (fitted Q-iteration) or, without ``q_fn``,
      its own target (exact backup); children without a value are left out of the max;
    - ``c`` expanded with no valid child (dead end): ``y = 0``;
    - a transposition (``extra["same_as"]``): the target of the node it repeats (exact
      backup only);
    - otherwise (an unexpanded leaf) no target.
    """
    check_float("bellman", "gamma", gamma, low=0.0, high=1.0)

    def reward(c: int) -> float | None:
        if tree.outcome[c] is not None:
            return float(tree.outcome[c])
        return None if reward_fn is None else reward_fn(c)

    estimates: dict[int, float] = {}
    if q_fn is not None:
        asked = [
            c
            for n in range(1, len(tree))
            if not tree.terminal[n]
            for c in tree.children[n]
            if not tree.terminal[c]
        ]
        asked = list(dict.fromkeys(asked))
        if asked:
            estimates = dict(
                zip(asked, (float(v) for v in q_fn([tree.state[c] for c in asked])), strict=True)
            )

    memo: dict[int, float | None] = {}

    def target(c: int, seen: frozenset[int] = frozenset()) -> float | None:
        if c in memo:
            return memo[c]
        if c in seen:  # a cycle of transpositions carries no information
            return None
        seen = seen | {c}
        y: float | None = None
        if tree.terminal[c]:
            y = reward(c)
        elif tree.children[c]:
            vals = []
            for k in tree.children[c]:
                v = reward(k) if tree.terminal[k] else estimates.get(k) if q_fn else target(k, seen)
                if v is not None:
                    vals.append(v)
            y = gamma * max(vals) if vals else None
        elif tree.expanded[c]:
            y = 0.0
        elif q_fn is None and "same_as" in tree.extra[c]:
            y = target(int(tree.extra[c]["same_as"]), seen)
        memo[c] = y
        return y

    out = {}
    for c in range(1, len(tree)):
        y = target(c)
        if y is not None:
            out[c] = y
    return out
