"""The RFT / STaR baseline: sample paths, keep the verified ones, fine-tune, repeat.

Rejection-sampling fine-tuning (Yuan et al. 2023, arXiv 2308.01825) and STaR (Zelikman et al.
2022, arXiv 2203.14465) without rationalisation: each round samples ``k`` paths per training
problem from the current policy, keeps the paths the verifier accepts as policy targets (the
``"verified"`` target of :mod:`qstar.training.targets`), and trains on them. The value head
learns the Monte-Carlo return of the sampled paths (``value_target="q"``: the share of paths
through a state that ended verified, as Math-Shepherd's soft label), so the baseline can be
evaluated with search too. Everything else (replay, update, evaluation, run directory, resume)
is the expert-iteration loop's, run with ``method="rft"``: the only difference between the two
methods is *how the data is made*, sampling or search. Compare them at equal tokens with
``max_tokens_per_round``.

Samplers (``sampler``):

- ``"legal"``: each step is drawn from the policy's prior over the task's legal steps (the
  same prior the searches use: one ``score`` call per distinct state, the softmax of the steps'
  log-probabilities). From a random model this still walks legal paths, so RFT can start.
- ``"generate"``: each step is the line the model writes at temperature 1 (a line that does
  not parse or breaks the rules ends the path): STaR as published, which needs a model that
  already writes legal steps.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from qstar.policy.base import Policy
from qstar.rewards.value_head import ValueHeadScorer
from qstar.search.expand import expand, sample_steps
from qstar.search.tree import Tree, add_children, backup, find_child, is_solution, new_tree
from qstar.tasks.base import Task
from qstar.training.expert_iteration import LoopConfig, run_loop
from qstar.training.workers import Job, add_targets, load_policy, unpack_job
from qstar.types import Cost, Problem

__all__ = ["SAMPLERS", "sample_paths", "rft_job", "rft_config", "run_rft"]

SAMPLERS = ("legal", "generate")


def sample_paths(
    task: Task,
    policy: Policy,
    problem: Problem,
    *,
    num_paths: int,
    sampler: str = "legal",
    temperature: float = 1.0,
    rng: np.random.Generator,
) -> tuple[Tree, Cost]:
    """``num_paths`` paths from the root, advanced in lockstep one depth at a time; paths that
    share a prefix share the tree's nodes. ``visits``/``q`` of a node = the number of paths
    through it and the share of them that ended verified."""
    tree = new_tree(task, problem, f"rft-{sampler}")
    cost = Cost()
    ends = [0] * num_paths
    alive = [True] * num_paths
    for _ in range(task.max_steps):
        live = [j for j in range(num_paths) if alive[j] and not tree.terminal[ends[j]]]
        if not live:
            break
        if sampler == "legal":
            new = sorted({ends[j] for j in live if not tree.expanded[ends[j]]})
            kids = expand(task, policy, [tree.state[n] for n in new], cost=cost, rng=rng)
            for node, children in zip(new, kids, strict=True):
                add_children(tree, task, node, children)
            for j in live:
                children = tree.children[ends[j]]
                if not children:
                    alive[j] = False
                    continue
                prior = np.array([tree.prior[c] for c in children]) ** (1.0 / temperature)
                ends[j] = children[int(rng.choice(len(children), p=prior / prior.sum()))]
        else:
            steps = sample_steps(
                task, policy, [tree.state[ends[j]] for j in live], temperature=temperature, cost=cost, rng=rng
            )
            for j, step in zip(live, steps, strict=True):
                if step is None:
                    alive[j] = False
                    continue
                child = find_child(tree, ends[j], step.text)
                if child is None:
                    (child,) = add_children(
                        tree, task, ends[j], [(step, float(np.exp(min(0.0, step.logprob or 0.0))))]
                    )
                ends[j] = child
    for end in ends:
        backup(tree, tree.path_nodes(end), 1.0 if is_solution(tree, end) else 0.0)
    return tree, cost


def rft_job(job: Job) -> list[dict[str, Any]]:
    """Sample ``job.samples`` paths per problem; return the verdict, the cost and the targets
    (the verified paths and the Monte-Carlo values) of each problem."""
    start = time.process_time()
    task, problems, seeds = unpack_job(job)
    policy = load_policy(job.checkpoint)
    out = []
    for index, (problem, seed) in enumerate(zip(problems, seeds, strict=True)):
        began = time.perf_counter()
        tree, cost = sample_paths(
            task, policy, problem, num_paths=job.samples, sampler=job.sampler, rng=np.random.default_rng(seed)
        )
        cost.seconds = time.perf_counter() - began
        record: dict[str, Any] = {
            "id": problem.id,
            "text": problem.text,
            "solved": any(is_solution(tree, i) for i in range(len(tree))),
            "found": any(is_solution(tree, i) for i in range(len(tree))),
            "cost": cost.to_json(),
            "num_nodes": len(tree),
        }
        if job.targets is not None:
            # Sampled expansions list every legal step only with the "legal" sampler.
            exhaustive = job.sampler == "legal" and task.legal_steps(tree.state[0]) is not None
            add_targets(record, tree, job.targets, exhaustive, ValueHeadScorer(task, policy, cost=cost))
        if index < job.keep_trees:
            record["tree"] = tree.to_json()
        out.append(record)
    out[-1]["cpu_seconds"] = time.process_time() - start
    return out


def rft_config(base: LoopConfig | None = None, **changes: Any) -> LoopConfig:
    """The RFT baseline's config: ``base`` (default settings otherwise) with ``method="rft"``,
    the verified-paths policy target and Monte-Carlo value targets, plus ``changes``."""
    defaults = {"method": "rft", "policy_target": "verified", "value_target": "q"}
    return replace(base or LoopConfig(), **{**defaults, **changes})


def run_rft(config: LoopConfig, run_dir: str | Path, **kwargs: Any) -> list[dict[str, Any]]:
    """Run (or resume) the RFT baseline: :func:`~qstar.training.expert_iteration.run_loop` with
    ``method="rft"``."""
    return run_loop(replace(config, method="rft"), run_dir, **kwargs)
