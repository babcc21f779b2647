"""The exact verifier as a scorer: the outcome reward (ORM ground truth) of finished states.

A terminal state gets the task's outcome (1.0 right, 0.0 wrong). A state that is not terminal
gets :data:`~qstar.rewards.base.NEUTRAL_VALUE` (0.5): the verifier judges answers, not partial
reasoning, so it knows nothing about a state until the reasoning ends. Searches guided by this
scorer alone are therefore uninformed until they reach terminal states (e.g. ToT BFS keeps the
first ``b`` children in creation order).

Only tasks whose answers can be checked at test time (``task.has_test_time_verifier``, e.g.
Game of 24) may be scored this way; for the others (word problems whose answer key is
ground truth held out for metrics) the constructor raises :class:`~qstar.errors.ConfigError`.
Calling the verifier costs nothing: its ``usage`` stays at zero.
"""

from __future__ import annotations

from collections.abc import Sequence

from qstar.errors import ConfigError
from qstar.policy.base import Usage
from qstar.rewards.base import NEUTRAL_VALUE
from qstar.tasks.base import Task
from qstar.types import State

__all__ = ["VerifierScorer"]


class VerifierScorer:
    """Outcome of terminal states, ``neutral`` for the others (see module docstring)."""

    def __init__(self, task: Task, *, neutral: float = NEUTRAL_VALUE) -> None:
        if not getattr(task, "has_test_time_verifier", False):
            raise ConfigError(
                f"task {task.name!r} has no test-time verifier (its answers can only be checked "
                "against held-out ground truth), so it cannot be scored by the verifier; use a "
                "learned scorer instead (e.g. ValueHeadScorer)"
            )
        if not 0.0 <= neutral <= 1.0:
            raise ConfigError(f"VerifierScorer: neutral must be in [0, 1], got {neutral!r}")
        self.task = task
        self.neutral = float(neutral)
        self.name = "verifier"
        self.usage = Usage()

    def value(self, states: Sequence[State]) -> list[float]:
        out = []
        for state in states:
            outcome = self.task.outcome(state) if self.task.is_terminal(state) else None
            out.append(self.neutral if outcome is None else float(outcome))
        return out
