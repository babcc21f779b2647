"""Run one search over many problems and account for it: the engine of ``qstar eval``.

Every problem is solved independently from its own seed (``seed + index``), so a run is
reproducible and any subset can be re-run alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from qstar.policy.base import Policy
from qstar.rewards.base import Scorer
from qstar.search.registry import run_search
from qstar.tasks.base import Task
from qstar.types import Budget, Cost, Problem, SearchResult

__all__ = ["EvalReport", "evaluate"]


@dataclass
class EvalReport:
    """Accuracy and cost of one search over a list of problems."""

    task: str
    search: str
    budget: Budget
    results: list[SearchResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def n(self) -> int:
        return len(self.results)

    @property
    def num_solved(self) -> int:
        return sum(1 for r in self.results if r.solved)

    @property
    def accuracy(self) -> float:
        return self.num_solved / self.n if self.n else 0.0

    @property
    def cost(self) -> Cost:
        total = Cost()
        for r in self.results:
            total.add(r.cost)
        return total

    def to_json(self, *, include_results: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "task": self.task,
            "search": self.search,
            "budget": {
                "max_expansions": self.budget.max_expansions,
                "max_tokens": self.budget.max_tokens,
                "max_seconds": self.budget.max_seconds,
            },
            "accuracy": self.accuracy,
            "n": self.n,
            "solved": self.num_solved,
            "cost": self.cost.to_json(),
            "seconds": round(self.seconds, 3),
            "seconds_per_problem": round(self.seconds / self.n, 4) if self.n else 0.0,
        }
        if include_results:
            out["results"] = [{"id": r.problem.id, **r.to_json()} for r in self.results]
        return out


def evaluate(
    problems: Sequence[Problem],
    task: Task,
    policy: Policy | None,
    scorer: Scorer | None,
    *,
    search: str,
    budget: Budget,
    seed: int = 0,
    knobs: dict[str, Any] | None = None,
    on_result: Callable[[SearchResult], None] | None = None,
) -> EvalReport:
    """Search every problem; ``on_result`` is called after each (progress bars hook in here)."""
    report = EvalReport(task.name, search, budget)
    start = time.perf_counter()
    for i, problem in enumerate(problems):
        result = run_search(search, problem, task, policy, scorer, budget, seed=seed + i, **(knobs or {}))
        result.tree = None  # trees of a whole eval would hold every state in memory
        report.results.append(result)
        if on_result is not None:
            on_result(result)
    report.seconds = time.perf_counter() - start
    return report
