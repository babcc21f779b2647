"""Training targets from search trees: hand-made trees with hand-computed targets, and a real
Game-of-24 search tree checked against the exhaustive oracle (an independent judge)."""

from __future__ import annotations

import math

import pytest

from qstar.errors import ConfigError
from qstar.policy.mock import MockPolicy, MockScorer
from qstar.search.mcts import MctsConfig, mcts
from qstar.search.tree import Tree
from qstar.tasks.game24 import Game24Task
from qstar.tasks.numbers_oracle import solvable_from
from qstar.training.targets import (
    best_path_policy,
    dead_nodes,
    lookahead_policy,
    lookahead_values,
    policy_targets,
    reachability_values,
    solution_distances,
    solved_nodes,
    tree_targets,
    value_targets,
    visit_policy,
)
from qstar.types import Budget, Problem, Step

PROBLEM = Problem("toy", "x")


def hand_made_tree() -> Tree:
    """
    root 0 (expanded, N=10)
    ├── a 1 (expanded, N=6) ── c 3 (terminal, verified right, N=3)
    │                      └── d 4 (terminal, verified wrong, N=2)
    ├── b 2 (expanded, N=3) ── e 5 (expanded, no legal step: dead end, N=2)
    │                      └── f 6 (terminal, verified wrong, N=1)
    ├── g 7 (never expanded, N=0)
    └── t 8 (transposition of a: same_as 1, never expanded, N=0)
    """
    tree = Tree(PROBLEM, "toy", "mcts")
    spec = [  # (name, parent, terminal, outcome, expanded, visits)
        ("root", -1, False, None, True, 10),
        ("a", 0, False, None, True, 6),
        ("b", 0, False, None, True, 3),
        ("c", 1, True, 1.0, False, 3),
        ("d", 1, True, 0.0, False, 2),
        ("e", 2, False, None, True, 2),
        ("f", 2, True, 0.0, False, 1),
        ("g", 0, False, None, False, 0),
        ("t", 0, False, None, False, 0),
    ]
    for name, parent, terminal, outcome, expanded, visits in spec:
        node = tree.add_node(
            parent,
            None if parent < 0 else Step(name),
            None,
            text=f"prompt {name}\n",
            key=name,
            terminal=terminal,
            outcome=outcome,
        )
        tree.expanded[node] = expanded
        tree.visits[node] = visits
    tree.extra[8]["same_as"] = 1
    tree.chosen = [0, 1, 3]
    return tree


def test_solved_nodes_are_verified_paths_and_their_transpositions():
    assert solved_nodes(hand_made_tree()) == {0, 1, 3, 8}


def test_solution_distances_count_steps_to_the_nearest_verified_answer():
    # t is the same state as a, one step from c.
    assert solution_distances(hand_made_tree()) == {0: 2, 1: 1, 3: 0, 8: 1}


def test_discounted_reachability_prefers_states_closer_to_an_answer():
    values = reachability_values(hand_made_tree(), discount=0.5)
    assert values == {0: 0.25, 1: 0.5, 2: 0.0, 5: 0.0, 8: 0.5}


def test_dead_nodes_are_exhausted_subtrees():
    # b is dead: its children are a dead end (e) and a wrong answer (f).
    assert dead_nodes(hand_made_tree()) == {2, 4, 5, 6}


def test_without_exhaustive_expansions_only_wrong_answers_are_dead():
    assert dead_nodes(hand_made_tree(), exhaustive=False) == {4, 6}


def test_reachability_values_label_non_terminal_nodes_only():
    assert reachability_values(hand_made_tree()) == {0: 1.0, 1: 1.0, 2: 0.0, 5: 0.0, 8: 1.0}
    assert reachability_values(hand_made_tree(), include_terminal=True) == {
        0: 1.0, 1: 1.0, 2: 0.0, 3: 1.0, 4: 0.0, 5: 0.0, 6: 0.0, 8: 1.0,
    }  # fmt: skip


def test_visit_policy_is_alphazero_pi():
    tree = hand_made_tree()
    assert visit_policy(tree, 0) == pytest.approx({"a": 6 / 9, "b": 3 / 9})
    # tau = 1/2: N^2 = 36 and 9.
    assert visit_policy(tree, 0, temperature=0.5) == pytest.approx({"a": 0.8, "b": 0.2})
    assert visit_policy(tree, 0, temperature=0) == {"a": 1.0}
    assert visit_policy(tree, 1) == pytest.approx({"c": 0.6, "d": 0.4})


