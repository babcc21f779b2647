"""The shared vocabulary of qstar: problems, states, steps, budgets and costs.

A reasoning problem is a tree. A :class:`Problem` is the root's input, a :class:`State` is a
node (the problem plus the steps taken so far plus the task's exact content, such as the
numbers still left in Game of 24), a :class:`Step` is an edge. Searches spend a
:class:`Budget` and report a :class:`Cost`; :class:`SearchResult` is what every search returns.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from qstar.errors import BudgetError

if TYPE_CHECKING:  # pragma: no cover
    from qstar.search.tree import Tree

__all__ = ["Problem", "Step", "State", "Verdict", "Budget", "Cost", "SearchResult"]


@dataclass(frozen=True)
class Problem:
    """One problem instance of a task.

    ``text`` is the canonical human text ("4 9 10 13", "25 50 75 100 3 6 -> 952",
    "(12+7)*3-5"); ``data`` holds the parsed fields as JSON-compatible values (the
    ``--problems`` JSONL form, e.g. ``{"numbers": [4, 9, 10, 13]}``); ``id`` names its origin
    ("test/901", "file:3").
    """

    task: str
    text: str
    data: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    id: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", MappingProxyType(dict(self.data)))

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "text": self.text, "id": self.id, **dict(self.data)}


@dataclass(frozen=True)
class Step:
    """One reasoning step: an edge of the tree.

    ``text`` is the step exactly as the model writes it, without the trailing newline
    (Game of 24: ``"10 - 4 = 6 (left: 5 6 6)"``). ``logprob`` is the policy's log-probability of
    the text when a model proposed or scored it; it is not part of the step's identity.
    """

    text: str
    logprob: float | None = field(default=None, compare=False)


@dataclass(frozen=True)
class State:
    """A node of the reasoning tree: the problem, the path of steps to it, the exact content.

    ``content`` is the task's own hashable description of where the reasoning stands (for
    Game of 24 the sorted multiset of numbers left as fractions; for ``arith`` the current
    expression). Two states with equal content are transpositions of each other.
    """

    problem: Problem
    steps: tuple[Step, ...] = ()
    content: Hashable = None

    @property
    def depth(self) -> int:
        return len(self.steps)


@dataclass(frozen=True)
class Verdict:
    """A verifier's judgement of a final answer, with the reason when it is rejected."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


def _check_limit(name: str, value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BudgetError(f"budget {name} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise BudgetError(f"budget {name} must be a positive finite number, got {value!r}")


@dataclass(frozen=True)
class Budget:
    """What a search may spend. ``None`` means no limit on that axis; at least one is set.

    An *expansion* means the same thing in every algorithm: one state asked of the policy for
    its next steps (one batched call that scores or samples the children, plus the state's
    value when the algorithm uses one). Checking a terminal state with the verifier is free.
    """

    max_expansions: int | None = 100
    max_tokens: int | None = None
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        _check_limit("max_expansions", self.max_expansions)
        _check_limit("max_tokens", self.max_tokens)
        _check_limit("max_seconds", self.max_seconds)
        if self.max_expansions is not None and int(self.max_expansions) != self.max_expansions:
            raise BudgetError(f"budget max_expansions must be a whole number, got {self.max_expansions!r}")
        if self.max_expansions is None and self.max_tokens is None and self.max_seconds is None:
            raise BudgetError("a budget needs at least one limit (expansions, tokens or seconds)")

    def exhausted(self, cost: Cost) -> bool:
        """True when ``cost`` has reached any limit of this budget."""
        return (
            (self.max_expansions is not None and cost.expansions >= self.max_expansions)
            or (self.max_tokens is not None and cost.tokens >= self.max_tokens)
            or (self.max_seconds is not None and cost.seconds >= self.max_seconds)
        )

    def expansions_left(self, cost: Cost) -> int | None:
        if self.max_expansions is None:
            return None
        return max(0, self.max_expansions - cost.expansions)


@dataclass
class Cost:
    """What a search (or an evaluation) spent. Mutable: it is an account that runs up.

    ``tokens`` = ``tokens_generated + tokens_scored``: every token the model processed as
    output, either sampled or scored as a candidate continuation. Prompt tokens computed once
    and reused through the KV cache are not counted again.
    """

    model_calls: int = 0
    tokens_generated: int = 0
    tokens_scored: int = 0
    expansions: int = 0
    seconds: float = 0.0

    @property
    def tokens(self) -> int:
        return self.tokens_generated + self.tokens_scored

    def add(self, other: Cost) -> Cost:
        self.model_calls += other.model_calls
        self.tokens_generated += other.tokens_generated
        self.tokens_scored += other.tokens_scored
        self.expansions += other.expansions
        self.seconds += other.seconds
        return self

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["tokens"] = self.tokens
        out["seconds"] = round(self.seconds, 6)
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Cost:
        return cls(
            model_calls=int(obj.get("model_calls", 0)),
            tokens_generated=int(obj.get("tokens_generated", 0)),
            tokens_scored=int(obj.get("tokens_scored", 0)),
            expansions=int(obj.get("expansions", 0)),
            seconds=float(obj.get("seconds", 0.0)),
        )


@dataclass
class SearchResult:
    """What every search returns: the answer, the chosen path, the whole tree and the cost.

    ``solved`` is the verifier's verdict on ``answer`` when the task has a test-time verifier,
    else the ground-truth check used for metrics (``None`` when nothing could be checked).
    """

    problem: Problem
    answer: str | None
    steps: list[Step]
    solved: bool | None
    cost: Cost
    method: str = ""
    tree: Tree | None = None
    final_state: State | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self, *, include_tree: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "problem": self.problem.text,
            "task": self.problem.task,
            "method": self.method,
            "answer": self.answer,
            "steps": [s.text for s in self.steps],
            "solved": self.solved,
            "cost": self.cost.to_json(),
        }
        if self.info:
            out["info"] = self.info
        if include_tree and self.tree is not None:
            out["tree"] = self.tree.to_json()
        return out
