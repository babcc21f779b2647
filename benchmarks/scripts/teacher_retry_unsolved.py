"""The stream teacher retries, with more lines, the train puzzles it solved in none of its runs.

    python benchmarks/scripts/teacher_retry_unsolved.py --traces runs/sharp60 \
        --init runs/sharp60-sweep --out runs/retry-a [--max-lines 24 --runs 4 --temperature 1.0]
    qstar train distill --init runs/sharp60-sweep --out runs/retry-d0 --reuse-traces runs/sharp60 \
        --mix-traces runs/retry-a ...

An ablation of the distillation's data (README, "Fitting the sweep longer"): the shipped
student solves 95% of the train puzzles its teacher verified a run on and 27% of the others,
and every unsolved teacher run ends at the 14-step-line cap. This reruns the teacher
(:func:`qstar.training.distill.collect_traces`; train split only, no oracle) on just those
puzzles, ``--runs`` times each with a higher ``--max-lines``, and saves the records in
``--out`` as a distillation would, for ``qstar train distill --mix-traces``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

from qstar.tasks.registry import get_task
from qstar.training.distill import (
    TRACES_FILE,
    DistillConfig,
    collect_traces,
    load_records,
    save_records,
    unsolved_problems,
)


def main(argv: Sequence[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--traces", required=True, help="the distillation whose unsolved puzzles to retry")
    ap.add_argument("--init", required=True, help="that distillation's teacher checkpoint")
    ap.add_argument("--out", required=True, help="directory for the retry's teacher_traces.jsonl.gz")
    ap.add_argument("--value-threshold", type=float, default=0.64)
    ap.add_argument("--max-lines", type=int, default=24)
    ap.add_argument("--runs", type=int, default=4, help="teacher runs per unsolved puzzle")
    ap.add_argument("--temperature", type=float, default=1.0, help="Gumbel noise on the teacher's order")
    ap.add_argument(
        "--seed", type=int, default=1, help="differs from the first distillation's, so new orders"
    )
    args = ap.parse_args(argv)
    task = get_task("game24")
    problems = unsolved_problems(task, load_records(args.traces, task))
    config = DistillConfig(
        traces_per_problem=args.runs,
        teacher_temperature=args.temperature,
        value_threshold=args.value_threshold,
        max_lines=args.max_lines,
        seed=args.seed,
        block_size=1536,
    )
    start = time.process_time()
    records = collect_traces(task, problems, args.init, config)
    cpu = time.process_time() - start
    save_records(Path(args.out) / TRACES_FILE, records)
    solved = [t for r in records for t in r["traces"] if t["solved"]]
    summary = {
        "puzzles": len(problems),
        "traces": args.runs * len(problems),
        "traces_solved": len(solved),
        "puzzles_solved": sum(any(t["solved"] for t in r["traces"]) for r in records),
        "cpu_minutes": round(cpu / 60, 2),
        "settings": vars(args),
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
