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
from benchmarks.ladder_report import ANYTIME, goals, markdown_report, tables
from qstar.policy.base import Usage
from qstar.policy.loading import load_policy
from qstar.rewards.registry import make_scorer
from qstar.search.registry import get_search, make_config, run_search, search_names
from qstar.tasks.registry import get_task
from qstar.types import Budget, Cost, Problem, SearchResult

TASKS = ("game24", "countdown-6")
BUDGETS = (3, 6, 11, 16, 32, 64, 128)
#: Searches whose run at a budget is the prefix of their run at a larger one (module docstring).


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


# ------------------------------------------------------------------------------------- policies


class TracePolicy:
    """Forwards to a policy; before each call logs ``(method, perf_counter, usage snapshot)``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", "policy")
        self.calls: list[tuple[str, float, Usage]] = []

    @property
    def usage(self) -> Usage:
        return self.inner.usage

    def _log(self, method: str) -> None:
        self.calls.append((method, time.perf_counter(), self.inner.usage.snapshot()))

    def generate(self, prompts: Sequence[str], **kwargs: Any) -> Any:
        self._log("generate")
        return self.inner.generate(prompts, **kwargs)

    def score(self, prompts: Sequence[str], continuations: Sequence[Sequence[str]]) -> Any:
        self._log("score")
        return self.inner.score(prompts, continuations)

    def value(self, prompts: Sequence[str]) -> Any:
        self._log("value")
        return self.inner.value(prompts)


class OneAtATimePolicy:
    """The engine figure's baseline: every (prompt, candidate) pair, every value prompt and every
    generation prompt is its own model call, so siblings share no prompt computation."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = f"one-at-a-time:{getattr(inner, 'name', 'policy')}"

    @property
    def usage(self) -> Usage:
        return self.inner.usage

    def generate(self, prompts: Sequence[str], **kwargs: Any) -> Any:
        return [self.inner.generate([p], **kwargs)[0] for p in prompts]

    def score(self, prompts: Sequence[str], continuations: Sequence[Sequence[str]]) -> list[list[float]]:
        return [
            [self.inner.score([p], [[c]])[0][0] for c in cands]
            for p, cands in zip(prompts, continuations, strict=True)
        ]

    def value(self, prompts: Sequence[str]) -> list[float]:
        return [self.inner.value([p])[0] for p in prompts]


def _usage_cost(before: Usage, after: Usage, expansions: int, seconds: float) -> Cost:
    return Cost(
        model_calls=after.model_calls - before.model_calls,
        tokens_generated=after.tokens_generated - before.tokens_generated,
        tokens_scored=after.tokens_scored - before.tokens_scored,
        expansions=expansions,
        seconds=seconds,
    )


# ------------------------------------------------------------------------------------- running


@dataclasses.dataclass
class Outcome:
    """One puzzle at one budget: solved or not, and what it cost (``cost.seconds`` = wall)."""

    solved: bool
    cost: Cost


def first_solution_expansion(result: SearchResult) -> int | None:
    """1-based index of the expansion that created the returned verified solution, from the
    tree: the position of the solution's parent in ``expansion_order``."""
    tree = result.tree
    if not result.solved or tree is None or len(tree.chosen) < 2:
        return None
    parent = tree.parent[tree.chosen[-1]]
    return tree.expansion_order.index(parent) + 1


class Runner:
    """Runs one search over one task's problems with a shared policy and scorer."""

    def __init__(self, policy: Any, task: Any, seed: int) -> None:
        self.trace = None if policy is None else TracePolicy(policy)
        self.task = task
        self.seed = seed
        self.scorer = None if policy is None else make_scorer("auto", task, self.trace)

    def run(self, search: str, index: int, problem: Problem, budget: int, knobs: dict[str, Any]):
        """One real run: ``(result, seconds, usage before, events, t0)``."""
        policy = None if search == "blind" else self.trace
        scorer = None if search == "blind" else self.scorer
        if self.trace is not None:
            self.trace.calls.clear()
        before = self.trace.usage.snapshot() if self.trace is not None else Usage()
        t0 = time.perf_counter()
        result = run_search(
            search,
            problem,
            self.task,
            policy,
            scorer,
            Budget(max_expansions=budget),
            self.seed + index,
            **knobs,
        )
        seconds = time.perf_counter() - t0
        events = [] if policy is None else list(self.trace.calls)
        return result, seconds, before, events, t0

    def once(self, search: str, index: int, problem: Problem, budget: int, knobs: dict[str, Any]) -> Outcome:
        result, seconds, _, _, _ = self.run(search, index, problem, budget, knobs)
        cost = dataclasses.replace(result.cost, seconds=seconds)
        return Outcome(bool(result.solved), cost)

    def anytime(
        self, search: str, index: int, problem: Problem, budgets: Sequence[int]
    ) -> tuple[dict[int, Outcome] | None, int | None]:
        """Outcomes at every budget from one run at the largest, and the expansion of the first
        solution; ``None`` outcomes when the call log does not line up with the expansions."""
        top = max(budgets)
        result, seconds, before, events, t0 = self.run(search, index, problem, top, {})
        final = dataclasses.replace(result.cost, seconds=seconds)
        k = first_solution_expansion(result)
        if k is not None and k != result.cost.expansions:
            return None, k  # a batched search: expansions after the solution's
        starts = [(t, u) for method, t, u in events if method != "value"]
        if search != "blind":
            if len(starts) != result.cost.expansions:
                return None, k  # an expansion without exactly one model call
            if self.trace.usage.model_calls - before.model_calls != result.cost.model_calls:
                return None, k
        used = result.cost.expansions
        out = {}
        for b in budgets:
            if (k is not None and k <= b) or used <= b:
                out[b] = Outcome(bool(result.solved) and (k is None or k <= b), final)
            elif search == "blind":
                out[b] = Outcome(False, Cost(expansions=b, seconds=seconds * b / used))
            else:
                t, u = starts[b]  # the call that would have started expansion b + 1
                out[b] = Outcome(False, _usage_cost(before, u, b, t - t0))
        return out, k


