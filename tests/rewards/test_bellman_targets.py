"""Bellman / fitted-Q targets on a hand-made search tree, and the MC / best-rollout targets."""

from __future__ import annotations

import pytest

from qstar.rewards.labels import LabelRecord
from qstar.rewards.qvalue import bellman_targets, best_rollout_targets, mc_targets
from qstar.search.tree import Tree
from qstar.types import Problem, State, Step

PROBLEM = Problem("toy", "x")


def hand_made_tree() -> Tree:
    """
    root 0
    ├── a 1 ── c 3 (terminal, right)
    │      └── d 4 (terminal, wrong)
    ├── b 2 ── e 5 (expanded, no valid step: dead end)
    │      ├── f 6 (never expanded)
    │      └── g 7 ── h 8 (terminal, outcome unknown to the tree: reward_fn says 1)
    └── t 9 (transposition of a, never expanded)
    """
    tree = Tree(PROBLEM, "toy")
    spec = [  # (name, parent, terminal, outcome, expanded)
        ("root", -1, False, None, True),
        ("a", 0, False, None, True),
        ("b", 0, False, None, True),
        ("c", 1, True, 1.0, False),
        ("d", 1, True, 0.0, False),
        ("e", 2, False, None, True),
        ("f", 2, False, None, False),
        ("g", 2, False, None, True),
        ("h", 7, True, None, False),
        ("t", 0, False, None, False),
    ]
    for name, parent, terminal, outcome, expanded in spec:
        node = tree.add_node(
            parent,
            None if parent < 0 else Step(name),
            State(PROBLEM, (), name),
            text=f"toy: x\n{name}\n",
            key=name,
            terminal=terminal,
            outcome=outcome,
        )
        tree.expanded[node] = expanded
    tree.extra[9]["same_as"] = 1
    return tree


def h_reward(node: int) -> float | None:
    return 1.0 if node == 8 else None


def test_exact_backup_inside_the_tree():
    y = bellman_targets(hand_made_tree(), gamma=0.9, reward_fn=h_reward)
    assert y == pytest.approx(
        {
            1: 0.9,  # a: 0.9 * max(c = 1, d = 0)
            2: 0.81,  # b: 0.9 * max(e = 0, g = 0.9); f has no value and is left out
            3: 1.0,
            4: 0.0,
            5: 0.0,  # dead end
            7: 0.9,  # g: 0.9 * h
            8: 1.0,  # h: reward_fn
            9: 0.9,  # t: the target of a, which it repeats
        }
    )
    assert 6 not in y  # an unexpanded leaf has no target


def test_without_a_reward_for_h_its_branch_loses_its_target():
    y = bellman_targets(hand_made_tree(), gamma=0.9)
    assert 8 not in y and 7 not in y
    assert y[2] == 0.0  # b: only the dead end e is left


def test_one_step_of_fitted_q_iteration_bootstraps_from_q_fn():
    q = {"e": 0.2, "f": 0.7, "g": 0.4}
    asked = []

    def q_fn(states):
        asked.append([s.content for s in states])
        return [q[s.content] for s in states]

    y = bellman_targets(hand_made_tree(), gamma=0.9, q_fn=q_fn, reward_fn=h_reward)
    assert asked == [["e", "f", "g"]]  # one batched call, non-terminal children only
    assert y[2] == pytest.approx(0.9 * 0.7)  # b: r + gamma * max_a' Q(s', a') over e, f, g
    assert y[1] == pytest.approx(0.9)  # a: its children are terminal, valued exactly
    assert y[7] == pytest.approx(0.9)
    assert 9 not in y  # no in-tree backup for transpositions when bootstrapping


def test_gamma_one_is_the_best_outcome_reachable_in_the_tree():
    y = bellman_targets(hand_made_tree(), gamma=1.0, reward_fn=h_reward)
    assert (y[1], y[2], y[7]) == (1.0, 1.0, 1.0)


def test_mc_and_best_rollout_targets_read_the_label_columns():
    r = LabelRecord("p\n", ("s1", "s2"), (True, False), (0.25, 0.0), (0.5, 0.0))
    assert mc_targets([r]) == [("p\ns1\n", 0.25), ("p\ns1\ns2\n", 0.0)]
    assert best_rollout_targets([r]) == [("p\ns1\n", 0.5), ("p\ns1\ns2\n", 0.0)]
    bare = LabelRecord("p\n", ("s1",), (True,))
    assert mc_targets([bare]) == best_rollout_targets([bare]) == [("p\ns1\n", 1.0)]
