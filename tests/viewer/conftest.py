"""Trees for the viewer tests: a real one from a search, and a synthetic one of any size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qstar.search.registry import run_search
from qstar.tasks.registry import get_task
from qstar.types import Budget


def synthetic_tree(branching: int, depth: int) -> dict:
    """A ``qstar.tree/1`` object written by hand: a full ``branching``-ary tree of ``depth``
    levels, ids in breadth-first order, the chosen path following every node's last child."""
    nodes = [_node(0, None, None, depth == 0)]
    children: dict[int, list[int]] = {0: []}
    frontier = [0]
    for level in range(1, depth + 1):
        next_frontier = []
        for parent in frontier:
            for k in range(branching):
                i = len(nodes)
                nodes.append(_node(i, parent, f"n{i} step {k} at depth {level}", level == depth))
                children[parent].append(i)
                children[i] = []
                next_frontier.append(i)
        frontier = next_frontier
    chosen = [0]
    while children[chosen[-1]]:
        chosen.append(children[chosen[-1]][-1])
    nodes[chosen[-1]]["outcome"] = 1.0
    return {
        "schema": "qstar.tree/1",
        "task": "synthetic",
        "method": "handmade",
        "problem": {"task": "synthetic", "text": f"{branching}^{depth}", "id": "s"},
        "chosen": chosen,
        "expansion_order": [i for i, n in enumerate(nodes) if n["expanded"]],
        "nodes": nodes,
    }


def _node(i: int, parent: int | None, step: str | None, leaf: bool) -> dict:
    return {
        "id": i,
        "parent": parent,
        "step": step,
        "logprob": None if step is None else -1.5,
        "state": "synthetic root\n" if step is None else f"synthetic root\n...\n{step}\n",
        "key": str(i),
        "prior": 0.1,
        "value": (i % 10) / 10,
        "q": None,
        "visits": 0,
        "terminal": leaf,
        "outcome": 0.0 if leaf else None,
        "expanded": not leaf,
        "flags": ["pruned"] if i % 7 == 3 else [],
        "extra": {},
    }


@pytest.fixture(scope="session")
def solved_tree_file(tmp_path_factory) -> Path:
    """A real blind-search tree for "1 1 4 6" whose chosen path is a verified solution."""
    task = get_task("game24")
    result = run_search("blind", task.parse_problem("1 1 4 6"), task, None, None, Budget(max_expansions=400))
    assert result.solved
    path = tmp_path_factory.mktemp("trees") / "solved.json"
    path.write_text(json.dumps(result.tree.to_json()), encoding="utf-8")
    return path


@pytest.fixture
def synthetic_tree_file(tmp_path):
    """``make(path, branching, depth)``: write :func:`synthetic_tree` to ``tmp_path / path``."""

    def make(path: str, branching: int, depth: int) -> Path:
        out = tmp_path / path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(synthetic_tree(branching, depth)), encoding="utf-8")
        return out

    return make
