"""Reward models that keep the generator's own signal: probes on frozen generator features.

Part of :mod:`benchmarks.rewards` (``--probe``). The diagnosis run found that every reward model
fine-tuned from the policy ranks the samples of one problem at chance, while the policy's own
log-probability ranks them well. Here the generator stays frozen and a logistic-regression
*probe* reads, for each step ``t`` of a path:

- the generator's summed log-probability of the step line given the path so far, its mean per
  token and its length in tokens (how surprised the generator was by what it wrote);
- the generator's final hidden state at the last token of the state after the step.

The probe is trained like the value-head reward models: a PRM on Math-Shepherd MC labels of
every step, an ORM on every step labelled with its path's outcome (Cobbe et al. 2021). Both
see the same features and the same steps; only the labels differ, so the comparison is the
one Lightman et al. 2023 ("Let's Verify Step by Step") make. A path's score is the min over its
steps or their product (PRM), the last step's (ORM), and also the min for the ORM
(``orm_min``).

``policy`` below is the frozen model the probes read: the generator itself, or the separate
reward base of ``--rm-model`` (the MC labels always come from the generator's rollouts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from qstar.training.sft import make_value_batch

__all__ = ["step_features", "fit_probe", "probe_scores"]


def _hidden_last(policy, texts: Sequence[str], batch: int = 256) -> np.ndarray:
    """The frozen generator's final hidden state at each text's last token, (N, C): the
    position the value head reads, batched as the value trainer batches (right padding)."""
    tok, model, out = policy.tokenizer, policy.model, []
    with torch.no_grad():
        for i in range(0, len(texts), batch):
            rows = [([tok.bos_id, *tok.encode(t)], 0.0) for t in texts[i : i + batch]]
            b = make_value_batch(rows, pad_id=tok.pad_id)
            hidden = model.hidden_states(b.input_ids)  # (B, T, C)
            out.append(hidden[torch.arange(len(rows)), b.last_index].float().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.config.n_embd), dtype=np.float32)


def step_features(task, policy, paths: Sequence[tuple[Any, Sequence[str]]]) -> list[np.ndarray]:
    """For each ``(problem, step texts)`` path, a (steps, features) array (module docstring):
    one batched ``score`` call for every step's log-probability, one pass for hidden states."""
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
        return [np.zeros((0, 3 + policy.model.config.n_embd)) for _ in paths]
    logp = np.array([row[0] for row in policy.score(prompts, lines)])
    length = np.array([len(policy.tokenizer.encode(line[0])) for line in lines], dtype=float)
    feats = np.concatenate(
        [np.stack([logp, logp / np.maximum(length, 1), length], axis=1), _hidden_last(policy, after)], axis=1
    )
    out: list[list[np.ndarray]] = [[] for _ in paths]
    for k, row in zip(owner, feats, strict=True):
        out[k].append(row)
    return [np.array(rows) if rows else np.zeros((0, feats.shape[1])) for rows in out]


def fit_probe(x: np.ndarray, y: np.ndarray, *, l2: float = 1e-3, steps: int = 300, seed: int = 0):
    """Logistic regression on standardised features (full-batch L-BFGS, L2 ``l2``); returns a
    function from a (N, F) array to probabilities."""
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
    w_, b_ = w.detach(), b.detach()

    def predict(z: np.ndarray) -> np.ndarray:
        if len(z) == 0:
            return np.zeros(0)
        zt = torch.tensor((z - mean) / std, dtype=torch.float32)
        return torch.sigmoid(zt @ w_ + b_).numpy()

    return predict


def probe_scores(task, policy, data, test, label_rollouts: int, seed: int) -> dict[str, list[list[float]]]:
    """Path scores of every test sample from the probe PRM (hard MC labels; min and product,
    Lightman et al.'s aggregation) and the probe ORM (outcome labels; last and min). ``data`` are the labelled train paths of
    :func:`benchmarks.rewards_arith.labelled_paths`; ``test`` the sampled test completions."""
    train = step_features(task, policy, [(d["problem"], d["steps"]) for d in data])
    x = np.concatenate([f for f in train if len(f)])
    prm_y = np.array([any(o[:label_rollouts]) for d in data for o in d["mc"]], dtype=float)
    orm_y = np.array([float(d["outcome"]) for d in data for _ in d["steps"]])
    prm, orm = fit_probe(x, prm_y, seed=seed), fit_probe(x, orm_y, seed=seed)
    flat = [(i, j, c) for i, comps in enumerate(test) for j, c in enumerate(comps)]
    feats = step_features(task, policy, [(c.state.problem, [s.text for s in c.steps]) for _, _, c in flat])
    names = ("probe_prm_min", "probe_prm_product", "probe_orm", "probe_orm_min")
    out = {name: [[-1.0] * len(comps) for comps in test] for name in names}
    for (i, j, _), f in zip(flat, feats, strict=True):
        if len(f):
            p, o = prm(f), orm(f)
            out["probe_prm_min"][i][j] = float(p.min())
            out["probe_prm_product"][i][j] = float(np.prod(p))
            out["probe_orm"][i][j] = float(o[-1])
            out["probe_orm_min"][i][j] = float(o.min())
    return out
