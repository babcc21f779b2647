"""Tree storage, JSON round trip, backup and path aggregation."""

from __future__ import annotations

import json

import pytest
from toy_search_task import ToyTask

from qstar.errors import ConfigError
from qstar.search.tree import (
    SCHEMA,
    Tree,
    add_children,
    aggregate,
    backup,
    best_node,
    find_child,
    make_result,
    most_visited_leaf,
    new_tree,
)
from qstar.types import Cost, Step


def small_tree() -> tuple[Tree, ToyTask]:
    task = ToyTask()
    tree = new_tree(task, task.problem(10), "test")
    a, b = add_children(tree, task, 0, [(Step("+1", -0.3), 0.7), (Step("*3", -1.2), 0.3)])
    (b1, b2) = add_children(tree, task, b, [(Step("*3", -0.1), 0.9), (Step("+1", -2.3), 0.1)])
    add_children(tree, task, b1, [(Step("+1", -0.5), 0.6)])
    tree.value[a], tree.value[b], tree.value[b1] = 0.2, 0.8, 0.4
    tree.flag(b2, "pruned")
    tree.extra[b1]["f"] = 1.25
    backup(tree, [0, b, b1], 0.4)
    return tree, task


def test_nodes_are_numbered_in_creation_order_with_root_zero():
    tree, _ = small_tree()
    assert tree.parent == [-1, 0, 0, 2, 2, 3]
    assert tree.children == [[1, 2], [], [3, 4], [5], [], []]
    assert tree.expansion_order == [0, 2, 3]
    assert tree.expanded == [True, False, True, True, False, False]


def test_path_to_returns_the_steps_from_the_root():
    tree, _ = small_tree()
    assert [s.text for s in tree.path_to(5)] == ["*3", "*3", "+1"]
    assert tree.path_nodes(5) == [0, 2, 3, 5]
    assert tree.depth(5) == 3 and tree.depth(0) == 0


def test_nodes_record_render_key_terminal_and_outcome():
    tree, task = small_tree()
    assert tree.text[5] == "toy: 10\n*3\n*3\n+1\n"
    assert tree.key[5] == "(10, 3)"
    assert tree.terminal == [False, False, False, False, False, True]
    assert tree.outcome[5] == 1.0 and tree.outcome[3] is None


def test_outcome_is_hidden_when_the_task_has_no_test_time_verifier():
    task = ToyTask(verifiable=False)
    tree = new_tree(task, task.problem(10), "test")
    node = 0
    for op in ("*3", "*3", "+1"):
        (node,) = add_children(tree, task, node, [(Step(op), 1.0)])
    assert tree.terminal[node] and tree.outcome[node] is None


def test_json_export_import_export_is_identical():
    tree, task = small_tree()
    tree.chosen = [0, 2, 3, 5]
    first = json.dumps(tree.to_json())
    again = Tree.from_json(json.loads(first))
    assert json.dumps(again.to_json()) == first
    with_states = Tree.from_json(json.loads(first), task)
    assert json.dumps(with_states.to_json()) == first
    assert with_states.state[5].content == 10


def test_json_schema_fields():
    tree, _ = small_tree()
    obj = tree.to_json()
    assert obj["schema"] == SCHEMA and obj["task"] == "toy" and obj["method"] == "test"
    assert obj["problem"] == {"task": "toy", "text": "10", "id": "", "target": 10}
    node = obj["nodes"][3]
    assert node == {
        "id": 3,
        "parent": 2,
        "step": "*3",
        "logprob": -0.1,
        "state": "toy: 10\n*3\n*3\n",
        "key": "(9, 2)",
        "prior": 0.9,
        "value": 0.4,
        "q": 0.4,
        "visits": 1,
        "terminal": False,
        "outcome": None,
        "expanded": True,
        "flags": [],
        "extra": {"f": 1.25},
    }
    assert obj["nodes"][0]["parent"] is None and obj["nodes"][0]["step"] is None
    assert obj["nodes"][4]["flags"] == ["pruned"]


def test_from_json_rejects_other_documents():
    with pytest.raises(ConfigError, match="schema"):
        Tree.from_json({"schema": "something/else"})


def test_backup_adds_a_visit_and_keeps_the_running_mean_on_every_node_of_the_path():
    tree, _ = small_tree()  # already one backup of 0.4 along 0, 2, 3
    backup(tree, [0, 2, 3, 5], 1.0)
    assert tree.visits == [2, 0, 2, 2, 0, 1]
    assert tree.q[0] == pytest.approx((0.4 + 1.0) / 2)
    assert tree.q[3] == pytest.approx(0.7)
    assert tree.q[5] == pytest.approx(1.0)
    assert tree.q[1] is None


def test_aggregate_of_path_values():
    tree, _ = small_tree()  # values along the path to node 3: 0.8 (node 2), 0.4 (node 3)
    assert aggregate(tree, 3, "last") == pytest.approx(0.4)
    assert aggregate(tree, 3, "min") == pytest.approx(0.4)
    assert aggregate(tree, 3, "mean") == pytest.approx(0.6)
    assert aggregate(tree, 3, "logprob") == pytest.approx(-1.2 - 0.1)
    assert aggregate(tree, 0, "mean") == 0.0
    with pytest.raises(ConfigError, match="aggregate"):
        aggregate(tree, 3, "max")


def test_best_node_prefers_a_verified_solution_then_terminals_then_value():
    tree, _ = small_tree()
    assert best_node(tree) == 5
    tree.outcome[5] = 0.0
    assert best_node(tree) == 5  # still the only terminal
    assert best_node(tree, lambda i: tree.value[i] if i != 5 else None) == 5


def test_most_visited_leaf_follows_visits_then_priors():
    tree, _ = small_tree()
    assert most_visited_leaf(tree) == 5


def test_find_child_by_step_text():
    tree, _ = small_tree()
    assert find_child(tree, 2, "+1") == 4 and find_child(tree, 1, "+1") is None


def test_make_result_marks_the_chosen_path_and_checks_the_answer():
    tree, task = small_tree()
    result = make_result(tree, task, 5, Cost(expansions=3), info={"x": 1})
    assert result.answer == "10" and result.solved is True and result.info["correct"] is True
    assert [s.text for s in result.steps] == ["*3", "*3", "+1"]
    assert tree.chosen == [0, 2, 3, 5]
    assert result.to_json(include_tree=True)["tree"]["chosen"] == [0, 2, 3, 5]
    unfinished = make_result(tree, task, 3, Cost())
    assert unfinished.answer is None and unfinished.solved is False
