"""The search ladder's runner: one search over one task's problems, with the anytime trick.

Used by :mod:`benchmarks.search_ladder` (see its docstring for the anytime trick and the
``--verify`` check); kept apart so each file reads top to bottom.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from qstar.policy.base import Usage
from qstar.rewards.registry import make_scorer
from qstar.search.registry import run_search
from qstar.types import Budget, Cost, Problem, SearchResult

__all__ = ["TracePolicy", "Outcome", "first_solution_expansion", "Runner", "summarize", "verify_anytime"]


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


def _usage_cost(before: Usage, after: Usage, expansions: int, seconds: float) -> Cost:
    return Cost(
        model_calls=after.model_calls - before.model_calls,
        tokens_generated=after.tokens_generated - before.tokens_generated,
        tokens_scored=after.tokens_scored - before.tokens_scored,
        expansions=expansions,
        seconds=seconds,
    )


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
