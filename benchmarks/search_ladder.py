"""Search ladder: success and cost of every search algorithm at growing expansion budgets.

    python -m benchmarks.search_ladder [--tasks game24,countdown-6] [--searches all]
        [--budgets 3,6,11,16,32,64,128] [--limit N | --limit countdown-6=50] [--model default]
        [--threads 1] [--jobs 1] [--seed 0] [--verify 10] [--engine-puzzles 20] [--out PATH]

For every task, search and budget (``Budget(max_expansions=b)``, scorer ``auto`` = the value
head): success rate, mean cost (model calls, tokens, expansions) and seconds per puzzle. Problem
``i`` is searched with seed ``seed + i``, as ``qstar eval`` does. Writes
benchmarks/results/search_ladder.json and a Markdown copy of the tables next to it (.md).

Knobs that must grow with the budget for a search to use it are set from the budget and
recorded per budget in the JSON: ``num_samples = max(1, b // max_steps)`` sampled paths for
best_of_n and self_consistency, ``beam_width = max(1, (b - 1) // (max_steps - 1))`` for tot_bfs
and beam (one expansion at the root, then ``beam_width`` per depth). Every other knob keeps its
default (mcts: batch_size 1, no noise, stop_on_solution).

**Anytime trick.** greedy, blind, qstar, tot_dfs and mcts (batch_size 1) expand one state at a
time, check the budget only before each expansion and stop at the first verified solution;
nothing else in them depends on the budget. So the run at budget ``b`` is exactly the first
``b`` expansions of the run at the largest budget: each puzzle is searched once, and the
expansion at which the first verified solution appeared decides success at every smaller
budget. The cost of the prefix is read from a log of the model calls (usage and clock before
each expansion's call); for ``blind`` (no model) the seconds of a prefix are interpolated
linearly in expansions. ``--verify N`` re-runs the first N puzzles for real at two small budgets
and compares (solved, expansions, model calls, tokens must match exactly).

The other searches run once per budget, except that a run that finished below its budget with
the same knobs is reused for the larger budgets (it never reached the limit, so it is the same
run).

**Engine figure** (``--engine-puzzles``): expansions/second of mcts with ``batch_size`` 8 and the
policy's batched, KV-cache prefix-sharing ``score`` vs the same search with batch_size 1 through
a wrapper that sends every (prompt, candidate) pair and every value prompt as its own model
call (each recomputes its whole prompt), on the same puzzles and budget (stop_on_solution off,
so both spend the whole budget).
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

import torch

from benchmarks.common import RESULTS, progress, write_json
from benchmarks.engine_figure import engine_figure
from benchmarks.ladder_report import ANYTIME, goals, markdown_report, tables
from benchmarks.ladder_runner import Outcome, Runner, summarize, verify_anytime
from qstar.policy.loading import load_policy
from qstar.search.registry import get_search, make_config, search_names
from qstar.tasks.registry import get_task
from qstar.types import Problem

TASKS = ("game24", "countdown-6")
BUDGETS = (3, 6, 11, 16, 32, 64, 128)


# ------------------------------------------------------------------------------------- knobs


def knobs_for(search: str, max_steps: int, budget: int) -> dict[str, Any]:
    """The knobs a search gets at ``budget`` expansions (module docstring)."""
    if search in ("best_of_n", "self_consistency"):
        return {"num_samples": max(1, budget // max_steps)}
    if search in ("tot_bfs", "beam"):
        return {"beam_width": max(1, (budget - 1) // max(1, max_steps - 1))}
    return {}


def config_json(search: str, knobs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(make_config(search, **knobs)).items() if not callable(v)}


# ------------------------------------------------------------------------------------- running


def ladder_one(
    runner: Runner, search: str, problems: list[Problem], budgets: list[int], max_steps: int, verify: int
) -> dict[str, Any]:
    """Every budget of one search on one task (anytime where valid, else run per budget)."""
    start = time.perf_counter()
    per_budget: dict[int, list[Outcome]] = {b: [] for b in budgets}
    entry: dict[str, Any] = {}
    if search in ANYTIME:
        firsts: list[int | None] = []
        fallbacks = 0
        for i, p in enumerate(problems):
            outs, k = runner.anytime(search, i, p, budgets)
            if outs is None:  # never expected for these searches; stay exact anyway
                fallbacks += 1
                outs = {b: runner.once(search, i, p, b, {}) for b in budgets}
            firsts.append(k)
            for b in budgets:
                per_budget[b].append(outs[b])
        entry["method"] = "anytime"
        entry["first_solution_expansion"] = firsts
        entry["anytime_fallbacks"] = fallbacks
        if verify:
            entry["verification"] = verify_anytime(runner, search, problems[:verify], budgets, per_budget)
    else:
        reused = 0
        for i, p in enumerate(problems):
            prev: tuple[dict[str, Any], int, Outcome] | None = None
            for b in budgets:
                knobs = knobs_for(search, max_steps, b)
                if prev is not None and prev[0] == knobs and prev[2].cost.expansions < prev[1]:
                    out, reused = prev[2], reused + 1  # finished below its budget: the same run
                else:
                    out = runner.once(search, i, p, b, knobs)
                per_budget[b].append(out)
                prev = (knobs, b, out)
        entry["method"] = "per_budget"
        entry["reused_runs"] = reused
    entry["budgets"] = {
        str(b): {
            **summarize(per_budget[b]),
            "knobs": knobs_for(search, max_steps, b),
            "config": config_json(search, knobs_for(search, max_steps, b)),
        }
        for b in budgets
    }
    entry["wall_seconds"] = round(time.perf_counter() - start, 2)
    return entry


# ------------------------------------------------------------------------------------- main


_WORKER: dict[str, Any] = {}


def _init_worker(model: str, threads: int) -> None:
    torch.set_num_threads(threads)
    _WORKER["policy"] = load_policy(model)


def _run_unit(
    task_name: str, search: str, limit: int | None, budgets: list[int], seed: int, verify: int
) -> dict[str, Any]:
    """The ladder of one search on one task (in this process or a ``--jobs`` worker)."""
    task = get_task(task_name)
    runner = Runner(_WORKER["policy"], task, seed)
    return ladder_one(runner, search, task.problems("test")[:limit], budgets, task.max_steps, verify)


def _parse_limit(text: str | None, tasks: Sequence[str]) -> dict[str, int | None]:
    if not text:
        return dict.fromkeys(tasks)
    if "=" not in text:
        return dict.fromkeys(tasks, int(text))
    out: dict[str, int | None] = dict.fromkeys(tasks)
    for part in text.split(","):
        name, _, n = part.partition("=")
        out[name.strip()] = int(n)
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--searches", default="all", help="comma-separated names, or 'all'")
    ap.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    ap.add_argument("--limit", default=None, help="puzzles per task: N, or TASK=N,TASK=N")
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (each with --threads)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verify", type=int, default=10, help="puzzles re-run to check the anytime trick")
    ap.add_argument("--engine-task", default="game24")
    ap.add_argument("--engine-puzzles", type=int, default=20, help="0 skips the engine figure")
    ap.add_argument("--engine-expansions", type=int, default=64)
    ap.add_argument("--engine-batch", type=int, default=8)
    ap.add_argument("--out", default=None, help="JSON path (the .md goes next to it)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar (result lines still print)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    names = search_names() if args.searches == "all" else [s.strip() for s in args.searches.split(",")]
    searches = []
    for name in names:  # canonical names (aliases resolved), in the order asked
        fn, _ = get_search(name)
        searches.append(next(k for k in search_names() if get_search(k)[0] is fn))
    budgets = sorted({int(b) for b in args.budgets.split(",")})
    limits = _parse_limit(args.limit, tasks)
    policy = load_policy(args.model)
    if policy is None and any(s != "blind" for s in searches):
        raise SystemExit("--model none only runs the blind search")

    wall = time.perf_counter()
    units = [(t, s) for t in tasks for s in searches]
    entries: dict[tuple[str, str], dict[str, Any]] = {}

    with progress(len(units), "search ladder (task x search)", quiet=args.quiet) as bar:

        def report(unit: tuple[str, str], entry: dict[str, Any]) -> None:
            entries[unit] = entry
            cells = " ".join(f"{entry['budgets'][str(b)]['success']:4.0%}" for b in budgets)
            bar.print(f"{unit[0]:12s} {unit[1]:17s} {cells}  ({entry['wall_seconds']:.0f}s)")
            bar.advance(description=f"search ladder: done {unit[0]} {unit[1]}")

        if args.jobs > 1 and len(units) > 1:
            # Longest first: the wide BFS, then the model-guided searches that run to 128 expansions.
            heavy = ("tot_bfs", "qstar", "mcts", "beam", "tot_dfs")
            order = sorted(
                units, key=lambda u: (heavy.index(u[1]) if u[1] in heavy else len(heavy), u[0] == "game24")
            )
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(
                args.jobs, mp_context=ctx, initializer=_init_worker, initargs=(args.model, args.threads)
            ) as pool:
                futures = {
                    pool.submit(_run_unit, t, s, limits.get(t), budgets, args.seed, args.verify): (t, s)
                    for t, s in order
                }
                for fut in as_completed(futures):
                    report(futures[fut], fut.result())
        else:
            _WORKER["policy"] = policy
            for t, s in units:
                report((t, s), _run_unit(t, s, limits.get(t), budgets, args.seed, args.verify))

    results: dict[str, Any] = {}
    for task_name in tasks:
        task = get_task(task_name)
        ladder = {s: entries[(task_name, s)] for s in searches}
        results[task_name] = {
            "split": "test",
            "n": len(task.problems("test")[: limits.get(task_name)]),
            "limit": limits.get(task_name),
            "max_steps": task.max_steps,
            "search_seconds": round(sum(e["wall_seconds"] for e in ladder.values()), 1),
            "ladder": ladder,
        }

    engine = None
    if args.engine_puzzles > 0 and policy is not None:
        engine = engine_figure(
            policy,
            args.engine_task,
            args.engine_puzzles,
            args.engine_expansions,
            args.engine_batch,
            args.seed,
        )
        print(
            f"engine: mcts {engine['batched_prefix_shared']['expansions_per_s']} exp/s (batch "
            f"{args.engine_batch}, shared prefixes) vs {engine['batch1_one_call_per_candidate']['expansions_per_s']} "
            f"exp/s (batch 1, one call per candidate): {engine['speedup']}x",
            flush=True,
        )

    payload: dict[str, Any] = {
        "model": args.model,
        "scorer": "auto",
        "seed": args.seed,
        "threads": args.threads,
        "jobs": args.jobs,
        "limit": {t: limits.get(t) for t in tasks},
        "budgets": budgets,
        "searches": searches,
        "anytime_searches": [s for s in ANYTIME if s in searches],
        "knob_rules": {
            "best_of_n/self_consistency": "num_samples = max(1, budget // task.max_steps)",
            "tot_bfs/beam": "beam_width = max(1, (budget - 1) // (task.max_steps - 1))",
            "others": "defaults (mcts batch_size 1)",
        },
        "tasks": results,
        "engine": engine,
        "goals": goals(results),
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "command": " ".join(
            ["python -m benchmarks.search_ladder", *(sys.argv[1:] if argv is None else argv)]
        ),
    }
    print()
    print(tables(results, budgets, markdown=False))
    for key, value in payload["goals"].items():
        print(f"{key}: {value}")
    print(f"wall time {payload['wall_seconds']:.0f}s")
    path = write_json("search_ladder", payload, args.out)
    md = path.with_suffix(".md") if args.out else RESULTS / "search_ladder.md"
    md.write_text(markdown_report(payload, budgets), encoding="utf-8")
    print(f"wrote {md}")
    return payload


if __name__ == "__main__":
    main()
