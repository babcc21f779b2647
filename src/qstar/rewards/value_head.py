"""A policy's value head as a scorer: ``policy.value(task.render(state))`` for each state.

AlphaZero's network has two heads, a policy prior and a value (Silver et al. 2017); this
scorer reads the second one. All states of a call go to the policy in one batched
``policy.value`` call. Where the policy has ``value_after`` (the tiny GPT) and several states
share all but their last line (the children of one node), the shared text is run once and its
KV cache shared by the last lines: the same values up to float rounding, for about half the
compute of a node's children.

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
        values = self._values([self.task.render(s) for s in states])
        delta = self.usage.add_since(before, self.policy.usage)
        self.cost.add(Cost(delta.model_calls, delta.tokens_generated, delta.tokens_scored))
        return [float(v) for v in values]

    def _values(self, texts: list[str]) -> list[float]:
        """``policy.value(texts)``; texts that share all but their last line go through
        ``policy.value_after`` with that shared text run once."""
        value_after = getattr(self.policy, "value_after", None)
        groups: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            # Cut after the newline before the last line: no token spans a newline.
            groups.setdefault(text[: text.rfind("\n", 0, len(text) - 1) + 1], []).append(i)
        shared = {head: rows for head, rows in groups.items() if head and len(rows) > 1}
        if value_after is None or not shared:
            return list(self.policy.value(texts))
        values = [0.0] * len(texts)
        got = value_after(
            list(shared), [[texts[i][len(head) :] for i in rows] for head, rows in shared.items()]
        )
        for rows, row_values in zip(shared.values(), got, strict=True):
            for i, v in zip(rows, row_values, strict=True):
                values[i] = v
        alone = [i for head, rows in groups.items() if head not in shared for i in rows]
        if alone:
            for i, v in zip(alone, self.policy.value([texts[i] for i in alone]), strict=True):
                values[i] = v
        return values
