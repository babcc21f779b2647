"""A policy's value head as a scorer: ``policy.value(task.render(state))`` for each state.

AlphaZero's network has two heads, a policy prior and a value (Silver et al. 2017); this
scorer reads the second one. All states of a call go to the policy in one batched
``policy.value`` call.

Cost: the policy's usage during that call is added to this scorer's own ``usage`` (which
searches diff and charge, see :mod:`qstar.rewards.base`) and to ``cost``, a
:class:`~qstar.types.Cost` passed in or kept by the scorer, for callers outside a search.
"""

from __future__ import annotations

from collections.abc import Sequence

from qstar.policy.base import Policy, Usage
from qstar.tasks.base import Task
from qstar.types import Cost, State

__all__ = ["ValueHeadScorer"]


class ValueHeadScorer:
    """Values from ``policy.value`` on the rendered states (see module docstring)."""

    def __init__(self, task: Task, policy: Policy, *, cost: Cost | None = None) -> None:
        self.task = task
        self.policy = policy
        self.cost = Cost() if cost is None else cost
        self.name = f"value-head:{getattr(policy, 'name', type(policy).__name__)}"
        self.usage = Usage()

    def value(self, states: Sequence[State]) -> list[float]:
        if not states:
            return []
        before = self.policy.usage.snapshot()
        values = self.policy.value([self.task.render(s) for s in states])
        after = self.policy.usage
        delta = Usage(
            after.model_calls - before.model_calls,
            after.tokens_generated - before.tokens_generated,
            after.tokens_scored - before.tokens_scored,
            after.tokens_prompt - before.tokens_prompt,
        )
        for name in ("model_calls", "tokens_generated", "tokens_scored", "tokens_prompt"):
            setattr(self.usage, name, getattr(self.usage, name) + getattr(delta, name))
        self.cost.add(Cost(delta.model_calls, delta.tokens_generated, delta.tokens_scored))
        return [float(v) for v in values]
