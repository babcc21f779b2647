"""The running account of one search: its budget, its cost and its clock.

Every algorithm asks :meth:`Meter.exhausted` before each expansion and :meth:`Meter.clip` before
a batch of expansions, so no search ever spends more than ``budget.max_expansions``.
``cost.seconds`` is wall-clock time since the search began (``time.perf_counter``).
Model calls and tokens are charged from the policy's and the scorer's ``usage`` accounts by
:func:`charge_usage` (see :mod:`qstar.search.expand`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from qstar.policy.base import Usage
from qstar.types import Budget, Cost

__all__ = ["Meter", "charge_usage"]


@dataclass
class Meter:
    budget: Budget
    cost: Cost = field(default_factory=Cost)
    start: float = field(default_factory=time.perf_counter)

    def tick(self) -> Cost:
        """Bring ``cost.seconds`` up to date and return the cost."""
        self.cost.seconds = time.perf_counter() - self.start
        return self.cost

    def exhausted(self) -> bool:
        return self.budget.exhausted(self.tick())

    def clip(self, n: int) -> int:
        """How many of ``n`` wanted expansions the budget still allows (0 when exhausted)."""
        if self.exhausted():
            return 0
        left = self.budget.expansions_left(self.cost)
        return n if left is None else min(n, left)


def charge_usage(cost: Cost, before: Usage, after: Usage) -> None:
    """Add what a model did between two snapshots of its usage to ``cost``."""
    cost.model_calls += after.model_calls - before.model_calls
    cost.tokens_generated += after.tokens_generated - before.tokens_generated
    cost.tokens_scored += after.tokens_scored - before.tokens_scored