def summarize(outcomes: list[Outcome]) -> dict[str, Any]:
    n = len(outcomes)
    total = Cost()
    for o in outcomes:
        total.add(o.cost)
    solved = sum(o.solved for o in outcomes)
    return {
        "n": n,
        "solved": solved,
        "success": round(solved / n, 4) if n else 0.0,
        "mean_cost": {
            "model_calls": round(total.model_calls / n, 2) if n else 0.0,
            "tokens": round(total.tokens / n, 1) if n else 0.0,
            "tokens_generated": round(total.tokens_generated / n, 1) if n else 0.0,
            "tokens_scored": round(total.tokens_scored / n, 1) if n else 0.0,
            "expansions": round(total.expansions / n, 2) if n else 0.0,
        },
        "seconds_per_puzzle": round(total.seconds / n, 4) if n else 0.0,
    }


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


def verify_anytime(
    runner: Runner,
    search: str,
    problems: list[Problem],
    budgets: list[int],
    estimated: dict[int, list[Outcome]],
) -> dict[str, Any]:
    """Real runs at two small budgets vs the prefix estimates of the same puzzles."""
    small = sorted(budgets)[:-1] or sorted(budgets)
    picked = sorted({small[min(1, len(small) - 1)], small[len(small) // 2]})
    fields = ("expansions", "model_calls", "tokens_generated", "tokens_scored")
    checks, mismatches, real_s, est_s = 0, [], 0.0, 0.0
    for b in picked:
        for i, p in enumerate(problems):
            real = runner.once(search, i, p, b, {})
            est = estimated[b][i]
            checks += 1
            real_s += real.cost.seconds
            est_s += est.cost.seconds
            diff = {
                f: [getattr(real.cost, f), getattr(est.cost, f)]
                for f in fields
                if getattr(real.cost, f) != getattr(est.cost, f)
            }
            if real.solved != est.solved:
                diff["solved"] = [real.solved, est.solved]
            if diff:
                mismatches.append({"budget": b, "problem": p.id, "real_vs_estimate": diff})
    return {
        "budgets": picked,
        "puzzles": len(problems),
        "checks": checks,
        "exact_matches": checks - len(mismatches),
        "mismatches": mismatches[:10],
        "seconds_real": round(real_s, 3),
        "seconds_estimated": round(est_s, 3),
    }


# ------------------------------------------------------------------------------------- engine


def engine_figure(
    policy: Any, task_name: str, puzzles: int, expansions: int, batch_size: int, seed: int
) -> dict[str, Any]:
    """Expansions/s of batched prefix-sharing mcts vs one-state-one-candidate-at-a-time mcts."""
    task = get_task(task_name)
    problems = task.problems("test")[:puzzles]

    def measure(pol: Any, bs: int) -> dict[str, Any]:
        scorer = make_scorer("auto", task, pol)
        total = Cost()
        start = time.perf_counter()
        for i, p in enumerate(problems):
            r = run_search(
                "mcts",
                p,
                task,
                pol,
                scorer,
                Budget(max_expansions=expansions),
                seed + i,
                batch_size=bs,
                stop_on_solution=False,
            )
            total.add(r.cost)
        seconds = time.perf_counter() - start
        return {
            "batch_size": bs,
            "expansions": total.expansions,
            "model_calls": total.model_calls,
            "seconds": round(seconds, 3),
            "expansions_per_s": round(total.expansions / seconds, 1) if seconds else 0.0,
        }

    fast = measure(policy, batch_size)
    shared_b1 = measure(policy, 1)
    naive = measure(OneAtATimePolicy(policy), 1)
    ratio = fast["expansions_per_s"] / naive["expansions_per_s"] if naive["expansions_per_s"] else 0.0
    return {
        "task": task_name,
        "puzzles": len(problems),
        "max_expansions": expansions,
        "batched_prefix_shared": fast,
        "batch1_prefix_shared": shared_b1,
        "batch1_one_call_per_candidate": naive,
        "speedup": round(ratio, 2),
        "speedup_from_batching_leaves": round(fast["expansions_per_s"] / shared_b1["expansions_per_s"], 2)
        if shared_b1["expansions_per_s"]
        else 0.0,
        "target_speedup": 10.0,
    }


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
