"""``"reasoning": {...}`` requests: a problem in, a search over reasoning steps, an answer out.

The last user message is read as a problem of ``reasoning.task`` (``task.parse_problem``), the
search that ``reasoning.mode`` names runs with ``reasoning.budget`` node expansions (and the
server's time limit), and the reply holds:

- ``content``: one line per reasoning step, then ``Answer: <final answer>`` (for game24 the
  final expression), or ``No final answer reached.`` when the search ended without one;
- ``qstar``: the mode and search, the answer, the verifier's verdict where the task has a
  test-time verifier (``null`` otherwise: GSM8K's answer key is never used at serving time),
  the cost (:class:`~qstar.types.Cost` JSON) and ``tree_id`` for ``GET /v1/trees/{tree_id}``.

Usage: ``prompt_tokens`` = prompt tokens the model read, ``completion_tokens`` = tokens it
generated plus tokens it scored (the search's ``cost.tokens``).
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from qstar.policy.base import Policy
from qstar.rewards.registry import make_scorer
from qstar.search.registry import run_search
from qstar.serve.batching import LockedPolicy
from qstar.serve.schemas import MODES, ReasoningOptions, ServeConfig
from qstar.tasks.registry import get_task
from qstar.types import Budget

__all__ = ["TreeStore", "ReasoningReply", "run_reasoning"]


class TreeStore:
    """The last ``max_trees`` search trees as JSON, by id (oldest dropped first); thread-safe."""

    def __init__(self, max_trees: int = 256) -> None:
        self.max_trees = max_trees
        self._trees: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, tree_json: dict[str, Any]) -> str:
        tree_id = f"tree-{uuid.uuid4().hex[:16]}"
        with self._lock:
            self._trees[tree_id] = tree_json
            while len(self._trees) > self.max_trees:
                self._trees.popitem(last=False)
        return tree_id

    def get(self, tree_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._trees.get(tree_id)

    def __len__(self) -> int:
        return len(self._trees)


@dataclass
class ReasoningReply:
    """What one reasoning request produced (see module docstring)."""

    steps: list[str]
    answer: str | None
    qstar: dict[str, Any]
    prompt_tokens: int
    completion_tokens: int

    @property
    def content(self) -> str:
        lines = list(self.steps)
        lines.append(f"Answer: {self.answer}" if self.answer is not None else "No final answer reached.")
        return "\n".join(lines)

    @property
    def finish_reason(self) -> str:
        return "stop" if self.answer is not None else "length"


def run_reasoning(
    policy: Policy,
    lock: threading.Lock,
    problem_text: str,
    options: ReasoningOptions,
    config: ServeConfig,
    trees: TreeStore,
    *,
    seed: int | None = None,
) -> ReasoningReply:
    """Run one reasoning request (blocking: call it from a worker thread)."""
    task = get_task(options.task or config.default_task)
    problem = task.parse_problem(problem_text.strip())
    search = MODES[options.mode]
    budget = Budget(
        max_expansions=options.budget or config.default_budget, max_seconds=config.max_search_seconds
    )
    model = LockedPolicy(policy, lock)
    scorer = make_scorer(config.scorer, task, model)
    run_seed = options.seed if options.seed is not None else (seed if seed is not None else config.seed)
    result = run_search(search, problem, task, model, scorer, budget, seed=run_seed)
    tree_id = trees.put(result.tree.to_json()) if result.tree is not None else None
    verdict = None
    if task.has_test_time_verifier:
        if result.answer is None:
            verdict = {"ok": False, "reason": "the search reached no final answer"}
        else:
            checked = task.verify(problem, result.answer)
            verdict = {"ok": checked.ok, "reason": checked.reason}
    qstar = {
        "mode": options.mode,
        "search": search,
        "task": task.name,
        "problem": problem.text,
        "steps": [s.text for s in result.steps],
        "answer": result.answer,
        "verified": None if verdict is None else verdict["ok"],
        "verdict": verdict,
        "budget": budget.max_expansions,
        "cost": result.cost.to_json(),
        "tree_id": tree_id,
    }
    return ReasoningReply(
        steps=[s.text for s in result.steps],
        answer=result.answer,
        qstar=qstar,
        prompt_tokens=model.usage.tokens_prompt,
        completion_tokens=model.usage.tokens_generated + model.usage.tokens_scored,
    )
