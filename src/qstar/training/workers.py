"""The jobs of the training loop: what runs per problem, the pool that runs it, and the
round's two batches of jobs (:func:`collect` for training data, :func:`evaluate` for System 1
and System 2 accuracy).

A job is a frozen dataclass of plain data (the problems as JSON, a checkpoint *path*, seeds,
knobs); a job function maps it to a list of JSON-able dicts, one per problem. Workers read
the policy from the checkpoint path (cached per weights digest), so the same functions can run
inline, in a local process pool (:class:`Workers`, ``--workers N``) or as Ray tasks. Each
problem carries its own seed, so the results do not depend on how problems are cut into jobs
or on the number of workers.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from qstar.rewards.value_head import ValueHeadScorer
from qstar.search.expand import expand, sample_steps
from qstar.search.registry import run_search
from qstar.search.tree import Tree, is_solution
from qstar.tasks.base import Task
from qstar.tasks.registry import get_task
from qstar.training.loop_data import derive_seed, round_problems
from qstar.training.targets import tree_targets
from qstar.types import Budget, Cost, Problem, Step

if TYPE_CHECKING:  # pragma: no cover
    from qstar.training.loop_config import LoopConfig

__all__ = [
    "Job",
    "load_policy",
    "unpack_job",
    "records_cost",
    "search_job",
    "system1_job",
    "Workers",
    "collect",
    "evaluate",
]


@dataclass(frozen=True)
class Job:
    """One unit of work for a worker: ``problems`` are ``(data, id, seed)`` triples (picklable;
    each problem's seed is fixed by the driver, so results do not depend on how jobs are cut)."""

    task: str
    problems: tuple[tuple[dict[str, Any], str, int], ...]
    checkpoint: str
    search: str = "mcts"
    budget: int = 1
    knobs: dict[str, Any] = field(default_factory=dict)
    targets: dict[str, Any] | None = None  # tree_targets keywords; None = evaluation only
    keep_trees: int = 0  # the trees of this many leading problems come back as JSON
    samples: int = 1
    sampler: str = "legal"
    scorer: str = "value"  # distillation teachers: "value" (the value head) or "lookahead" over it

    @staticmethod
    def pack(
        problems: Sequence[Problem], seeds: Sequence[int]
    ) -> tuple[tuple[dict[str, Any], str, int], ...]:
        return tuple((dict(p.data), p.id, s) for p, s in zip(problems, seeds, strict=True))


_POLICIES: dict[tuple[str, str, str], Any] = {}


def load_policy(checkpoint: str):
    """The tiny GPT of a checkpoint directory, cached per path and weights digest, on the device
    ``$QSTAR_DEVICE`` names (``cpu`` when unset; e.g. ``cuda`` to search and evaluate on a GPU)."""
    from qstar.policy.tinygpt.policy import TinyGPTPolicy

    meta = json.loads((Path(checkpoint) / "config.json").read_text())
    device = os.environ.get("QSTAR_DEVICE", "cpu")
    key = (str(checkpoint), str(meta.get("weights_sha256")), device)
    if key not in _POLICIES:
        _POLICIES.clear()
        _POLICIES[key] = TinyGPTPolicy.load(checkpoint, device=device)
    return _POLICIES[key]


def unpack_job(job: Job) -> tuple[Task, list[Problem], list[int]]:
    task = get_task(job.task)
    problems = [task.problem_from_json(data, id=pid) for data, pid, _ in job.problems]
    return task, problems, [seed for _, _, seed in job.problems]


def records_cost(records: Sequence[dict[str, Any]]) -> Cost:
    """The summed ``cost`` of job records (every problem, every run of it, together)."""
    cost = Cost()
    for record in records:
        cost.add(Cost.from_json(record["cost"]))
    return cost


def search_job(job: Job) -> list[dict[str, Any]]:
    """Search each problem of ``job`` with the checkpoint's policy and value head; return the
    verdict, the cost and (for training) the tree's targets."""
    start = time.process_time()
    task, problems, seeds = unpack_job(job)
    policy = load_policy(job.checkpoint)
    scorer = ValueHeadScorer(task, policy)
    out = []
    for index, (problem, seed) in enumerate(zip(problems, seeds, strict=True)):
        budget = Budget(max_expansions=job.budget)
        result = run_search(job.search, problem, task, policy, scorer, budget, seed, **job.knobs)
        tree = result.tree
        assert tree is not None
        record: dict[str, Any] = {
            "id": problem.id,
            "text": problem.text,
            "solved": bool(result.solved),  # the answer the search returned
            "found": any(is_solution(tree, n) for n in range(len(tree))),  # anywhere in its tree
            "cost": result.cost.to_json(),
            "num_nodes": len(tree),
        }
        if job.targets is not None:
            exhaustive = task.legal_steps(tree.state[0]) is not None
            add_targets(
                record, tree, job.targets, exhaustive, ValueHeadScorer(task, policy, cost=result.cost)
            )
        if index < job.keep_trees:
            record["tree"] = tree.to_json()
        out.append(record)
    out[-1]["cpu_seconds"] = time.process_time() - start
    return out


def _walk(task: Task, states: list, choose: Callable[[list[int]], list[Step | None]]) -> list:
    """Advance every non-terminal state by ``choose`` (one batched call per depth) until each
    is terminal, fails (``None``) or ``task.max_steps`` is reached."""
    live = [i for i, s in enumerate(states) if not task.is_terminal(s)]
    for _ in range(task.max_steps):
        if not live:
            break
        nxt = []
        for i, step in zip(live, choose(live), strict=True):
            if step is not None:
                states[i] = task.apply(states[i], step)
                if not task.is_terminal(states[i]):
                    nxt.append(i)
        live = nxt
    return states


def system1_job(job: Job) -> list[dict[str, Any]]:
    """System 1: every problem decoded greedily (one step line per call, no search), all
    problems of the job batched into one ``generate`` call per depth; exactly the
    :func:`~qstar.search.sampling.greedy` search, batched across problems.

    Where the task enumerates its legal steps, ``solved_legal`` is also reported: each step is
    the legal step the policy scores highest (greedy decoding restricted to legal steps, still
    one policy call per step and no lookahead). It separates *knowing which step to take* from
    *writing its arithmetic without a slip*."""
    start = time.process_time()
    task, problems, seeds = unpack_job(job)
    policy = load_policy(job.checkpoint)
    cost = Cost()
    rng = np.random.default_rng(seeds[0] if seeds else 0)
    states = [task.initial_state(p) for p in problems]

    def write(live: list[int]) -> list[Step | None]:
        return sample_steps(task, policy, [states[i] for i in live], temperature=0.0, cost=cost, rng=rng)

    _walk(task, states, write)
    out = [
        {"id": p.id, "text": p.text, "solved": task.is_terminal(s) and task.outcome(s) == 1.0}
        for p, s in zip(problems, states, strict=True)
    ]
    if problems and task.legal_steps(task.initial_state(problems[0])) is not None:
        legal_states = [task.initial_state(p) for p in problems]

        def pick(live: list[int]) -> list[Step | None]:
            kids = expand(task, policy, [legal_states[i] for i in live], cost=Cost())
            return [max(ch, key=lambda sp: sp[1])[0] if ch else None for ch in kids]

        _walk(task, legal_states, pick)
        for record, s in zip(out, legal_states, strict=True):
            record["solved_legal"] = task.is_terminal(s) and task.outcome(s) == 1.0
    if out:
        out[0]["tokens"] = cost.tokens
        out[-1]["cpu_seconds"] = time.process_time() - start
    return out


def _call(fn_job: tuple[Callable[[Job], list[dict[str, Any]]], Job]) -> list[dict[str, Any]]:
    fn, job = fn_job
    return fn(job)


def _init_worker() -> None:
    torch.set_num_threads(1)


class Workers:
    """Runs jobs inline (``num_workers=1``) or in a process pool; results keep the job order.

    ``spawn`` workers (a fresh interpreter, no forked torch thread pools) each keep the policy
    of the current checkpoint loaded between jobs."""

    def __init__(self, num_workers: int) -> None:
        self.num_workers = num_workers
        self.pool = None
        if num_workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            ctx = multiprocessing.get_context("spawn")
            self.pool = ProcessPoolExecutor(num_workers, mp_context=ctx, initializer=_init_worker)

    def map(self, fn: Callable[[Job], list[dict[str, Any]]], jobs: Sequence[Job]) -> list[dict[str, Any]]:
        if self.pool is None:
            return [r for job in jobs for r in fn(job)]
        return [r for chunk in self.pool.map(_call, [(fn, job) for job in jobs]) for r in chunk]

    def split(self, problems: Sequence[Problem], per_job: int | None = None) -> list[list[Problem]]:
        """Problems cut into jobs: ``per_job`` each, or one slice per worker (times 4)."""
        size = per_job or max(1, -(-len(problems) // (self.num_workers * 4 if self.pool else 1)))
        return [list(problems[i : i + size]) for i in range(0, len(problems), size)]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None


# -- collect and evaluate ---------------------------------------------------------------------------
def add_targets(
    record: dict[str, Any], tree: Tree, targets: dict[str, Any], exhaustive: bool, scorer: ValueHeadScorer
) -> None:
    """Put the tree's ``policy`` and ``values`` targets in a job's record. ``"lookahead"``
    targets first value the children the search left unvalued (:func:`value_children`); those
    calls go to the scorer's cost, so the record's ``cost`` is written again."""
    if "lookahead" in (targets["policy_mode"], targets["value_mode"]):
        value_children(tree, scorer)
        record["cost"] = scorer.cost.to_json()
    tt = tree_targets(tree, exhaustive=exhaustive, **targets)
    record["policy"], record["values"] = tt.policy, tt.values


def value_children(tree: Tree, scorer: ValueHeadScorer) -> None:
    """Give every non-terminal child of an expanded node that has no value yet the scorer's
    value (one batched call, charged to the scorer's cost): what the ``"lookahead"`` policy
    targets of :mod:`qstar.training.targets` need where the search did not value every child
    (sampling, MCTS)."""
    todo = [
        c
        for n in range(len(tree))
        if tree.expanded[n]
        for c in tree.children[n]
        if tree.value[c] is None and not tree.terminal[c]
    ]
    for c, v in zip(todo, scorer.value([tree.state[c] for c in todo]), strict=True):
        tree.value[c] = v


#: Problems per job: fixed, so results never depend on the number of workers.
SEARCH_PER_JOB = 8
SYSTEM1_PER_JOB = 25
#: System-2 evaluation: the plain searches (no noise, stop at the first verified answer).
EVAL_KNOBS: dict[str, dict[str, Any]] = {"mcts": {}, "qstar": {}}


def _job_fn(config: LoopConfig) -> tuple[Callable[[Job], list[dict[str, Any]]], dict[str, Any]]:
    targets = {
        "policy_mode": config.policy_target,
        "value_mode": config.value_target,
        "temperature": config.lookahead_temperature
        if config.policy_target == "lookahead"
        else config.visit_temperature,
        "min_visits": config.min_visits,
        "all_children": True,
        "discount": config.value_discount,
    }
    if config.method == "rft":
        from qstar.training.rft import rft_job

        return rft_job, {"samples": config.samples_per_problem, "sampler": config.sampler, "targets": targets}
    knobs = {"search": config.search, "budget": config.search_budget, "knobs": config.knobs}
    return search_job, {**knobs, "targets": targets}


def _timed(
    workers: Workers, fn: Callable[[Job], list[dict[str, Any]]], jobs: list[Job]
) -> tuple[list, float]:
    """Run jobs; CPU seconds = this process's plus, with a pool, what the workers report."""
    start = time.process_time()
    records = workers.map(fn, jobs)
    cpu = time.process_time() - start
    if workers.pool is not None:
        cpu += sum(r.get("cpu_seconds", 0.0) for r in records)
    return records, cpu


def collect(
    config: LoopConfig,
    task: Task,
    workers: Workers,
    checkpoint: str,
    round_index: int,
    train_seen: int,
    held_out: frozenset[str],
) -> dict[str, Any]:
    """Search (or sample, for RFT) this round's problems with the checkpoint's policy.

    With ``max_tokens_per_round`` problems go in waves of ``wave_size`` until the tokens are
    spent. Returns ``{"records", "train_used", "cpu_seconds"}``."""
    problems = round_problems(
        task,
        source=config.problem_source,
        count=config.problems_per_round,
        seed=config.seed,
        round_index=round_index,
        start=train_seen,
        held_out=held_out,
    )
    seeds = [derive_seed(config.seed, "collect", round_index, i) for i in range(len(problems))]
    fn, kwargs = _job_fn(config)
    wave = config.wave_size if config.max_tokens_per_round else len(problems)
    records: list[dict[str, Any]] = []
    cpu = 0.0
    tokens = 0
    for start in range(0, len(problems), wave):
        jobs = []
        for lo in range(start, min(start + wave, len(problems)), SEARCH_PER_JOB):
            hi = min(lo + SEARCH_PER_JOB, start + wave, len(problems))
            keep = max(0, config.num_saved_trees - lo)
            jobs.append(
                Job(task.name, Job.pack(problems[lo:hi], seeds[lo:hi]), checkpoint, keep_trees=keep, **kwargs)
            )
        got, spent = _timed(workers, fn, jobs)
        records += got
        cpu += spent
        tokens += sum(r["cost"]["tokens"] for r in got)
        if config.max_tokens_per_round and tokens >= config.max_tokens_per_round:
            break
    train_used = sum(1 for r in records if not r["id"].startswith("gen/"))
    return {"records": records, "train_used": train_used, "cpu_seconds": cpu}


def evaluate(
    config: LoopConfig, task: Task, workers: Workers, checkpoint: str, problems: Sequence[Problem], split: str
) -> dict[str, Any]:
    """System 1 (greedy, batched) and System 2 (``eval_search`` at ``eval_budget`` expansions)
    accuracy on ``problems``; the same seeds every round, so rounds are comparable."""
    seeds = [derive_seed(config.seed, "eval", i) for i in range(len(problems))]

    def jobs(per_job: int, **kw: Any) -> list[Job]:
        return [
            Job(task.name, Job.pack(problems[i : i + per_job], seeds[i : i + per_job]), checkpoint, **kw)
            for i in range(0, len(problems), per_job)
        ]

    s1, cpu1 = _timed(workers, system1_job, jobs(SYSTEM1_PER_JOB))
    knobs = EVAL_KNOBS[config.eval_search]
    s2, cpu2 = _timed(
        workers,
        search_job,
        jobs(SEARCH_PER_JOB, search=config.eval_search, budget=config.eval_budget, knobs=knobs),
    )
    n = max(1, len(problems))
    return {
        f"system1_{split}_acc": sum(r["solved"] for r in s1) / n,
        **(
            {f"system1_legal_{split}_acc": sum(r["solved_legal"] for r in s1) / n}
            if s1 and "solved_legal" in s1[0]
            else {}
        ),
        f"system2_{split}_acc": sum(r["solved"] for r in s2) / n,
        f"system2_{split}_expansions": sum(r["cost"]["expansions"] for r in s2) / n,
        f"system2_{split}_seconds_per_problem": sum(r["cost"]["seconds"] for r in s2) / n,
        f"system2_{split}_cpu_seconds_per_problem": cpu2 / n,
        "eval_cpu_seconds": cpu1 + cpu2,
    }
