"""A learned process reward model (PRM): one score per step, aggregated over a path.

The model is a tiny GPT checkpoint trained by ``qstar train prm``: the score of step ``t`` is
its value head at the last token of ``task.render(s_t)``, the state after the step (trunk and
head of the same network, as AlphaZero's two-headed net). Any policy with a ``value`` method
can stand in. All prefixes of all paths of a call are valued in ONE batched ``value`` call.

A path's score aggregates its step scores ``p_1..p_T`` (``aggregate``):

- ``"min"``: ``min_t p_t``, a path is as good as its worst step. Math-Shepherd (Wang et al.
  2024, arXiv 2312.08935, Section 3.4) ranks best-of-N candidates by the minimum step score.
- ``"product"``: ``prod_t p_t``, the probability that every step is correct. "Let's Verify
  Step by Step" (Lightman et al. 2023, arXiv 2305.20050, Section 2.6) scores solutions this way.
- ``"last"``: ``p_T``, the score of the final state. Snell et al. 2024 ("Scaling LLM Test-Time
  Compute Optimally...", arXiv 2408.03314, Section 5) found last-step aggregation best for
  PRMs trained on Monte-Carlo labels, whose step score already predicts the final outcome;
  it is also how an outcome reward model (ORM, Cobbe et al. 2021) scores a finished solution.
- ``"mean"``: ``sum_t p_t / T``, the length-normalised sum (the Q* paper's ``Agg`` lists the
  sum among its choices; Wang et al. 2024, arXiv 2406.14283, Section 4.1).

The root (no steps) is valued as itself. :func:`step_metrics` measures a PRM on held-out
labels: accuracy, AUC, reliability bins (calibration) and agreement with MC labels.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from qstar.errors import ConfigError
from qstar.policy.base import Policy, Usage
from qstar.rewards.rollout import account
from qstar.search.checks import check_choice
from qstar.tasks.base import Task
from qstar.types import Cost, State

__all__ = [
    "PRM_AGGREGATES",
    "aggregate_scores",
    "PRMScorer",
    "load_value_model",
    "step_metrics",
    "auc",
    "reliability_bins",
    "make_extra_scorer",
]

PRM_AGGREGATES = ("min", "product", "last", "mean")


def aggregate_scores(scores: Sequence[float], how: str) -> float:
    """Aggregate step scores into a path score (module docstring)."""
    check_choice("prm", "aggregate", how, PRM_AGGREGATES)
    if not scores:
        raise ConfigError("prm: cannot aggregate an empty list of step scores")
    if how == "min":
        return float(min(scores))
    if how == "product":
        return float(math.prod(scores))
    if how == "last":
        return float(scores[-1])
    return float(sum(scores) / len(scores))


def load_value_model(path: str | os.PathLike[str]) -> Policy:
    """A PRM/Q checkpoint (a tiny GPT checkpoint directory) as a policy with a value head."""
    from qstar.policy.tinygpt.policy import TinyGPTPolicy

    return TinyGPTPolicy.load(path)


class PRMScorer:
    """Path scores from a learned step scorer (module docstring)."""

    def __init__(
        self, task: Task, model: Policy, *, aggregate: str = "min", name: str = "", cost: Cost | None = None
    ) -> None:
        check_choice("prm", "aggregate", aggregate, PRM_AGGREGATES)
        self.task = task
        self.model = model
        self.aggregate = aggregate
        self.cost = Cost() if cost is None else cost
        self.name = name or f"prm:{getattr(model, 'name', 'model')}:{aggregate}"
        self.usage = Usage()

    @classmethod
    def load(cls, task: Task, path: str | os.PathLike[str], *, aggregate: str = "min") -> PRMScorer:
        return cls(task, load_value_model(path), aggregate=aggregate, name=f"prm:{path}:{aggregate}")

    def _render_path(self, state: State) -> list[str]:
        """The rendered state after each step, rebuilt by replaying the steps from the root."""
        s, out = self.task.initial_state(state.problem), []
        for step in state.steps:
            s = self.task.apply(s, step)
            out.append(self.task.render(s))
        return out or [self.task.render(state)]

    def step_scores(self, states: Sequence[State]) -> list[list[float]]:
        """Score of every step of the path to each state (the root alone: its own value)."""
        texts = [self._render_path(s) for s in states]
        unique = list(dict.fromkeys(t for row in texts for t in row))
        if not unique:
            return []
        before = self.model.usage.snapshot()
        values = dict(zip(unique, (float(v) for v in self.model.value(unique)), strict=True))
        account(self.usage, self.cost, before, self.model.usage)
        return [[values[t] for t in row] for row in texts]

    def value(self, states: Sequence[State]) -> list[float]:
        return [aggregate_scores(row, self.aggregate) for row in self.step_scores(states)]

    __call__ = value


# -- metrics ----------------------------------------------------------------------------------
def auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve (Mann-Whitney U, ties count half); None with one class only."""
    pos = sum(1 for y in labels if y)
    neg = len(labels) - pos
    if not pos or not neg:
        return None
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1  # average rank of a tie group
        i = j + 1
    rank_sum = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def reliability_bins(
    scores: Sequence[float], targets: Sequence[float], num_bins: int = 10
) -> tuple[list[dict[str, Any]], float]:
    """Equal-width reliability bins over [0, 1] and the expected calibration error (ECE,
    Guo et al. 2017): ``sum_b n_b / N * |mean score_b - mean target_b|``."""
    bins: list[list[int]] = [[] for _ in range(num_bins)]
    for i, s in enumerate(scores):
        bins[min(num_bins - 1, max(0, int(s * num_bins)))].append(i)
    out, ece = [], 0.0
    for b, idx in enumerate(bins):
        if not idx:
            continue
        mean_score = sum(scores[i] for i in idx) / len(idx)
        mean_target = sum(targets[i] for i in idx) / len(idx)
        ece += len(idx) / len(scores) * abs(mean_score - mean_target)
        out.append(
            {
                "low": b / num_bins,
                "high": (b + 1) / num_bins,
                "count": len(idx),
                "mean_score": round(mean_score, 4),
                "mean_target": round(mean_target, 4),
            }
        )
    return out, ece


