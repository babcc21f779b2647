"""Where does System 1 with search in context go wrong? Stream-of-Search traces taken apart.

    python -m benchmarks.stream_anatomy --model default [--model CKPT ...] [--limit 100]

A diagnostic of issue 6, not a training method: the exhaustive oracle
(:func:`qstar.tasks.numbers_oracle.solvable_from`) labels states *alive* (24 can still be
reached) or *dead*, only to score what a model wrote. For each checkpoint, split (first
``--limit`` puzzles) and decode mode of :func:`qstar.search.stream.stream` (``free`` token by
token, ``legal`` one legal line at a time, ``legal_mass`` the same going back by mass):

- accuracy, tokens per puzzle and how each trace ended: ``answered`` (right or ``wrong``),
  ``unfinished`` (the context filled up first) or ``no_answer`` (the last line was no step);
- the lines that were not legal steps;
- the model's own dead-end judgements, by depth (1 = a state after the first step): after
  writing a step into a non-final state, the model either enters it or writes ``back`` at
  once. ``enter_alive`` and ``back_dead`` are the right calls, ``back_alive`` (a solution
  thrown away) and ``enter_dead`` (work spent on a dead end) the wrong ones.

Gandhi et al. 2024, "Stream of Search (SoS)" (arXiv 2404.03683), for the trace format.
Writes ``benchmarks/results/stream_anatomy.json``.
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

import torch

from benchmarks.common import progress, write_json
from qstar.errors import IllegalStepError, ParseError
from qstar.policy.loading import load_policy
from qstar.search.stream import StreamConfig, is_back_line, stream
from qstar.tasks.base import Task
from qstar.tasks.numbers_oracle import solvable_from
from qstar.tasks.registry import get_task
from qstar.types import Problem

SPLITS = ("train", "val", "test")
MODES = ("free", "legal", "legal_mass")
#: Decode mode -> StreamConfig knobs (``legal_mass``: legal lines, back by mass).
_KNOBS = {
    "free": {"lines": "free"},
    "legal": {"lines": "legal"},
    "legal_mass": {"lines": "legal", "back": "mass"},
}
CALLS = ("enter_alive", "back_dead", "back_alive", "enter_dead")


def judge_trace(task: Task, problem: Problem, trace: str) -> tuple[Counter, int]:
    """The dead-end calls of one trace (:data:`CALLS` by depth, keys like ``"d1_back_alive"``)
    and its count of lines that were not legal steps. Replays the trace as
    :func:`~qstar.search.stream.parse_trace` does: a ``back`` returns one level, a bad line is
    skipped."""
    lines = [ln for ln in trace.split("\n") if ln.strip()]
    path, calls, illegal = [task.initial_state(problem)], Counter(), 0
    for i, line in enumerate(lines):
        if is_back_line(line):
            if len(path) > 1:
                path.pop()
            continue
        try:
            state = task.apply(path[-1], task.parse_step(path[-1], line.strip()))
        except (ParseError, IllegalStepError):
            illegal += 1
            continue
        if not task.is_terminal(state):
            backs = i + 1 < len(lines) and is_back_line(lines[i + 1])
            alive = solvable_from(task, state)
            calls[f"d{len(path)}_{'back' if backs else 'enter'}_{'alive' if alive else 'dead'}"] += 1
        path.append(state)
    return calls, illegal


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Percentages and counts over one split and mode."""
    n = max(1, len(rows))
    ends, calls = Counter(), Counter()
    for r in rows:
        ends["wrong" if r["end"] == "answered" and not r["solved"] else r["end"]] += 1
        calls.update(r["calls"])
    depths = sorted({int(k.split("_")[0][1:]) for k in calls})
    return {
        "n": len(rows),
        "accuracy": round(100 * sum(r["solved"] for r in rows) / n, 1),
        "tokens_per_puzzle": round(sum(r["tokens"] for r in rows) / n, 1),
        "ends": dict(sorted(ends.items())),
        "illegal_lines": sum(r["illegal"] for r in rows),
        "calls": {f"depth_{d}": {c: calls[f"d{d}_{c}"] for c in CALLS} for d in depths},
    }


def measure(model: str, limit: int, splits: list[str], modes: list[str], *, quiet: bool = False) -> dict:
    task = get_task("game24")
    policy = load_policy(model)
    out: dict[str, Any] = {}
    for split in splits:
        problems = task.problems(split)[:limit]
        for mode in modes:
            rows = []
            with progress(len(problems), f"{model} {split} {mode}", quiet=quiet) as bar:
                for problem in problems:
                    result = stream(problem, task, policy, config=StreamConfig(**_KNOBS[mode]))
                    calls, illegal = judge_trace(task, problem, result.info["trace"])
                    solved = result.answer is not None and task.verify(problem, result.answer).ok
                    rows.append(
                        {
                            "solved": solved,
                            "end": result.info["end"],
                            "tokens": result.cost.tokens,
                            "calls": calls,
                            "illegal": illegal,
                        }
                    )
                    bar.advance()
            s = out.setdefault(split, {})[mode] = summarise(rows)
            print(
                f"{model} {split} {mode}: {s['accuracy']}%  ends {s['ends']}  illegal lines "
                f"{s['illegal_lines']}  calls {s['calls']}",
                flush=True,
            )
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", required=True, help="default or a checkpoint dir")
    ap.add_argument("--limit", type=int, default=100, help="puzzles per split")
    ap.add_argument("--splits", nargs="+", default=["val", "test"], choices=SPLITS)
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = {m: measure(m, args.limit, args.splits, args.modes, quiet=args.quiet) for m in args.model}
    write_json("stream_anatomy", {"settings": vars(args), "results": results}, args.out)


if __name__ == "__main__":
    main()
