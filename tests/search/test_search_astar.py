"""Q* best-first search: golden expansion order, transpositions, f = g + lambda * h, q_fn."""

from __future__ import annotations

import pytest
from toy_search_task import ToyTask, content_key

from qstar.errors import ConfigError
from qstar.policy.mock import MockPolicy, MockScorer
from qstar.search.astar import QStarConfig, qstar
from qstar.types import Budget

# Operators +1 and *2 from 1: both first steps reach 2 (a transposition). Target 5 is reached
# only by 1 -> 2 -> 4 -> 5. The scorer misleads: it prefers 3 (0.8) to 4 (0.3) at depth 2.
VALUES = {(2, 1): 0.5, (3, 2): 0.8, (4, 2): 0.3}


def run(budget=50, **knobs):
    task = ToyTask(ops=("+1", "*2"))
    scorer = MockScorer(VALUES, key_fn=content_key)
    result = qstar(
        task.problem(5), task, MockPolicy(), scorer, Budget(max_expansions=budget), QStarConfig(**knobs), 0
    )
    return result, scorer


def test_golden_expansion_order():
    # root (0) -> 1 "+1" (2, d1), 2 "*2" (2, d1) = transposition of 1, skipped.
    #   node 1: g = min(0.5) = 0.5, h = 0.5, f = 1.0  -> popped second.
    # node 1 -> 3 "+1" (3, d2): g = min(0.5, 0.8) = 0.5, h = 0.8, f = 1.3
    #           4 "*2" (4, d2): g = min(0.5, 0.3) = 0.3, h = 0.3, f = 0.6
    # pop 3 -> 5 (4, d3) and 6 (6, d3): both verified wrong, nothing pushed.
    # pop 4 -> 7 "+1" (5, d3): verified solution, return.
    result, scorer = run()
    tree = result.tree
    assert tree.expansion_order == [0, 1, 3, 4]
    assert tree.chosen == [0, 1, 4, 7]
    assert [s.text for s in result.steps] == ["+1", "*2", "+1"]
    assert result.solved is True and result.answer == "5"
    assert tree.flags[2] == ["transposition"] and tree.extra[2]["same_as"] == 1
    assert tree.extra[1] == pytest.approx({"g": 0.5, "h": 0.5, "f": 1.0})
    assert tree.extra[3] == pytest.approx({"g": 0.5, "h": 0.8, "f": 1.3})
    assert tree.extra[4] == pytest.approx({"g": 0.3, "h": 0.3, "f": 0.6})
    assert scorer.calls == [[(2, 1)], [(3, 2), (4, 2)]]
    assert result.cost.expansions == 4
    assert result.cost.model_calls == 4 + 2  # 4 score calls + 2 scorer calls


def test_without_merging_the_transposition_is_searched_again():
    # Node 2 (also value 0.5, f = 1.0) ties node 1 and is popped after 1 (created later) and 3
    # (f = 1.3). Its children 7 (3, d2, f 1.3) and 8 (4, d2, f 0.6) repeat those of node 1:
    # 7 is popped next (dead ends), then 4 (f 0.6, created before 8) gives the solution.
    result, _ = run(merge_transpositions=False)
    assert result.tree.expansion_order == [0, 1, 3, 2, 7, 4]
    assert "transposition" not in result.tree.flags[2]


def test_heuristic_weight_scales_h():
    # lambda = 0: f = g only; node 3 (g 0.5) still beats node 4 (g 0.3). With g = "last" and
    # lambda = 0 the order is the same; with g = "logprob" (all steps logprob -1) and lambda = 0,
    # f = -depth: breadth first, so node 3 and 4 (depth 2) are popped in creation order.
    result, _ = run(g_aggregate="logprob", heuristic_weight=0.0)
    assert result.tree.expansion_order == [0, 1, 3, 4]
    assert result.tree.extra[3]["f"] == pytest.approx(-2.0)


def test_q_fn_replaces_the_scorer_as_heuristic():
    # h from q_fn: prefer 4 over 3, so the solution comes one expansion earlier.
    def q_fn(states):
        return [1.0 if s.content == 4 else 0.0 for s in states]

    result, _ = run(q_fn=q_fn)
    assert result.tree.expansion_order == [0, 1, 4]
    assert result.tree.extra[4]["h"] == 1.0 and result.tree.extra[4]["g"] == pytest.approx(0.3)


def test_batch_size_pops_several_states_into_one_policy_call():
    task = ToyTask(ops=("+1", "*2"))
    policy = MockPolicy()
    scorer = MockScorer(VALUES, key_fn=content_key)
    cfg = QStarConfig(batch_size=2)
    result = qstar(task.problem(5), task, policy, scorer, Budget(max_expansions=50), cfg, 0)
    assert result.tree.expansion_order == [0, 1, 3, 4]
    assert policy.usage.model_calls == 3  # {0}, {1}, {3, 4}


def test_budget_cuts_the_search_and_returns_the_best_node_found():
    result, _ = run(budget=2)
    assert result.cost.expansions == 2
    assert result.solved is False and result.answer is None
    assert result.tree.chosen == [0, 1, 3]  # best f among non-terminal nodes


def test_unverifiable_task_returns_the_first_terminal_state_popped():
    task = ToyTask(ops=("+1", "*2"), verifiable=False)
    scorer = MockScorer({**VALUES, (5, 3): 0.9}, key_fn=content_key, default=0.1)
    result = qstar(task.problem(5), task, MockPolicy(), scorer, Budget(max_expansions=50), None, 0)
    assert result.answer == "5" and result.solved is True
    assert result.tree.outcome == [None] * len(result.tree)


@pytest.mark.parametrize("knobs", [{"g_aggregate": "max"}, {"heuristic_weight": -1.0}, {"q_fn": 3}])
def test_bad_knobs_are_config_errors(knobs):
    with pytest.raises(ConfigError):
        QStarConfig(**knobs)