def step_metrics(
    scores: Sequence[float],
    labels: Sequence[bool],
    *,
    values: Sequence[float] | None = None,
    mc_labels: Sequence[bool] | None = None,
    num_bins: int = 10,
) -> dict[str, Any]:
    """Held-out step metrics of a scorer: ``accuracy`` (score >= 0.5 vs label), ``auc``,
    reliability ``bins`` and ``ece`` against the soft ``values`` when given (else the labels),
    ``mae_values``, and ``mc_agreement`` with Math-Shepherd hard labels ``mc_labels``."""
    if not scores:
        return {"num_steps": 0}
    preds = [s >= 0.5 for s in scores]
    targets = list(values) if values else [float(y) for y in labels]
    bins, ece = reliability_bins(scores, targets, num_bins)
    out: dict[str, Any] = {
        "num_steps": len(scores),
        "positive_rate": sum(labels) / len(labels),
        "accuracy": sum(p == y for p, y in zip(preds, labels, strict=True)) / len(labels),
        "auc": auc(scores, labels),
        "ece": ece,
        "bins": bins,
    }
    if values:
        out["mae_values"] = sum(abs(s - v) for s, v in zip(scores, values, strict=True)) / len(values)
    if mc_labels is not None:
        out["mc_agreement"] = sum(p == y for p, y in zip(preds, mc_labels, strict=True)) / len(preds)
        out["mc_auc"] = auc(scores, mc_labels)
    return out


# -- scorer names ---------------------------------------------------------------------------
EXTRA_SCORER_HELP = (
    "rollout[:N] (Monte-Carlo value, N rollouts), judge (ToT value prompt / value head), "
    "prm:PATH[:min|product|last|mean] (learned PRM), probe:DIR[:aggregate] (probe PRM on a frozen "
    "base), q:PATH (learned Q-function)"
)


def _path_and_aggregate(rest: str, default: str) -> tuple[str, str]:
    """``PATH[:aggregate]`` of a ``prm:``/``probe:`` scorer name (paths may hold colons)."""
    path, _, how = rest.rpartition(":")
    return (path, how) if how in PRM_AGGREGATES else (rest, default)


def make_extra_scorer(name: str, task: Task, policy: Policy | None) -> Any | None:
    """The scorer a ``--scorer`` string of this module names, or None for the other names."""
    kind, _, rest = name.partition(":")
    if kind in ("rollout", "judge") and policy is None:
        raise ConfigError(f"the {kind!r} scorer needs a model (got --model none)")
    if kind == "rollout":
        from qstar.rewards.rollout import RolloutScorer

        if rest and not rest.isdigit():
            raise ConfigError(f"scorer {name!r}: write rollout:N with N a number of rollouts")
        return RolloutScorer(task, policy, num_rollouts=int(rest or 16))  # type: ignore[arg-type]
    if kind == "judge" and not rest:
        from qstar.rewards.judge import JudgeScorer

        return JudgeScorer(task, policy)  # type: ignore[arg-type]
    if kind == "prm" and rest:
        path, how = _path_and_aggregate(rest, "min")
        return PRMScorer.load(task, path, aggregate=how)
    if kind == "probe" and rest:
        from qstar.rewards.probe import ProbePRMScorer

        path, how = _path_and_aggregate(rest, "product")
        return ProbePRMScorer.load(task, path, aggregate=how)
    if kind == "q" and rest:
        from qstar.rewards.qvalue import QValueScorer

        return QValueScorer.load(task, rest)
    return None
