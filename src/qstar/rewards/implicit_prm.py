"""An implicit process reward model: step values read off the log-likelihood ratio of two LMs.

Yuan et al. 2024, "Free Process Rewards without Process Labels" (arXiv 2412.01981), Section 3:
parameterise the reward as ``r(y) = beta * log(pi_theta(y) / pi_ref(y))``. Then the value of the
path after step ``t`` is the partial sum over its first ``t`` steps,

    q_t = beta * sum_{i <= t} [log pi_theta(step_i | s_{i-1}) - log pi_ref(step_i | s_{i-1})],

and the step score is ``sigmoid(q_t)``, in [0, 1] like every :class:`~qstar.rewards.base.Scorer`
value. ``pi_ref`` is the policy the reward model started from and ``pi_theta`` is that policy
fine-tuned so that ``sigmoid(q_t)`` predicts the labels
(:func:`qstar.training.implicit_prm_train.train_implicit_prm`): Math-Shepherd MC labels at every
step (a PRM) or only the outcome at the last step (Yuan et al.'s implicit ORM, whose partial sums
are process rewards "for free").

Why it exists next to :class:`~qstar.rewards.prm.PRMScorer` (a value head): the score is made of
the token log-probabilities of the step itself rather than a read-out at the last token, and
it needs only outcome labels. Because it is a *ratio* to the reference, the reference's own
surprise at a wrong step cancels out: only what fine-tuning changed counts. On ``arith`` with
~5 k labelled steps it ranks the samples of one problem no better than the value-head PRM
(within-problem AUC about 0.5; ``benchmarks/rewards.py --implicit``).

Any pair of policies with ``score`` works (the tiny GPT, a Hugging Face model, ...); all steps
of all paths of a call go in ONE batched ``score`` call per model. Path aggregation is the
PRM's (:func:`qstar.rewards.prm.aggregate_scores`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from qstar.errors import ConfigError
from qstar.policy.base import Policy, Usage
from qstar.rewards.prm import PRM_AGGREGATES, aggregate_scores
from qstar.rewards.rollout import account
from qstar.search.checks import check_choice, check_float
from qstar.tasks.base import Task
from qstar.types import Cost, State

__all__ = ["ImplicitPRMScorer", "step_texts", "implicit_values"]


def step_texts(task: Task, state: State) -> list[tuple[str, str]]:
    """``(rendered state before the step, text the step appends)`` for each step to ``state``.

    Raises :class:`~qstar.errors.ConfigError` for a task whose rendering of a state does not
    extend the rendering of its parent (the likelihood of a step is then undefined)."""
    s, out = task.initial_state(state.problem), []
    before = task.render(s)
    for step in state.steps:
        s = task.apply(s, step)
        after = task.render(s)
        if not after.startswith(before):
            raise ConfigError(
                f"implicit PRM: task {task.name!r} renders a state that does not extend its parent's "
                f"text ({before[-40:]!r} -> {after[-40:]!r}); use the value-head PRM instead"
            )
        out.append((before, after[len(before) :]))
        before = after
    return out


def implicit_values(logp: Sequence[float], ref_logp: Sequence[float], beta: float) -> list[float]:
    """``sigmoid(q_t)`` for t = 1..T from the per-step log-probabilities of the two models."""
    out, q = [], 0.0
    for a, b in zip(logp, ref_logp, strict=True):
        q += beta * (a - b)
        out.append(1.0 / (1.0 + math.exp(-q)) if q > -700 else 0.0)
    return out


class ImplicitPRMScorer:
    """Step scores ``sigmoid(q_t)`` of an implicit PRM (module docstring)."""

    def __init__(
        self,
        task: Task,
        model: Policy,
        reference: Policy,
        *,
        beta: float,
        aggregate: str = "min",
        name: str = "",
        cost: Cost | None = None,
    ) -> None:
        check_choice("implicit_prm", "aggregate", aggregate, PRM_AGGREGATES)
        check_float("implicit_prm", "beta", beta, low=0.0, low_open=True)
        self.task = task
        self.model = model
        self.reference = reference
        self.beta = float(beta)
        self.aggregate = aggregate
        self.cost = Cost() if cost is None else cost
        self.name = name or f"implicit-prm:{getattr(model, 'name', 'model')}:{aggregate}"
        self.usage = Usage()

    def _logprobs(self, policy: Policy, pairs: list[tuple[str, str]]) -> list[float]:
        before = policy.usage.snapshot()
        rows = policy.score([p for p, _ in pairs], [[c] for _, c in pairs])
        account(self.usage, self.cost, before, policy.usage)
        return [row[0] for row in rows]

    def step_scores(self, states: Sequence[State]) -> list[list[float]]:
        """Score of every step of the path to each state; a root (no steps) scores 0.5."""
        paths = [step_texts(self.task, s) for s in states]
        unique = list(dict.fromkeys(pair for path in paths for pair in path))
        if not unique:
            return [[0.5] for _ in states]
        logp = dict(zip(unique, self._logprobs(self.model, unique), strict=True))
        ref = dict(zip(unique, self._logprobs(self.reference, unique), strict=True))
        return [
            implicit_values([logp[p] for p in path], [ref[p] for p in path], self.beta) if path else [0.5]
            for path in paths
        ]

    def value(self, states: Sequence[State]) -> list[float]:
        return [aggregate_scores(row, self.aggregate) for row in self.step_scores(states)]

    __call__ = value
