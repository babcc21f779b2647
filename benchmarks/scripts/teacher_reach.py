"""How often a checkpoint, run as the distillation's stream teacher, solves held-out puzzles.

    python benchmarks/scripts/teacher_reach.py --model runs/sharp60-sweep --model runs/sharp60 \
        [--splits val,test --runs 3 --temperature 0.5 --value-threshold 0.64] \
        [--json benchmarks/results/teacher_reach.json]

A measurement, never training data: the stream teacher of :mod:`qstar.training.distill`
(depth-first over the model's prior with Gumbel noise, dead ends cut by its value head, answers
checked by the verifier; the distillation's knobs and per-puzzle seeds) runs ``--runs`` times on
every puzzle of each split, and the share solved per run and by any run is reported with its
cost. Set against the student's System 1 it says whether the student is held back by its teacher
(README, "Fitting the sweep longer"): the shipped sweep teacher solves 80% of val per run and
87% with any of its three runs, where its student writes a solved search on 88%.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

from qstar.tasks.registry import get_task
from qstar.training.distill import DistillConfig, records_cost, teacher_job, trace_job


def reach(model: str, split: str, config: DistillConfig, *, limit: int | None = None) -> dict:
    """The stream teacher of ``config`` from checkpoint ``model`` on ``split``: puzzles solved
    per run and by any run, and the cost (per puzzle, all runs together)."""
    task = get_task("game24")
    problems = task.problems(split)[:limit]
    start = time.process_time()
    records = trace_job(teacher_job(task, problems, model, config))  # held out: measured, never trained on
    cpu = time.process_time() - start
    cost = records_cost(records)
    n = len(records)
    per_run = [sum(r["traces"][k]["solved"] for r in records) / n for k in range(config.samples)]
    return {
        "n": n,
        "solved_per_run": per_run,
        "solved_by_any_run": sum(any(t["solved"] for t in r["traces"]) for r in records) / n,
        "lines_per_run": sum(t["lines"] for r in records for t in r["traces"]) / (n * config.samples),
        "expansions_per_puzzle": cost.expansions / n,
        "cpu_seconds": round(cpu, 1),
    }


def main(argv: Sequence[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", required=True, help="checkpoint directory (repeatable)")
    ap.add_argument("--splits", default="val,test")
    ap.add_argument("--limit", type=int, default=None, help="first N puzzles of each split")
    ap.add_argument("--runs", type=int, default=3, help="teacher runs per puzzle")
    ap.add_argument("--temperature", type=float, default=0.5, help="Gumbel noise on the teacher's order")
    ap.add_argument("--value-threshold", type=float, default=0.64)
    ap.add_argument("--max-lines", type=int, default=14)
    ap.add_argument("--seed", type=int, default=0, help="the distillation's seed: the same orders")
    ap.add_argument("--json", default="benchmarks/results/teacher_reach.json")
    args = ap.parse_args(argv)
    config = DistillConfig(
        traces_per_problem=args.runs,
        teacher_temperature=args.temperature,
        value_threshold=args.value_threshold,
        max_lines=args.max_lines,
        seed=args.seed,
    )
    results = {
        model: {split: reach(model, split, config, limit=args.limit) for split in args.splits.split(",")}
        for model in args.model
    }
    for model, splits in results.items():
        for split, r in splits.items():
            runs = " ".join(f"{x:.0%}" for x in r["solved_per_run"])
            print(f"{model} {split}: per run {runs}, any run {r['solved_by_any_run']:.0%}")
    out = {"settings": vars(args), "results": results}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
