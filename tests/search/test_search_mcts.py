"""AlphaZero PUCT MCTS: a hand-computed golden tree, backup, virtual loss, noise, early stop."""

from __future__ import annotations

import math

import numpy as np
import pytest
from toy_search_task import ToyTask

from qstar.errors import ConfigError
from qstar.policy.mock import MockPolicy, MockScorer
from qstar.search.mcts import MctsConfig, mcts, puct_score
from qstar.types import Budget

# Every node: prior 0.75 for "+1", 0.25 for "*3" (softmax of log 0.75, log 0.25).
SCORES = {"+1": math.log(0.75), "*3": math.log(0.25)}
VALUES = {(): 0.5, ("+1",): 0.2, ("*3",): 0.9, ("*3", "+1"): 0.7}


def c(parent_visits: int) -> float:
    """AlphaZero's exploration coefficient C(s), written out independently of the code."""
    return math.log((parent_visits + 19652 + 1) / 19652) + 1.25


def run(num_simulations=None, budget=4, **knobs):
    task = ToyTask()
    policy, scorer = MockPolicy(scores=SCORES), MockScorer(VALUES)
    config = MctsConfig(num_simulations=num_simulations, **knobs)
    result = mcts(task.problem(10), task, policy, scorer, Budget(max_expansions=budget), config, 0)
    return result, policy, scorer


def test_puct_score_matches_the_alphazero_formula():
    cfg = MctsConfig()
    assert puct_score(3, 1, 0.2, 0.75, cfg) == pytest.approx(0.2 + c(3) * math.sqrt(3) / 2 * 0.75)
    assert puct_score(3, 0, None, 0.25, cfg) == pytest.approx(0.5 + c(3) * math.sqrt(3) * 0.25)
    assert puct_score(0, 0, None, 0.9, cfg) == pytest.approx(0.5)  # sqrt(0): prior has no say yet


def test_golden_tree_after_four_simulations():
    # Sim 1 expands the root (value 0.5). Sim 2 at N(root)=1: "+1" scores 0.5 + c(1)*0.75 over
    # 0.5 + c(1)*0.25, expand it (value 0.2). Sim 3 at N=2: "+1" 0.2 + c(2)*sqrt(2)/2*0.75 = 0.863
    # loses to "*3" 0.5 + c(2)*sqrt(2)*0.25 = 0.942; expand "*3" (value 0.9). Sim 4 at N=3: "*3"
    # 0.9 + c(3)*sqrt(3)/2*0.25 = 1.17 beats "+1" 0.2 + c(3)*sqrt(3)/2*0.75 = 1.01; inside "*3"
    # (N=1) both children are unvisited and the prior picks "+1"; expand ("*3", "+1") (value 0.7).
    assert 0.2 + c(2) * math.sqrt(2) / 2 * 0.75 < 0.5 + c(2) * math.sqrt(2) * 0.25
    assert 0.9 + c(3) * math.sqrt(3) / 2 * 0.25 > 0.2 + c(3) * math.sqrt(3) / 2 * 0.75
    result, policy, scorer = run()
    tree = result.tree
    # ids: 0 root, 1 "+1", 2 "*3", 3-4 children of 1, 5-6 children of 2, 7-8 children of 5
    assert tree.parent == [-1, 0, 0, 1, 1, 2, 2, 5, 5]
    assert [tree.step[i].text for i in range(1, 9)] == ["+1", "*3", "+1", "*3", "+1", "*3", "+1", "*3"]
    assert tree.prior == pytest.approx([1.0] + [0.75, 0.25] * 4)
    assert tree.expansion_order == [0, 1, 2, 5]
    assert tree.visits == [4, 1, 2, 0, 0, 1, 0, 0, 0]
    assert tree.value == pytest.approx([0.5, 0.2, 0.9, None, None, 0.7, None, None, None])
    assert tree.q[0] == pytest.approx((0.5 + 0.2 + 0.9 + 0.7) / 4)
    assert tree.q[1] == pytest.approx(0.2)
    assert tree.q[2] == pytest.approx((0.9 + 0.7) / 2)
    assert tree.q[5] == pytest.approx(0.7)
    assert tree.q[3] is None and tree.q[7] is None
    assert tree.terminal == [False] * 7 + [True, True]
    assert tree.outcome[7:] == [0.0, 0.0]  # 3 + 1 + 1 = 5 and (3 + 1) * 3 = 12, not 10
    # Final choice by visits: root -> "*3" (2 visits) -> ("*3", "+1") -> unvisited children by prior.
    assert tree.chosen == [0, 2, 5, 7]
    assert result.answer == "5" and result.solved is False
    assert result.info["num_simulations"] == 4
    # 4 expansions = 4 score calls (2 one-word continuations each) + 4 scorer calls.
    assert result.cost.expansions == 4
    assert result.cost.model_calls == 8 and result.cost.tokens_scored == 8
    assert scorer.calls == [[()], [("+1",)], [("*3",)], [("*3", "+1")]]


