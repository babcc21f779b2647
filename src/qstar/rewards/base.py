"""The ``Scorer`` protocol: a value for each state, batched.

A scorer is the search's judge of *how promising* a state is: the exact verifier
(:mod:`qstar.rewards.verifier`), a value head on the policy (:mod:`qstar.rewards.value_head`),
a process reward model, a learned Q-function, an LLM judge or Monte-Carlo rollouts. Values lie
in [0, 1]: 1 = certainly leads to a right answer, 0 = certainly does not.

Cost: like a policy, a scorer keeps a running :class:`~qstar.policy.base.Usage` account in
``usage`` (all zeros for scorers that call no model). Searches read it before and after each
``value`` call and charge the difference to their :class:`~qstar.types.Cost`, so a scorer's
model calls and tokens are paid for by the search that caused them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from qstar.policy.base import Usage
from qstar.types import State

__all__ = ["Scorer", "NEUTRAL_VALUE"]

#: The value of a state nothing is known about: halfway between a sure failure and a sure success.
NEUTRAL_VALUE = 0.5


@runtime_checkable
class Scorer(Protocol):
    """Values of states in [0, 1] (see module docstring)."""

    name: str
    usage: Usage

    def value(self, states: Sequence[State]) -> list[float]:
        """One value per state, in the order given; one batched call."""
        ...
