"""Where does System 1 go wrong? Greedy answers taken apart, and the first step judged four ways.

    python -m benchmarks.system1_anatomy --model default [--model CKPT ...] [--limit 100]

A diagnostic of issue 6 (System 1 >= 90% on test), not a training method: the exhaustive
oracle (:func:`qstar.tasks.numbers_oracle.solvable_from`) labels states *alive* (24 can still
be reached) or *dead*, only to score what a model did. For each checkpoint and each split of
Game of 24 (first ``--limit`` puzzles of train, val and test):

- **System 1** (greedy free generation, one line per step, no search): accuracy, and for each
  failure the first thing that went wrong: a step that left a dead state (the first step, or a
  later one), or a line that was not a legal step;
- **the first step, four ways**: the share of puzzles whose first step leaves an alive state
  when it is System 1's own first line, the legal step the policy scores highest, the child
  the value head scores highest (a one-step lookahead, i.e. a tiny search: what distilling
  the value head's choice into the policy could at best give), or a uniformly random legal
  step (the expected share, the floor);
- **value AUC at the root**: within each puzzle, how often the value head scores an alive
  first step above a dead one (0.5 = chance), averaged over puzzles that have both.

Writes ``benchmarks/results/system1_anatomy.json``.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch

from benchmarks.common import progress, write_json
from qstar.policy.loading import load_policy
from qstar.rewards.prm import auc
from qstar.rewards.value_head import ValueHeadScorer
from qstar.search.expand import expand
from qstar.search.registry import run_search
from qstar.tasks.base import Task
from qstar.tasks.numbers_oracle import solvable_from
from qstar.tasks.registry import get_task
from qstar.types import Budget, Cost, Problem, Step

SPLITS = ("train", "val", "test")
FAILURES = ("dead_first_step", "dead_later_step", "illegal_line")


def classify(task: Task, problem: Problem, steps: Sequence[Step]) -> str:
    """``"solved"``, or the first thing that went wrong on the path ``steps`` (one of
    :data:`FAILURES`): a step whose state can no longer reach the target, or (every step
    kept it alive) a path that stopped short because the next line was not a legal step."""
    state = task.initial_state(problem)
    for i, step in enumerate(steps):
        state = task.apply(state, task.parse_step(state, step.text))
        if not solvable_from(task, state):
            return "dead_first_step" if i == 0 else "dead_later_step"
    if task.is_terminal(state) and task.outcome(state) == 1.0:
        return "solved"
    return "illegal_line"


def puzzle_report(
    task: Task, policy: Any, scorer: ValueHeadScorer, problem: Problem, seed: int
) -> dict[str, Any]:
    """System 1's verdict and the first step judged four ways, for one puzzle."""
    result = run_search("greedy", problem, task, policy, None, Budget(max_expansions=20), seed=seed)
    root = task.initial_state(problem)
    children = expand(task, policy, [root], cost=Cost())[0]
    kids = [task.apply(root, step) for step, _ in children]
    alive = [solvable_from(task, k) for k in kids]
    values = scorer.value(kids)
    verdict = classify(task, problem, result.steps)
    return {
        "verdict": verdict,
        "first_alive": {
            "system1": bool(result.steps) and verdict != "dead_first_step",
            "policy_legal": alive[max(range(len(kids)), key=lambda i: children[i][1])] if kids else False,
            "value_head": alive[max(range(len(kids)), key=lambda i: values[i])] if kids else False,
            "random": sum(alive) / len(alive) if kids else 0.0,
        },
        "value_auc_root": auc(values, alive),  # None unless the root has alive and dead children
    }


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Percentages over a split's puzzles (``random`` is the expected share)."""
    n = len(rows)
    verdicts = Counter(r["verdict"] for r in rows)
    aucs = [r["value_auc_root"] for r in rows if r["value_auc_root"] is not None]
    return {
        "n": n,
        "system1": round(100 * verdicts["solved"] / max(1, n), 1),
        "failures": {f: verdicts[f] for f in FAILURES},
        "first_step_alive": {
            k: round(100 * sum(float(r["first_alive"][k]) for r in rows) / max(1, n), 1)
            for k in ("system1", "policy_legal", "value_head", "random")
        },
        "value_auc_root": round(sum(aucs) / len(aucs), 3) if aucs else None,
    }


def measure(model: str, limit: int, splits: Sequence[str], *, quiet: bool = False) -> dict[str, Any]:
    task = get_task("game24")
    policy = load_policy(model)
    scorer = ValueHeadScorer(task, policy)
    out: dict[str, Any] = {}
    for split in splits:
        problems = task.problems(split)[:limit]
        rows = []
        with progress(len(problems), f"{model} {split}", quiet=quiet) as bar:
            for i, problem in enumerate(problems):
                rows.append(puzzle_report(task, policy, scorer, problem, seed=i))
                bar.advance()
        out[split] = summarise(rows)
        s = out[split]
        print(
            f"{model} {split}: System 1 {s['system1']}%  failures {s['failures']}  "
            f"first step alive {s['first_step_alive']}  value AUC {s['value_auc_root']}",
            flush=True,
        )
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", required=True, help="default, sft-oracle or a checkpoint dir")
    ap.add_argument("--limit", type=int, default=100, help="puzzles per split")
    ap.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = {m: measure(m, args.limit, args.splits, quiet=args.quiet) for m in args.model}
    write_json("system1_anatomy", {"settings": vars(args), "results": results}, args.out)


if __name__ == "__main__":
    main()
