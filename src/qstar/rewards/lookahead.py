"""One-step lookahead over another scorer: a state's value is backed up from its children.

    V(s) = discount * max over the legal children c of s of
           ( the verifier's outcome of c if c is final, else base(c) )

This is the full-width one-step backup of Q*'s deliberation (Wang et al. 2024, "Q*: Improving
Multi-step Reasoning for LLMs with Deliberative Planning") and of TD-Gammon, the target of the
training loop's ``lookahead`` values and of a value sweep (:mod:`qstar.training.value_sweep`),
computed when a state is asked for instead of fitted into a network. It uses the task's rules
(to list the children), its verifier (on final children) and the base scorer, no oracle. A
state with no legal step is a dead end (0); a final state keeps its own outcome (the base's
value where the task has no test-time verifier); where the task cannot list its steps, the
base's value is used.

Values are remembered by rendering, so a search that asks for the same state again (the
teacher's several runs on one problem) pays once; ``base_values`` keeps, by rendering, the base
values it read (the children's, in the order asked). Cost: the base scorer's usage during each
call is added to this scorer's ``usage`` (see :mod:`qstar.rewards.base`).
"""

from __future__ import annotations

from collections.abc import Sequence

from qstar.errors import ConfigError
from qstar.policy.base import Usage
from qstar.rewards.base import Scorer
from qstar.tasks.base import Task
from qstar.types import State

__all__ = ["LookaheadScorer"]


class LookaheadScorer:
    """``discount`` times the best child's value under ``base`` (module docstring)."""

    def __init__(self, task: Task, base: Scorer, *, discount: float = 0.9) -> None:
        if not 0 < discount <= 1:
            raise ConfigError(f"lookahead: discount must be in (0, 1], got {discount!r}")
        self.task = task
        self.base = base
        self.discount = discount
        self.name = f"lookahead:{base.name}"
        self.usage = Usage()
        self._known: dict[str, float] = {}
        self.base_values: dict[str, float] = {}

    def value(self, states: Sequence[State]) -> list[float]:
        task = self.task
        keys = [task.render(s) for s in states]
        # What each new state needs: its own outcome, or the base values of some states
        # (its non-final children, or itself) and the outcomes of its final children.
        plans: dict[str, tuple[list[State], list[float], bool]] = {}
        for key, state in zip(keys, states, strict=True):
            if key in self._known or key in plans:
                continue
            if task.is_terminal(state):
                outcome = task.outcome(state)
                plans[key] = ([], [float(outcome)], False) if outcome is not None else ([state], [], False)
                continue
            steps = task.legal_steps(state)
            if steps is None:
                plans[key] = ([state], [], False)
                continue
            rest, final = [], []
            for child in (task.apply(state, step) for step in steps):
                outcome = task.outcome(child) if task.is_terminal(child) else None
                if outcome is None:
                    rest.append(child)
                else:
                    final.append(float(outcome))
            plans[key] = (rest, final, True)
        asked = [s for rest, _, _ in plans.values() for s in rest]
        read = self._base_values(asked)
        self.base_values.update(zip((task.render(s) for s in asked), read, strict=True))
        got = iter(read)
        for key, (rest, final, backed_up) in plans.items():
            values = final + [next(got) for _ in rest]
            if backed_up:
                self._known[key] = self.discount * max(values) if values else 0.0
            else:
                self._known[key] = values[0]
        return [self._known[key] for key in keys]

    def _base_values(self, states: list[State]) -> list[float]:
        if not states:
            return []
        before = self.base.usage.snapshot()
        values = [float(v) for v in self.base.value(states)]
        self.usage.add_since(before, self.base.usage)
        return values
