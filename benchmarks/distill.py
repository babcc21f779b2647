"""System 2 -> System 1 in context (Stream of Search) on Game of 24 (issue 6).

    python -m benchmarks.distill [--init default] [--out runs/distill] [--steps 2000] ...
    python -m benchmarks.distill --report-only --out runs/distill   # re-evaluate a saved student
    python -m benchmarks.distill ... --compare rft=runs/rft-continue-r6/checkpoints/round-0006
    python -m benchmarks.distill --report-only --out runs/distill --splits train --sample 100

Distils ``--init`` (by default the shipped model, itself trained by the RFT loop from rules
alone) into a student that writes its own search: :func:`qstar.training.distill.distill` on the
Game-of-24 train split, no oracle. Then it measures, on val and test, for the teacher and the
student: System 1 with search in context (``stream``: one greedy decode of a trace), plain
System 1 (``greedy``: one line per step, no backtracking) and System 2 (``qstar`` at 11
expansions), with tokens and expansions per puzzle. ``--compare NAME=DIR`` adds other
checkpoints to the table (e.g. the teacher continued by RFT for the same number of tokens:
``qstar train rft --init default ...``).

Writes ``benchmarks/results/distill.json``.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import write_json
from qstar.policy.tinygpt.policy import default_checkpoint_dir
from qstar.tasks.registry import get_task
from qstar.training.distill import DistillConfig, distill, evaluate_student
from qstar.types import Problem


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--init", default="default", help="teacher checkpoint ('default' = the shipped model)")
    p.add_argument("--out", default="runs/distill", help="student checkpoint directory")
    p.add_argument("--splits", default="val,test")
    p.add_argument("--limit", type=int, default=None, help="first N problems of each split (default: all)")
    p.add_argument(
        "--sample",
        type=int,
        default=None,
        help="a seeded random N problems of each split instead (e.g. train puzzles as hard as val's)",
    )
    p.add_argument("--sample-seed", type=int, default=0, help="seed of --sample")
    p.add_argument("--num-problems", type=int, default=None, help="first N train problems (default: all)")
    p.add_argument("--report-only", action="store_true", help="evaluate an existing --out, do not train")
    p.add_argument("--compare", action="append", default=[], help="NAME=DIR: another checkpoint to evaluate")
    p.add_argument("--json", default=None, help="output file (default benchmarks/results/distill.json)")
    p.add_argument(
        "--student-modes",
        default=None,
        help="comma-separated modes of evaluate_student for the student (default: its format's)",
    )
    p.add_argument(
        "--eval-block-size",
        type=int,
        default=None,
        help="read the student with this context length (rotary positions only; default: its own)",
    )
    for f in fields(DistillConfig):
        flag = f"--{f.name.replace('_', '-')}"
        if isinstance(f.default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            p.add_argument(flag, type=type(f.default), default=f.default)
    return p


def _problems(problems: list[Problem], args: argparse.Namespace) -> list[Problem]:
    """The split's first ``--limit`` problems, or a seeded random ``--sample`` of them."""
    if args.sample is None:
        return problems[: args.limit]
    if args.limit is not None:
        raise SystemExit("distill: give --limit or --sample, not both")
    if not 0 < args.sample <= len(problems):
        raise SystemExit(f"distill: --sample must be in 1..{len(problems)}, got {args.sample}")
    return random.Random(args.sample_seed).sample(problems, args.sample)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parser().parse_args(argv)
    torch.set_num_threads(1)
    task = get_task("game24")
    init = Path(default_checkpoint_dir() if args.init == "default" else args.init)
    config = DistillConfig(**{f.name: getattr(args, f.name) for f in fields(DistillConfig)})
    out = Path(args.out)
    if args.report_only:
        card = json.loads((out / "config.json").read_text())["meta"]
    else:
        card = distill(init, out, config, problems=task.problems("train")[: args.num_problems], progress=True)
    others = dict(c.split("=", 1) for c in args.compare)
    results: dict[str, Any] = {"teacher": {}, "student": {}, **{name: {} for name in others}}
    for split in args.splits.split(","):
        problems = _problems(task.problems(split), args)
        results["teacher"][split] = evaluate_student(init, problems, modes=("greedy", "qstar"))
        modes = args.student_modes.split(",") if args.student_modes else None
        results["student"][split] = evaluate_student(
            out, problems, modes=modes, block_size=args.eval_block_size
        )
        for name, path in others.items():
            results[name][split] = evaluate_student(path, problems, modes=("greedy", "qstar"))
        for who in results:
            for mode, m in results[who][split].items():
                print(
                    f"{split:>4} {who:>7} {mode:>6}: {m['accuracy']:.0%}  {m['tokens_per_problem']:.0f} tok/puzzle"
                )
    payload = {
        "init": str(init),
        "student": str(out),
        "eval_block_size": args.eval_block_size,
        "student_modes": args.student_modes,
        "compare": others,
        "distill": card,
        "results": results,
    }
    write_json("distill", payload, args.json)
    return payload


if __name__ == "__main__":
    main()
