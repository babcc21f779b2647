"""Probe PRM: a logistic read-out of what a frozen model sees in each step.

A process reward model scores every step of a path ("Let's Verify Step by Step", Lightman et
al. 2023, arXiv 2305.20050). Fine-tuning a small model end to end on pooled step labels can
teach it which *problems* are hard instead of which *step* went wrong. On ``arith`` every such
value head ranks the samples of one problem at chance (``benchmarks/rewards.py``). A linear
probe (Alain & Bengio 2016, arXiv 1610.01644) keeps the base model frozen and fits only a
logistic regression on features of each step ``t`` of a path:

- the base's summed log-probability of the step line given the path so far, its mean per
  token and its length in tokens (how surprised the base is by the step);
- the base's final hidden state at the last token of the state after the step
  (``policy.features``, e.g. :meth:`qstar.policy.tinygpt.policy.TinyGPTPolicy.features`).

Fitted on Math-Shepherd MC labels (Wang et al. 2024, arXiv 2312.08935) it is a PRM; fitted on
outcome labels it is an ORM (Cobbe et al. 2021). :class:`ProbePRMScorer` puts a fitted probe
behind the :class:`~qstar.rewards.base.Scorer` protocol, with the path aggregation of
:func:`~qstar.rewards.prm.aggregate_scores` (``product`` by default, as Lightman et al.).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qstar.errors import ConfigError
from qstar.policy.base import Policy, Usage
from qstar.rewards.base import NEUTRAL_VALUE
from qstar.rewards.prm import PRM_AGGREGATES, aggregate_scores
from qstar.rewards.rollout import account
from qstar.search.checks import check_choice
from qstar.tasks.base import Task
from qstar.types import Cost, Problem, State

__all__ = ["LinearProbe", "fit_probe", "step_features", "ProbePRMScorer", "NUM_LOGPROB_FEATURES"]

#: Features before the hidden state: summed log-probability, mean per token, length in tokens.
NUM_LOGPROB_FEATURES = 3


@dataclass(frozen=True)
class LinearProbe:
    """``sigmoid(((x - mean) / std) @ weight + bias)`` for (N, F) feature rows."""

    mean: np.ndarray
    std: np.ndarray
    weight: np.ndarray
    bias: float

    def __post_init__(self) -> None:
        shapes = {self.mean.shape, self.std.shape, self.weight.shape}
        if len(shapes) != 1 or self.weight.ndim != 1:
            raise ConfigError(f"LinearProbe: mean, std and weight must be equal 1-d shapes, got {shapes}")

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.size == 0:
            return np.zeros(0)
        if x.ndim != 2 or x.shape[1] != self.weight.shape[0]:
            raise ConfigError(f"LinearProbe expects (N, {self.weight.shape[0]}) features, got {x.shape}")
        z = ((x - self.mean) / self.std) @ self.weight + self.bias
        return 1.0 / (1.0 + np.exp(-z))

    def save(self, path: str | os.PathLike[str], meta: dict[str, Any] | None = None) -> None:
        """``probe.safetensors`` + ``probe.json`` (meta) in directory ``path``, each written to
        a temporary file and renamed into place."""
        from safetensors.numpy import save_file

        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        arrays = {
            "mean": self.mean.astype(np.float64),
            "std": self.std.astype(np.float64),
            "weight": self.weight.astype(np.float64),
            "bias": np.array([self.bias], dtype=np.float64),
        }
        save_file(arrays, str(out / "probe.safetensors.tmp"))
        os.replace(out / "probe.safetensors.tmp", out / "probe.safetensors")
        (out / "probe.json.tmp").write_text(json.dumps({"format": "qstar-probe", **(meta or {})}, indent=1))
        os.replace(out / "probe.json.tmp", out / "probe.json")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> tuple[LinearProbe, dict[str, Any]]:
        """The probe and its meta, from a directory written by :meth:`save`."""
        from safetensors.numpy import load_file

        d = Path(path)
        try:
            arrays = load_file(str(d / "probe.safetensors"))
            meta = json.loads((d / "probe.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ConfigError(f"cannot read a probe from {str(d)!r}: {err}") from err
        probe = cls(arrays["mean"], arrays["std"], arrays["weight"], float(arrays["bias"][0]))
        return probe, meta


def fit_probe(
    x: np.ndarray, y: np.ndarray, *, l2: float = 1e-3, steps: int = 300, seed: int = 0
) -> LinearProbe:
    """Logistic regression of targets ``y`` in [0, 1] on standardised features ``x`` (N, F):
    full-batch L-BFGS with an L2 penalty ``l2`` on the weights."""
    import torch

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0 or y.shape != (len(x),):
        raise ConfigError(f"fit_probe needs (N, F) features and N targets, got {x.shape} and {y.shape}")
    if not np.all((y >= 0) & (y <= 1)):
        raise ConfigError("fit_probe targets must lie in [0, 1]")
    mean, std = x.mean(0), x.std(0) + 1e-6
    xt = torch.tensor((x - mean) / std, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    w = (0.01 * torch.randn(x.shape[1], generator=gen)).requires_grad_()
    b = torch.zeros((), requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return LinearProbe(mean, std, w.detach().double().numpy(), float(b.detach()))


def step_features(
    task: Task, base: Policy, paths: Sequence[tuple[Problem, Sequence[str]]]
) -> list[np.ndarray]:
    """For each ``(problem, step texts)`` path, a (steps, features) array (module docstring):
    one batched ``score`` call for every step's log-probability, one ``features`` call."""
    prompts, lines, after, owner = [], [], [], []
    for k, (problem, steps) in enumerate(paths):
        state = task.initial_state(problem)
        for text in steps:
            prompts.append(task.render(state))
            lines.append([text + "\n"])
            state = task.apply(state, task.parse_step(state, text))
            after.append(task.render(state))
            owner.append(k)
    if not prompts:
        return [np.zeros((0, NUM_LOGPROB_FEATURES)) for _ in paths]
    logp = np.array([row[0] for row in base.score(prompts, lines)])
    encode = base.tokenizer.encode  # type: ignore[attr-defined]
    length = np.array([len(encode(line[0])) for line in lines], dtype=float)
    hidden = np.array(base.features(after), dtype=np.float64)  # type: ignore[attr-defined]
    feats = np.concatenate([np.stack([logp, logp / np.maximum(length, 1), length], axis=1), hidden], axis=1)
    out: list[list[np.ndarray]] = [[] for _ in paths]
    for k, row in zip(owner, feats, strict=True):
        out[k].append(row)
    return [np.array(rows) if rows else np.zeros((0, feats.shape[1])) for rows in out]