def test_backup_adds_the_leaf_value_to_every_node_of_a_depth_three_path():
    # Compare the tree after n and n + 1 simulations; find a simulation that ended at a terminal
    # leaf three steps deep and check that its verified outcome reached all four nodes.
    checked = 0
    for n in range(4, 16):
        before = run(num_simulations=n, budget=7, stop_on_solution=False)[0].tree
        after = run(num_simulations=n + 1, budget=7, stop_on_solution=False)[0].tree
        changed = [i for i in range(len(before)) if after.visits[i] != before.visits[i]]
        if len(changed) != 4 or not after.terminal[changed[-1]]:
            continue
        leaf = changed[-1]
        assert after.path_nodes(leaf) == changed
        v = after.outcome[leaf]
        for i in changed:
            n_old, q_old = before.visits[i], before.q[i] or 0.0
            assert after.visits[i] == n_old + 1
            assert after.q[i] == pytest.approx((q_old * n_old + v) / (n_old + 1))
        checked += 1
    assert checked >= 2


def test_virtual_loss_spreads_a_batch_over_distinct_leaves_in_one_policy_call():
    # Batch 1 can only hold the root. Batch 2: "+1" first (prior 0.75); with one virtual loss on
    # it, its Q is 0 and N(root) counts 2, so "*3" scores 0.5 + c(2)*sqrt(2)*0.25 > c(2)*sqrt(2)/2*0.75.
    assert 0.5 + c(2) * math.sqrt(2) * 0.25 > 0.0 + c(2) * math.sqrt(2) / 2 * 0.75
    result, policy, _ = run(num_simulations=3, budget=10, batch_size=2)
    assert result.tree.expansion_order == [0, 1, 2]
    assert policy.usage.model_calls == 2
    assert result.info["num_simulations"] == 3


@pytest.mark.parametrize("batch_size", [2, 3, 4])
def test_batches_are_clipped_to_the_expansions_left(batch_size):
    result, _, _ = run(budget=5, batch_size=batch_size, stop_on_solution=False)
    assert result.cost.expansions == 5


def test_without_virtual_loss_a_batch_stops_at_a_repeated_leaf():
    result, policy, _ = run(num_simulations=3, budget=10, batch_size=2, virtual_loss=0.0)
    assert result.tree.expansion_order == [0, 1, 2]
    assert policy.usage.model_calls == 3


def test_dirichlet_noise_mixes_the_root_priors_and_keeps_the_raw_ones():
    result, _, _ = run(num_simulations=1, add_noise=True)
    tree = result.tree
    noise = np.random.default_rng(0).dirichlet([0.3, 0.3])  # the search's rng, first draw
    assert tree.prior[1:3] == pytest.approx([0.75 * 0.75 + 0.25 * noise[0], 0.75 * 0.25 + 0.25 * noise[1]])
    assert [tree.extra[i]["raw_prior"] for i in (1, 2)] == pytest.approx([0.75, 0.25])


def test_stops_at_the_first_verified_solution():
    task = ToyTask()
    policy = MockPolicy(scores={"*3": 0.0, "+1": -3.0})
    result = mcts(task.problem(10), task, policy, MockScorer(), Budget(max_expansions=50), None, 0)
    assert result.solved is True and result.answer == "10"
    assert [s.text for s in result.steps] == ["*3", "*3", "+1"]
    assert result.cost.expansions == 3


def test_whole_tree_search_ends_without_a_simulation_limit():
    task = ToyTask()
    result = mcts(task.problem(100), task, MockPolicy(), MockScorer(), Budget(max_expansions=1000), None, 0)
    assert result.cost.expansions == 7 and result.solved is False
    assert result.info["num_simulations"] == 7 + 8  # 7 expansions + one visit per terminal


@pytest.mark.parametrize(
    "knobs", [{"batch_size": 0}, {"pb_c_init": -1.0}, {"dirichlet_fraction": 1.5}, {"num_simulations": 0}]
)
def test_bad_knobs_are_config_errors(knobs):
    with pytest.raises(ConfigError):
        MctsConfig(**knobs)
