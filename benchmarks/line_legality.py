"""How often a model's free-running first line is a legal step (the first thing System 1 needs).

    python -m benchmarks.line_legality --model default --model runs/NAME/checkpoints/round-0005
        [--task game24] [--split val] [--limit 100] [--out PATH]

For each model: greedy generation of one line at the initial state of the first ``--limit``
problems of the split, parsed and applied by the task (an illegal result, a wrong ``(left:
...)`` list or an unparsable line counts as illegal). Writes benchmarks/results/line_legality.json.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.common import write_json
from qstar.errors import QstarError
from qstar.policy.loading import load_policy
from qstar.tasks.registry import get_task


def first_line_legality(model: str, task_name: str, split: str, limit: int) -> dict:
    task = get_task(task_name)
    policy = load_policy(model)
    problems = task.problems(split)[:limit]
    states = [task.initial_state(p) for p in problems]
    gens = policy.generate(
        [task.render(s) for s in states], num_samples=1, temperature=0.0, max_new_tokens=40, stop=("\n",)
    )
    legal = 0
    for state, (gen,) in zip(states, gens, strict=True):
        try:
            task.apply(state, task.parse_step(state, gen.text))
            legal += 1
        except QstarError:
            pass
    return {"n": len(problems), "legal_first_lines": legal, "examples": [g[0].text for g in gens[:3]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="repeat for several models")
    ap.add_argument("--task", default="game24")
    ap.add_argument("--split", default="val")
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    results = {}
    for model in args.model:
        results[model] = first_line_legality(model, args.task, args.split, args.limit)
        r = results[model]
        print(f"{model}: {r['legal_first_lines']}/{r['n']} legal first lines, e.g. {r['examples'][0]!r}")
    write_json("line_legality", {"task": args.task, "split": args.split, "models": results}, args.out)


if __name__ == "__main__":
    main()
