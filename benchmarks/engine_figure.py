"""The engine figure of the search ladder: expansions/second of batched, prefix-sharing mcts
against the same search sending every candidate as its own model call.

Used by :mod:`benchmarks.search_ladder` (``--engine-puzzles``); see its docstring.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from qstar.policy.base import Usage
from qstar.rewards.registry import make_scorer
from qstar.search.registry import run_search
from qstar.tasks.registry import get_task
from qstar.types import Budget, Cost

__all__ = ["OneAtATimePolicy", "engine_figure"]


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
