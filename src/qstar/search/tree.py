"""The search tree: one dataclass of parallel lists that every algorithm grows.

As in mctx (DeepMind), a tree is plain storage and the algorithms are functions over it. Node
``i`` is the ``i``-th node created; the root is node 0 and its parent is ``-1``. Node fields:

==============  ==================================================================================
``parent``      parent id (``-1`` for the root)
``step``        the :class:`~qstar.types.Step` from the parent (``None`` for the root)
``state``       the :class:`~qstar.types.State` (``None`` in a tree read from JSON without a task)
``text``        ``task.render(state)``: the prompt the policy saw
``key``         ``str(task.state_key(state))``: equal keys = transpositions
``children``    child ids in creation order
``prior``       the policy's probability of the step among its siblings (1.0 for the root)
``value``       the scorer's (or verifier's) value of the state, ``None`` if never valued
``q``           MCTS: mean of the values backed up through the node; ``None`` if never visited
``visits``      MCTS visit count; sampling searches count the paths through the node
``terminal``    ``task.is_terminal(state)``
``outcome``     the test-time verifier's verdict on a terminal state (``None`` otherwise or when
                the task has no test-time verifier)
``expanded``    the node was asked of the policy for children (an *expansion*)
``flags``       labels an algorithm attached: ``"transposition"``, ``"pruned"``, ``"dead_end"``,
                ``"duplicate"``, ``"invalid_step"``, ``"selected"``
``extra``       per-node numbers of one algorithm (Q*: ``g``, ``h``, ``f``; beam: ``score``)
==============  ==================================================================================

Tree-level: ``problem``, ``task_name``, ``method``, ``chosen`` (node ids of the returned path,
root first) and ``expansion_order`` (node ids in the order they were expanded).

JSON schema (:meth:`Tree.to_json`, ``"schema": "qstar.tree/1"``)::

    {"schema": "qstar.tree/1", "task": str, "method": str,
     "problem": {"task", "text", "id", ...problem.data},
     "chosen": [int], "expansion_order": [int],
     "nodes": [{"id": int, "parent": int | null, "step": str | null, "logprob": float | null,
                "state": str, "key": str, "prior": float, "value": float | null,
                "q": float | null, "visits": int, "terminal": bool, "outcome": float | null,
                "expanded": bool, "flags": [str], "extra": {str: JSON}}]}

Children are not stored (they are the nodes whose ``parent`` is the node, in id order).
``Tree.from_json(obj, task)`` rebuilds the states by replaying the steps when a task is given;
``to_json`` of what ``from_json`` read is identical to the original.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from qstar.errors import ConfigError
from qstar.tasks.base import Task
from qstar.types import Cost, Problem, SearchResult, State, Step

__all__ = [
    "SCHEMA",
    "Tree",
    "new_tree",
    "add_children",
    "find_child",
    "backup",
    "is_solution",
    "aggregate",
    "AGGREGATES",
    "best_node",
    "most_visited_leaf",
    "make_result",
]

SCHEMA = "qstar.tree/1"
AGGREGATES = ("last", "min", "mean", "logprob")


@dataclass
class Tree:
    """Storage of a search tree (see module docstring)."""

    problem: Problem
    task_name: str
    method: str = ""
    parent: list[int] = field(default_factory=list)
    step: list[Step | None] = field(default_factory=list)
    state: list[State | None] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    key: list[str] = field(default_factory=list)
    children: list[list[int]] = field(default_factory=list)
    prior: list[float] = field(default_factory=list)
    value: list[float | None] = field(default_factory=list)
    q: list[float | None] = field(default_factory=list)
    visits: list[int] = field(default_factory=list)
    terminal: list[bool] = field(default_factory=list)
    outcome: list[float | None] = field(default_factory=list)
    expanded: list[bool] = field(default_factory=list)
    flags: list[list[str]] = field(default_factory=list)
    extra: list[dict[str, Any]] = field(default_factory=list)
    chosen: list[int] = field(default_factory=list)
    expansion_order: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.parent)

    def add_node(
        self,
        parent: int,
        step: Step | None,
        state: State | None,
        *,
        text: str,
        key: str,
        prior: float = 1.0,
        terminal: bool = False,
        outcome: float | None = None,
    ) -> int:
        node = len(self.parent)
        self.parent.append(parent)
        self.step.append(step)
        self.state.append(state)
        self.text.append(text)
        self.key.append(key)
        self.children.append([])
        self.prior.append(float(prior))
        self.value.append(None)
        self.q.append(None)
        self.visits.append(0)
        self.terminal.append(bool(terminal))
        self.outcome.append(None if outcome is None else float(outcome))
        self.expanded.append(False)
        self.flags.append([])
        self.extra.append({})
        if parent >= 0:
            self.children[parent].append(node)
        return node

    def flag(self, node: int, name: str) -> None:
        if name not in self.flags[node]:
            self.flags[node].append(name)

    def depth(self, node: int) -> int:
        return len(self.path_nodes(node)) - 1

    def path_nodes(self, node: int) -> list[int]:
        """Node ids from the root to ``node``, both included."""
        out = [node]
        while self.parent[out[-1]] >= 0:
            out.append(self.parent[out[-1]])
        return out[::-1]

    def path_to(self, node: int) -> list[Step]:
        """The steps from the root to ``node``."""
        return [s for s in (self.step[i] for i in self.path_nodes(node)[1:]) if s is not None]

    # -- JSON -----------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        nodes = []
        for i in range(len(self)):
            step = self.step[i]
            nodes.append(
                {
                    "id": i,
                    "parent": None if self.parent[i] < 0 else self.parent[i],
                    "step": None if step is None else step.text,
                    "logprob": None if step is None else step.logprob,
                    "state": self.text[i],
                    "key": self.key[i],
                    "prior": self.prior[i],
                    "value": self.value[i],
                    "q": self.q[i],
                    "visits": self.visits[i],
                    "terminal": self.terminal[i],
                    "outcome": self.outcome[i],
                    "expanded": self.expanded[i],
                    "flags": list(self.flags[i]),
                    "extra": dict(self.extra[i]),
                }
            )
        return {
            "schema": SCHEMA,
            "task": self.task_name,
            "method": self.method,
            "problem": self.problem.to_json(),
            "chosen": list(self.chosen),
            "expansion_order": list(self.expansion_order),
            "nodes": nodes,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any], task: Task | None = None) -> Tree:
        """Read :meth:`to_json` output; with ``task`` the states are rebuilt from the steps."""
        if obj.get("schema") != SCHEMA:
            raise ConfigError(f"not a qstar tree: expected schema {SCHEMA!r}, got {obj.get('schema')!r}")
        data = dict(obj["problem"])
        name, text, pid = data.pop("task"), data.pop("text"), data.pop("id", "")
        problem = Problem(name, text, data, id=pid)
        tree = cls(problem, obj["task"], obj.get("method", ""))
        for i, n in enumerate(obj["nodes"]):
            if n["id"] != i:
                raise ConfigError(f"tree JSON: node {i} has id {n['id']}; nodes must be listed in id order")
            parent = -1 if n["parent"] is None else int(n["parent"])
            step = None if n["step"] is None else Step(n["step"], n["logprob"])
            state = None
            if task is not None:
                state = task.initial_state(problem) if parent < 0 else task.apply(tree.state[parent], step)
            node = tree.add_node(
                parent,
                step,
                state,
                text=n["state"],
                key=n["key"],
                prior=n["prior"],
                terminal=n["terminal"],
                outcome=n["outcome"],
            )
            tree.value[node] = n["value"]
            tree.q[node] = n["q"]
            tree.visits[node] = int(n["visits"])
            tree.expanded[node] = bool(n["expanded"])
            tree.flags[node] = list(n["flags"])
            tree.extra[node] = dict(n["extra"])
        tree.chosen = [int(i) for i in obj.get("chosen", [])]
        tree.expansion_order = [int(i) for i in obj.get("expansion_order", [])]
        return tree


# -- growing ----------------------------------------------------------------------------------
def _node_fields(task: Task, state: State) -> dict[str, Any]:
    terminal = task.is_terminal(state)
    # Checking a finished state with the verifier is free, but only where a user could do it.
    outcome = task.outcome(state) if terminal and task.has_test_time_verifier else None
    return {
        "text": task.render(state),
        "key": str(task.state_key(state)),
        "terminal": terminal,
        "outcome": outcome,
    }


def new_tree(task: Task, problem: Problem, method: str) -> Tree:
    """A tree holding only the root, ``task.initial_state(problem)``."""
    tree = Tree(problem, task.name, method)
    root = task.initial_state(problem)
    tree.add_node(-1, None, root, **_node_fields(task, root))
    return tree


def add_children(tree: Tree, task: Task, node: int, children: Sequence[tuple[Step, float]]) -> list[int]:
    """Record the expansion of ``node``: mark it expanded and add one child per (step, prior)."""
    tree.expanded[node] = True
    tree.expansion_order.append(node)
    state = tree.state[node]
    out = []
    for step, prior in children:
        child = task.apply(state, step)
        out.append(tree.add_node(node, step, child, prior=prior, **_node_fields(task, child)))
    if not children:
        tree.flag(node, "dead_end")
    return out


def find_child(tree: Tree, node: int, step_text: str) -> int | None:
    return next((c for c in tree.children[node] if tree.step[c].text == step_text), None)


def backup(tree: Tree, nodes: Sequence[int], value: float) -> None:
    """Add one visit with ``value`` to every node of a path: ``q <- (q * n + value) / (n + 1)``
    (the running mean of mctx's ``backward``; single agent, so no sign flip)."""
    for node in nodes:
        n = tree.visits[node]
        q = tree.q[node] or 0.0
        tree.q[node] = (q * n + value) / (n + 1)
        tree.visits[node] = n + 1


def is_solution(tree: Tree, node: int) -> bool:
    """True when the test-time verifier accepted this terminal node."""
    outcome = tree.outcome[node]
    return outcome is not None and outcome >= 1.0


def aggregate(tree: Tree, node: int, how: str) -> float:
    """Utility of the path to ``node``: ``last``/``min``/``mean`` of the values of the states
    after each step (the root has none), or ``logprob``, the sum of the steps' log-probabilities."""
    path = tree.path_nodes(node)[1:]
    if not path:
        return 0.0
    if how == "logprob":
        return float(sum(tree.step[i].logprob or 0.0 for i in path))
    values = [tree.value[i] if tree.value[i] is not None else 0.0 for i in path]
    if how == "last":
        return float(values[-1])
    if how == "min":
        return float(min(values))
    if how == "mean":
        return float(sum(values) / len(values))
    raise ConfigError(f"unknown path aggregate {how!r}; choose from {', '.join(AGGREGATES)}")


def best_node(tree: Tree, score: Callable[[int], float | None] | None = None) -> int:
    """The node to answer with when no verified solution was found: a verified solution if
    any, else the best-scored terminal node, else the best-scored node; ties go to the deeper,
    then the earlier node. ``score`` defaults to the node's value."""
    score = score or (lambda i: tree.value[i])

    def rank(i: int) -> tuple:
        s = score(i)
        return (is_solution(tree, i), tree.terminal[i], -math.inf if s is None else s, tree.depth(i), -i)

    return max(range(len(tree)), key=rank)


def most_visited_leaf(tree: Tree, start: int = 0) -> int:
    """Follow the most visited child (ties: higher prior, then earlier) down to a node whose
    children were never visited, then on by prior to a terminal or unexpanded node."""
    node = start
    while tree.children[node]:
        node = max(tree.children[node], key=lambda c: (tree.visits[c], tree.prior[c], -c))
    return node


def make_result(
    tree: Tree, task: Task, node: int, cost: Cost, *, info: dict[str, Any] | None = None
) -> SearchResult:
    """The :class:`SearchResult` answering with the path to ``node``; marks it ``chosen``.

    ``solved`` is the verifier's verdict on the final state where the task has a test-time
    verifier, else the ground-truth check (``task.outcome``) kept for metrics only; it is also
    reported as ``info["correct"]``, with ``info["verified"]`` saying which of the two it is. A
    path that stops before a terminal state is not solved.
    """
    tree.chosen = tree.path_nodes(node)
    state = tree.state[node]
    terminal = task.is_terminal(state)
    outcome = task.outcome(state) if terminal else None
    solved = (outcome >= 1.0) if outcome is not None else (False if not terminal else None)
    info = dict(info or {})
    info["correct"] = solved
    info["verified"] = bool(task.has_test_time_verifier)
    info["num_nodes"] = len(tree)
    return SearchResult(
        problem=tree.problem,
        answer=task.answer(state),
        steps=tree.path_to(node),
        solved=solved,
        cost=cost,
        method=tree.method,
        tree=tree,
        final_state=state,
        info=info,
    )
