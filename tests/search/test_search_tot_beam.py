"""Tree of Thoughts BFS / DFS and step-level beam search."""

from __future__ import annotations

import math

import pytest
from toy_search_task import TOY_VALUES, ToyTask

from qstar.errors import ConfigError
from qstar.policy.mock import MockPolicy, MockScorer
from qstar.search.beam import BeamConfig, beam
from qstar.search.tot import TotBfsConfig, TotDfsConfig, tot_bfs, tot_dfs
from qstar.types import Budget

TASK = ToyTask()  # +1 / *3 from 1, target 10 = *3 *3 +1
# The scorer likes the "+1" branch, under which there is no solution.
VALUES = TOY_VALUES


def run(fn, config, budget=50, scores=None):
    policy = MockPolicy(scores=scores)
    scorer = MockScorer(VALUES)
    return fn(TASK.problem(10), TASK, policy, scorer, Budget(max_expansions=budget), config, 0), scorer


def test_bfs_with_breadth_one_follows_the_best_value_and_misses():
    result, scorer = run(tot_bfs, TotBfsConfig(beam_width=1))
    assert result.tree.expansion_order == [0, 1, 3]  # root, "+1", ("+1", "+1")
    assert result.solved is False and result.cost.expansions == 3
    assert scorer.calls[0] == [("+1",), ("*3",)]  # all children of a depth in one call


def test_bfs_keeps_the_best_b_candidates_of_each_depth():
    result, _ = run(tot_bfs, TotBfsConfig(beam_width=2))
    # depth 1 keeps {1: "+1" 0.9, 2: "*3" 0.6}; depth 2 children 3-6 valued 0.8, 0.7, 0.9, 0.5
    # keep the best two: 5 ("*3", "+1") and 3 ("+1", "+1"); neither leads to 10.
    assert result.tree.expansion_order == [0, 1, 2, 5, 3]
    assert result.solved is False
    result, _ = run(tot_bfs, TotBfsConfig(beam_width=3))  # still drops ("*3", "*3") 0.5
    assert result.solved is False
    result, _ = run(tot_bfs, TotBfsConfig(beam_width=4))
    assert result.solved is True and [s.text for s in result.steps] == ["*3", "*3", "+1"]


def test_bfs_budget_drops_the_weakest_frontier_states_first():
    result, _ = run(tot_bfs, TotBfsConfig(beam_width=2), budget=2)
    assert result.tree.expansion_order == [0, 1] and result.cost.expansions == 2


def test_dfs_prunes_below_the_threshold_and_backtracks():
    # threshold 0.85 prunes everything but ("+1",) 0.9 and ("*3", "+1") 0.9.
    result, _ = run(tot_dfs, TotDfsConfig(value_threshold=0.85))
    assert result.tree.expansion_order == [0, 1]
    assert result.tree.flags[2] == ["pruned"]
    # threshold 0.55: explore "+1" first (0.9), its children (0.8 then 0.7), then backtrack to "*3".
    result, _ = run(tot_dfs, TotDfsConfig(value_threshold=0.55))
    assert result.tree.expansion_order == [0, 1, 3, 4, 2, 9]
    assert result.solved is False  # ("*3", "*3") 0.5 was pruned
    result, _ = run(tot_dfs, TotDfsConfig(value_threshold=0.5))
    assert result.solved is True and result.cost.expansions == 7


def test_dfs_max_children_keeps_only_the_best():
    result, _ = run(tot_dfs, TotDfsConfig(max_children=1))
    assert result.tree.expansion_order == [0, 1, 3]
    assert "pruned" in result.tree.flags[2]


def test_beam_keeps_the_most_probable_candidates_per_beam():
    # priors prefer "*3" (0.75 vs 0.25): with one candidate per beam only "*3" steps are tried.
    scores = {"*3": math.log(0.75), "+1": math.log(0.25)}
    result, _ = run(beam, BeamConfig(beam_width=2, num_samples=1), scores=scores)
    assert [result.tree.step[i].text for i in range(1, len(result.tree))] == ["*3", "*3", "*3"]
    assert result.solved is False and result.answer == "27"


def test_beam_scores_paths_by_the_aggregate_and_finds_the_solution():
    result, _ = run(beam, BeamConfig(beam_width=2, num_samples=2, aggregate="mean"))
    tree = result.tree
    # depth 2 candidates by mean: (+1,+1) 0.85, (+1,*3) 0.8, (*3,+1) 0.75, (*3,*3) 0.55
    assert tree.extra[3]["score"] == pytest.approx(0.85)
    assert tree.extra[5]["score"] == pytest.approx(0.75)
    assert "selected" in tree.flags[3] and "selected" in tree.flags[4] and "selected" not in tree.flags[5]
    result, _ = run(beam, BeamConfig(beam_width=4, num_samples=2))
    assert result.solved is True and result.cost.expansions == 7


def test_beam_respects_the_budget_inside_a_depth():
    result, _ = run(beam, BeamConfig(beam_width=4, num_samples=2), budget=4)
    assert result.cost.expansions == 4
    assert result.tree.expansion_order == [0, 1, 2, 5]


@pytest.mark.parametrize(
    ("cls", "knobs"),
    [
        (TotBfsConfig, {"beam_width": 0}),
        (TotDfsConfig, {"value_threshold": 2.0}),
        (BeamConfig, {"aggregate": "sum"}),
        (BeamConfig, {"num_samples": -1}),
    ],
)
def test_bad_knobs_are_config_errors(cls, knobs):
    with pytest.raises(ConfigError):
        cls(**knobs)


def test_ties_in_value_go_to_the_step_the_policy_prefers():
    # The verifier's neutral 0.5 ties every non-terminal child; the prior (0.75 for "*3") decides.
    scores = {"*3": math.log(0.75), "+1": math.log(0.25)}
    policy, scorer = MockPolicy(scores=scores), MockScorer()
    result = tot_bfs(TASK.problem(10), TASK, policy, scorer, Budget(50), TotBfsConfig(beam_width=1), 0)
    assert result.solved is True and result.cost.expansions == 3
