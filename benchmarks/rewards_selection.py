"""How the arith part of :mod:`benchmarks.rewards` judges a reranker: best-of-N accuracy over
random N-subsets, the AUC within a problem, the answer share of the top pick, step quality
against the true labels, and the issue's goal (PRM >= ORM + 5 points at N = 16)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from qstar.rewards.prm import auc

__all__ = ["NS", "best_of_n", "goal_at_16", "step_quality", "top_pick_share", "within_problem_auc"]

NS = (1, 2, 4, 8, 16, 32, 64)


def best_of_n(answers, correct, scores: dict[str, list], rng, draws: int) -> dict[str, dict[int, float]]:
    """Accuracy of each selection rule at each N, averaged over random N-subsets of the samples.
    ``answers[i][j]`` is sample j's final answer on problem i (None: unfinished)."""
    rules = ["majority", "pass@n", *scores]
    acc: dict[str, dict[int, float]] = {r: {} for r in rules}
    n_total = len(answers[0])
    for n in (x for x in NS if x <= n_total):
        reps = 1 if n == n_total else draws
        hits: Counter = Counter()
        for i in range(len(answers)):
            for _ in range(reps):
                sub = [int(j) for j in rng.choice(n_total, n, replace=False) if answers[i][j] is not None]
                if not sub:
                    continue
                votes = Counter(answers[i][j] for j in sub)
                top = max(votes.values())
                hits["majority"] += correct[i][next(j for j in sub if votes[answers[i][j]] == top)]
                hits["pass@n"] += any(correct[i][j] for j in sub)
                for rule, per in scores.items():
                    hits[rule] += correct[i][max(sub, key=lambda j, per=per: (per[i][j], -j))]
        for r in rules:
            acc[r][n] = round(100 * hits[r] / (reps * len(answers)), 2)
    return acc


def within_problem_auc(answers, correct, per) -> float | None:
    """Mean over problems (with both right and wrong finished samples) of the AUC of the path
    scores ``per[i][j]`` for telling right from wrong samples of that problem: what a reranker
    can use. ``None`` when no problem has both."""
    aucs = []
    for i, row in enumerate(answers):
        done = [j for j, a in enumerate(row) if a is not None]
        ys = [bool(correct[i][j]) for j in done]
        if any(ys) and not all(ys):
            aucs.append(auc([per[i][j] for j in done], ys))
    return round(float(np.mean(aucs)), 4) if aucs else None


def top_pick_share(answers, per) -> float:
    """Mean share of a problem's finished samples (all N) that give the same answer as the
    top-scored sample: near the majority answer's share for a reranker that agrees with the
    crowd, far below it for one that picks outliers (reward over-optimisation, Gao et al. 2022,
    arXiv 2210.10760)."""
    shares = []
    for i, row in enumerate(answers):
        done = [j for j, a in enumerate(row) if a is not None]
        if done:
            top = max(done, key=lambda j: (per[i][j], -j))
            shares.append(sum(row[j] == row[top] for j in done) / len(done))
    return round(float(np.mean(shares)), 4) if shares else 0.0


def step_quality(scores, truth_labels) -> dict[str, float]:
    preds = [s >= 0.5 for s in scores]
    return {
        "step_accuracy": round(
            100 * sum(p == t for p, t in zip(preds, truth_labels, strict=True)) / len(preds), 2
        ),
        "step_auc": round(auc(scores, truth_labels) or 0.0, 4),
    }


def goal_at_16(bon: dict[str, Any], args) -> dict[str, Any]:
    """The issue's goal, PRM >= ORM + 5 points at N = 16, for ``--headline`` vs ``--headline-orm``
    (on all test problems, and on ``test[fresh_from:]`` when asked)."""
    acc = bon["accuracy"]
    missing = [name for name in (args.headline, args.headline_orm) if name not in acc]
    if missing:
        raise SystemExit(f"--headline/--headline-orm {missing} not among the rerankers run: {sorted(acc)}")
    prms = [k for k in acc if "prm" in k and not k.startswith("implicit")]
    out: dict[str, Any] = {"prm": args.headline, "orm": args.headline_orm}
    for key, table in (("points", acc), ("points_fresh", bon.get("accuracy_fresh"))):
        if table is not None:
            out[key] = round(table[args.headline].get(16, 0) - table[args.headline_orm].get(16, 0), 2)
    out["met"] = out["points"] >= 5 and out.get("points_fresh", 5) >= 5
    out["best_prm_variant_at_16"] = max(prms, key=lambda k: acc[k].get(16, 0)) if prms else None
    return out
