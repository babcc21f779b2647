"""The teacher threshold at which a value head is as cautious as a reference head, without labels.

    python -m benchmarks.threshold_match --reference runs/cut60-sweep --model runs/sw2400 [--limit 300]

A sharper value head (a sweep fitted longer) also sits higher: at the stream teacher's 0.5 it
keeps more first-step states than the head it replaces, and a teacher that enters more states
teaches a student that enters more and runs out of room (README, "Fitting the sweep longer").
This script separates the two: it reads every state one step below the first ``--limit``
train puzzles (train only; no label, no oracle), finds the share of them the ``--reference``
head keeps at ``--reference-threshold``, and for each ``--model`` the threshold that keeps the
same share (its value quantile), to pass as ``qstar train distill --value-threshold``.
Writes ``benchmarks/results/threshold_match.json``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from benchmarks.common import progress, write_json
from qstar.policy.loading import load_policy
from qstar.rewards.value_head import ValueHeadScorer
from qstar.tasks.registry import get_task
from qstar.training.value_sweep import states_at_depth


def matching_threshold(values: Sequence[float], share: float) -> float:
    """The threshold at which ``values`` keep (``>=``) about ``share`` of themselves."""
    if not values:
        raise ValueError("matching_threshold needs at least one value")
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be in [0, 1], got {share}")
    return float(np.quantile(np.asarray(values, dtype=float), 1.0 - share))


def kept_share(values: Sequence[float], threshold: float) -> float:
    """The share of ``values`` at or above ``threshold`` (what a teacher at it would enter)."""
    return float(np.mean(np.asarray(values, dtype=float) >= threshold))


def first_step_values(model: str, limit: int, *, quiet: bool = False) -> list[float]:
    """The value head of ``model`` on every state one step below the first ``limit`` train puzzles."""
    task = get_task("game24")
    scorer = ValueHeadScorer(task, load_policy(model))
    problems = task.problems("train")[:limit]
    values: list[float] = []
    with progress(len(problems), model, quiet=quiet) as bar:
        for problem in problems:
            values += [float(v) for v in scorer.value(states_at_depth(task, problem, 1))]
            bar.advance()
    return values


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", required=True, help="the head whose caution to match")
    ap.add_argument("--reference-threshold", type=float, default=0.5)
    ap.add_argument("--model", action="append", required=True, help="a checkpoint to calibrate")
    ap.add_argument("--limit", type=int, default=300, help="train puzzles read")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    reference = first_step_values(args.reference, args.limit, quiet=args.quiet)
    share = kept_share(reference, args.reference_threshold)
    print(
        f"{args.reference}: keeps {share:.1%} of {len(reference)} first-step train states at {args.reference_threshold}"
    )
    results: dict[str, Any] = {}
    for model in args.model:
        values = first_step_values(model, args.limit, quiet=args.quiet)
        threshold = matching_threshold(values, share)
        kept = kept_share(values, args.reference_threshold)
        results[model] = {
            "threshold": round(threshold, 3),
            f"kept_at_{args.reference_threshold}": round(kept, 3),
        }
        print(f"{model}: keeps {kept:.1%} at {args.reference_threshold}; the same share at {threshold:.3f}")
    payload = {
        "reference": args.reference,
        "reference_threshold": args.reference_threshold,
        "limit": args.limit,
        "states": len(reference),
        "reference_kept": round(share, 3),
        "results": results,
    }
    write_json("threshold_match", payload, args.out)
    return payload


if __name__ == "__main__":
    main()
