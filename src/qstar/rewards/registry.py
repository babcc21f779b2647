"""``--scorer`` names -> scorers, resolved once at the boundary.

- ``auto``: the policy's value head when it has one, else the verifier (tasks with a test-time
  verifier), else the model as a judge (ToT's value prompt), else nothing (``--model none``).
- ``value``: the policy's value head (:class:`~qstar.rewards.value_head.ValueHeadScorer`).
- ``verifier``: the task's exact verifier on terminal states, neutral elsewhere.
- ``none``: no scorer.
"""

from __future__ import annotations

from qstar.errors import ConfigError
from qstar.policy.base import Policy
from qstar.rewards.base import Scorer
from qstar.rewards.prm import make_extra_scorer
from qstar.rewards.value_head import ValueHeadScorer
from qstar.rewards.verifier import VerifierScorer
from qstar.tasks.base import Task

__all__ = ["SCORER_NAMES", "make_scorer"]

SCORER_NAMES = ("auto", "value", "verifier", "none")


def _has_value_head(policy: Policy | None) -> bool:
    return policy is not None and getattr(policy, "has_value_head", True) and hasattr(policy, "value")


def make_scorer(name: str, task: Task, policy: Policy | None) -> Scorer | None:
    """The scorer ``name`` stands for (see module docstring)."""
    if (extra := make_extra_scorer(name, task, policy)) is not None:  # rollout, judge, prm:PATH, q:PATH
        return extra
    if name not in SCORER_NAMES:
        raise ConfigError(
            f"unknown scorer {name!r}; choose from {', '.join(SCORER_NAMES)}, judge, rollout[:N], "
            "prm:PATH[:min|product|last|mean], q:PATH"
        )
    if name == "none":
        return None
    if name == "value" or (name == "auto" and _has_value_head(policy)):
        if policy is None:
            raise ConfigError("the 'value' scorer needs a model (got --model none)")
        return ValueHeadScorer(task, policy)
    if name == "verifier" or task.has_test_time_verifier:
        return VerifierScorer(task)
    if policy is not None:  # auto, no value head, no verifier (GSM8K on a chat model): ToT's judge
        return make_extra_scorer("judge", task, policy)
    return None
