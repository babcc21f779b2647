"""How well does a value head tell alive states from dead ones, one and two steps in?

    python -m benchmarks.value_quality --model default [--model CKPT ...] [--limit 100]

A diagnostic of issue 6, not a training method: the exhaustive oracle
(:func:`qstar.tasks.numbers_oracle.solvable_from`) labels states *alive* (24 can still be
reached) or *dead*, only to score the value head. For each checkpoint and each split of Game
of 24 (first ``--limit`` puzzles of val and test) it scores two levels of states:

- **first step**: every state one legal step below a puzzle (three numbers left), what a
  written search's ``back`` decision and Q*'s first choice judge;
- **second step**: every state one legal step below an alive first-step state (two left).

For each level: the share of alive states, how many of the alive ones the value head keeps at
``--threshold`` (the stream teacher's 0.5), how many dead ones it rejects, the AUC over all the
level's states, and (first step) the AUC within each puzzle, averaged. Used to measure
``qstar train sweep`` (:mod:`qstar.training.value_sweep`). Writes
``benchmarks/results/value_quality.json``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from benchmarks.common import progress, write_json
from qstar.policy.loading import load_policy
from qstar.rewards.prm import auc
from qstar.rewards.value_head import ValueHeadScorer
from qstar.tasks.numbers_oracle import solvable_from
from qstar.tasks.registry import get_task

SPLITS = ("val", "test")


def level_report(values: Sequence[float], alive: Sequence[bool], threshold: float) -> dict[str, Any]:
    """Share alive, alive kept (value >= threshold), dead rejected, AUC, in percent / 3 digits."""
    v, a = np.asarray(values, dtype=float), np.asarray(alive, dtype=bool)
    kept = float((v[a] >= threshold).mean()) if a.any() else None
    rejected = float((v[~a] < threshold).mean()) if (~a).any() else None
    score = auc(list(v), list(a))
    return {
        "n": int(len(a)),
        "alive": round(100 * float(a.mean()), 1) if len(a) else None,
        "alive_kept": None if kept is None else round(100 * kept, 1),
        "dead_rejected": None if rejected is None else round(100 * rejected, 1),
        "auc": None if score is None else round(score, 3),
    }


def measure(model: str, limit: int, splits: Sequence[str], threshold: float, quiet: bool) -> dict[str, Any]:
    task = get_task("game24")
    scorer = ValueHeadScorer(task, load_policy(model))
    out: dict[str, Any] = {}
    for split in splits:
        problems = task.problems(split)[:limit]
        first_v: list[float] = []
        first_a: list[bool] = []
        second_v: list[float] = []
        second_a: list[bool] = []
        root_aucs = []
        with progress(len(problems), f"{model} {split}", quiet=quiet) as bar:
            for problem in problems:
                root = task.initial_state(problem)
                kids = [task.apply(root, step) for step in task.legal_steps(root)]
                values, alive = scorer.value(kids), [solvable_from(task, k) for k in kids]
                first_v += values
                first_a += alive
                within = auc(values, alive)
                if within is not None:
                    root_aucs.append(within)
                for kid in (k for k, a in zip(kids, alive, strict=True) if a):
                    grand = [task.apply(kid, step) for step in task.legal_steps(kid)]
                    second_v += scorer.value(grand)
                    second_a += [solvable_from(task, g) for g in grand]
                bar.advance()
        first = level_report(first_v, first_a, threshold)
        first["auc_within_puzzle"] = round(float(np.mean(root_aucs)), 3) if root_aucs else None
        out[split] = {"first_step": first, "second_step": level_report(second_v, second_a, threshold)}
        f, s = out[split]["first_step"], out[split]["second_step"]
        print(
            f"{model} {split}: first step: alive kept {f['alive_kept']}%, dead rejected {f['dead_rejected']}%, "
            f"AUC {f['auc']} (within puzzle {f['auc_within_puzzle']}); second step: kept {s['alive_kept']}%, "
            f"rejected {s['dead_rejected']}%, AUC {s['auc']}",
            flush=True,
        )
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--model", action="append", required=True, help="default or a checkpoint dir (repeatable)"
    )
    ap.add_argument("--limit", type=int, default=100, help="puzzles per split")
    ap.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS)
    ap.add_argument("--threshold", type=float, default=0.5, help="value at which a state counts as kept")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    results = {m: measure(m, args.limit, args.splits, args.threshold, args.quiet) for m in args.model}
    payload = {"limit": args.limit, "threshold": args.threshold, "results": results}
    write_json("value_quality", payload, args.out)
    return payload


if __name__ == "__main__":
    main()