class ProbePRMScorer:
    """Path scores from a :class:`LinearProbe` over a frozen ``base`` (module docstring). The
    root, which has no step to judge, gets :data:`~qstar.rewards.base.NEUTRAL_VALUE`."""

    def __init__(
        self,
        task: Task,
        base: Policy,
        probe: LinearProbe,
        *,
        aggregate: str = "product",
        name: str = "",
        cost: Cost | None = None,
    ) -> None:
        check_choice("probe", "aggregate", aggregate, PRM_AGGREGATES)
        self.task, self.base, self.probe, self.aggregate = task, base, probe, aggregate
        self.cost = Cost() if cost is None else cost
        self.name = name or f"probe:{getattr(base, 'name', 'model')}:{aggregate}"
        self.usage = Usage()

    @classmethod
    def load(cls, task: Task, path: str | os.PathLike[str], *, aggregate: str = "product") -> ProbePRMScorer:
        """A probe saved with ``meta={"base": CHECKPOINT_DIR}`` on the tiny GPT it reads."""
        from qstar.policy.tinygpt.policy import TinyGPTPolicy

        probe, meta = LinearProbe.load(path)
        if not isinstance(meta.get("base"), str):
            raise ConfigError(f"probe {str(path)!r} names no base checkpoint ('base' in probe.json)")
        base = TinyGPTPolicy.load(meta["base"])
        return cls(task, base, probe, aggregate=aggregate, name=f"probe:{path}:{aggregate}")

    def step_scores(self, states: Sequence[State]) -> list[list[float]]:
        """Score of every step of the path to each state, in one batched pass."""
        paths = [(s.problem, [step.text for step in s.steps]) for s in states]
        before = self.base.usage.snapshot()
        feats = step_features(self.task, self.base, paths)
        account(self.usage, self.cost, before, self.base.usage)
        return [self.probe.predict(f).tolist() if len(f) else [NEUTRAL_VALUE] for f in feats]

    def value(self, states: Sequence[State]) -> list[float]:
        return [aggregate_scores(row, self.aggregate) for row in self.step_scores(states)]

    __call__ = value
