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
(``orm_min``). The probe itself is :mod:`qstar.rewards.probe`.

``policy`` below is the frozen model the probes read: the generator itself, or the separate
reward base of ``--rm-model`` (the MC labels always come from the generator's rollouts).
"""

from __future__ import annotations

import numpy as np

from qstar.rewards.probe import fit_probe, step_features

__all__ = ["probe_scores"]


def probe_scores(task, policy, data, test, label_rollouts: int, seed: int) -> dict[str, list[list[float]]]:
    """Path scores of every test sample from the probe PRM (hard MC labels; min and product,
    Lightman et al.'s aggregation) and the probe ORM (outcome labels; last and min). ``data`` are the labelled train paths of
    :func:`benchmarks.rewards_arith.labelled_paths`; ``test`` the sampled test completions."""
    train = step_features(task, policy, [(d["problem"], d["steps"]) for d in data])
    x = np.concatenate([f for f in train if len(f)])
    prm_y = np.array([any(o[:label_rollouts]) for d in data for o in d["mc"]], dtype=float)
    orm_y = np.array([float(d["outcome"]) for d in data for _ in d["steps"]])
    prm, orm = fit_probe(x, prm_y, seed=seed).predict, fit_probe(x, orm_y, seed=seed).predict
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