def test_policy_targets_by_mode():
    tree = hand_made_tree()
    visits = dict(policy_targets(tree, "visits"))
    assert set(visits) == {0, 1, 2}  # e has no children, g and t were never expanded
    assert visits[2] == pytest.approx({"e": 2 / 3, "f": 1 / 3})
    assert policy_targets(tree, "visits", min_visits=4) == [(0, visits[0]), (1, visits[1])]
    assert [n for n, _ in policy_targets(tree, "visits", root_only=True)] == [0]
    assert policy_targets(tree, "verified") == [(0, {"a": 0.5, "t": 0.5}), (1, {"c": 1.0})]
    assert policy_targets(tree, "best_path") == [(0, {"a": 1.0}), (1, {"c": 1.0})]
    assert policy_targets(tree, "best_path", all_children=True) == [
        (0, {"a": 1.0, "b": 0.0, "g": 0.0, "t": 0.0}),
        (1, {"c": 1.0, "d": 0.0}),
    ]


def test_lookahead_policy_is_a_softmax_of_completed_q():
    """Q = 1 for solved children (a, and t: a transposition of a), 0 for dead ones (b, d) and
    the scorer's value otherwise (g: 0.5); pi ∝ exp(Q / tau)."""
    tree = hand_made_tree()
    tree.value[7] = 0.5
    tau = 0.5
    got = dict(policy_targets(tree, "lookahead", temperature=tau))
    w = {"a": 1.0, "b": math.exp(-1 / tau), "g": math.exp(-0.5 / tau), "t": 1.0}
    assert got[0] == pytest.approx({k: v / sum(w.values()) for k, v in w.items()})
    assert got[1] == pytest.approx({"c": 1 / (1 + math.exp(-2)), "d": math.exp(-2) / (1 + math.exp(-2))})
    assert got[2] == pytest.approx({"e": 0.5, "f": 0.5})  # all dead: no preference
    assert 5 not in got  # expanded without children
    # Without exhaustive expansions b is not known dead and has no value: it is left out.
    root = lookahead_policy(tree, 0, solved_nodes(tree), dead_nodes(tree, exhaustive=False), temperature=tau)
    assert set(root) == {"a", "g", "t"}
    with pytest.raises(ConfigError, match="temperature"):
        lookahead_policy(tree, 0, set(), set(), temperature=0.0)


def test_best_path_needs_a_verified_answer():
    tree = hand_made_tree()
    tree.chosen = [0, 2, 6]
    assert best_path_policy(tree) == []


def test_value_targets_by_mode():
    tree = hand_made_tree()
    for i, q in enumerate([0.5, 0.6, 0.0, 1.0, 0.0, 0.0, 0.0, None, None]):
        tree.q[i] = q
    assert value_targets(tree, "q") == {0: 0.5, 1: 0.6, 2: 0.0, 5: 0.0}
    # Exact Bellman backup of each edge (so no root): max over children; the dead end e is 0,
    # t repeats a.
    assert value_targets(tree, "bellman") == {1: 1.0, 2: 0.0, 5: 0.0, 8: 1.0}
    with pytest.raises(ConfigError):
        value_targets(tree, "oracle")
    with pytest.raises(ConfigError):
        policy_targets(tree, "oracle")


def test_lookahead_values_back_up_the_value_head_where_the_search_did_not_settle():
    tree = hand_made_tree()
    tree.value[5] = 0.4  # the scorer's value of e
    # Exhaustive expansions settle every expanded node exactly (g was never expanded).
    assert lookahead_values(tree, discount=0.5) == {0: 0.25, 1: 0.5, 2: 0.0, 5: 0.0, 8: 0.5}
    # Without them b is not known dead: 0.5 * max(Q(e) = 0.4, Q(f) = 0 (a wrong answer)); e
    # itself has no child to back up from, so it has no target.
    got = value_targets(tree, "lookahead", exhaustive=False, discount=0.5)
    assert got == pytest.approx({0: 0.25, 1: 0.5, 2: 0.2, 8: 0.5})


def test_tree_targets_are_keyed_by_prompt():
    tt = tree_targets(hand_made_tree(), policy_mode="verified", value_mode="reachability", exhaustive=True)
    assert tt.policy == [("prompt root\n", {"a": 0.5, "t": 0.5}), ("prompt a\n", {"c": 1.0})]
    assert ("prompt b\n", 0.0) in tt.values and ("prompt root\n", 1.0) in tt.values


def test_labels_of_a_real_mcts_tree_agree_with_the_exhaustive_oracle():
    task = Game24Task()
    problem = task.parse_problem("2 3 4 8")
    result = mcts(
        problem,
        task,
        MockPolicy(),
        MockScorer(),
        Budget(max_expansions=60),
        MctsConfig(batch_size=4, stop_on_solution=False, add_noise=True),
        rng=0,
    )
    tree = result.tree
    labels = reachability_values(tree)
    assert 0.0 in labels.values() and 1.0 in labels.values()
    for node, label in labels.items():
        assert solvable_from(task, tree.state[node]) == (label == 1.0), tree.text[node]
