"""One STaR pass from a distilled student on only the train puzzles its teacher never solved.

    python benchmarks/scripts/star_unsolved_pass.py [STUDENT [OUT]]

An ablation of ``qstar train distill --teacher self`` (README, "STaR on the written search"):
the student writes its own legal-line searches (temperature 1.0, one per puzzle) on the puzzles
absent from its teacher's solved traces, and is fine-tuned 1,000 steps on the verified ones
mixed with its teacher's traces. Same seeds as a full pass, so its traces on those puzzles are
the full pass's. Defaults: ``runs/distill-rope-t05`` -> ``runs/star-t05-unsolved``.
"""

from __future__ import annotations

import json
import sys

from qstar.tasks.registry import get_task
from qstar.training.distill import DistillConfig, distill, load_records, unsolved_problems


def main(student: str = "runs/distill-rope-t05", out: str = "runs/star-t05-unsolved") -> None:
    task = get_task("game24")
    earlier = load_records(student, task)
    problems = unsolved_problems(task, earlier)
    print(f"{len(problems)} train puzzles the teacher never solved")
    config = DistillConfig(
        teacher="self", teacher_temperature=1.0, traces_per_problem=1, block_size=1536, steps=1000, lr=5e-4
    )
    command = "python benchmarks/scripts/star_unsolved_pass.py " + " ".join(sys.argv[1:])
    card = distill(
        student, out, config, problems=problems, progress=False, mixed=earlier, meta={"command": command}
    )
    print(json.dumps({k: card[k] for k in ("data", "teacher_cost", "cpu_seconds")}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
