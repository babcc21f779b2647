"""Greedy chain of thought, self-consistency and best-of-N."""

from __future__ import annotations

import pytest
from toy_search_task import ToyTask, content_key

from qstar.errors import ConfigError
from qstar.policy.mock import MockPolicy, MockScorer
from qstar.search.sampling import (
    BestOfNConfig,
    SelfConsistencyConfig,
    best_of_n,
    greedy,
    self_consistency,
)
from qstar.types import Budget

TASK = ToyTask()
ROOT = "toy: 10\n"


def test_greedy_follows_the_first_line_of_each_prompt():
    policy = MockPolicy(
        generations={ROOT: ["*3", "+1"], ROOT + "*3\n": ["*3"], ROOT + "*3\n*3\n": ["+1", "*3"]}
    )
    result = greedy(TASK.problem(10), TASK, policy, None, Budget(max_expansions=10), None, 0)
    assert [s.text for s in result.steps] == ["*3", "*3", "+1"]
    assert result.answer == "10" and result.solved is True
    assert result.info["paths"] == [{"node": 3, "end": "terminal", "answer": "10"}]
    # 3 steps = 3 expansions = 3 generate calls of one word each
    assert (result.cost.expansions, result.cost.model_calls, result.cost.tokens_generated) == (3, 3, 3)


@pytest.mark.parametrize("line", ["three", "+5"])
def test_greedy_ends_as_a_failure_on_an_unparsable_or_illegal_line(line):
    policy = MockPolicy(generations={ROOT: ["*3"], ROOT + "*3\n": [line]})
    result = greedy(TASK.problem(10), TASK, policy, None, Budget(max_expansions=10), None, 0)
    assert [s.text for s in result.steps] == ["*3"]
    assert result.answer is None and result.solved is False
    assert result.info["paths"][0]["end"] == "invalid_step"
    assert result.tree.flags[1] == ["invalid_step"]
    assert result.cost.expansions == 2


def test_greedy_respects_the_budget():
    policy = MockPolicy(generations=lambda prompt: ["+1"])
    result = greedy(TASK.problem(10), TASK, policy, None, Budget(max_expansions=2), None, 0)
    assert result.cost.expansions == 2 and len(result.steps) == 2
    assert result.info["paths"][0]["end"] == "budget"


def vote_policy():
    # Three samples at the root are always two "*3" and one "+1", whatever the seed rotation;
    # "*3" paths then reach 10, the "+1" path reaches 7.
    scripts = {ROOT: ["*3", "*3", "+1"], ROOT + "*3\n": ["*3"], ROOT + "*3\n*3\n": ["+1"]}
    return MockPolicy(
        generations=lambda prompt: scripts.get(prompt, ["*3"] if prompt.count("\n") == 2 else ["+1"])
    )


def test_self_consistency_returns_the_majority_answer():
    cfg = SelfConsistencyConfig(num_samples=3)
    result = self_consistency(TASK.problem(10), TASK, vote_policy(), None, Budget(max_expansions=100), cfg, 0)
    assert result.info["votes"] == {"10": 2, "7": 1}
    assert result.answer == "10" and result.solved is True
    # the two "*3" paths share their nodes: visits count paths
    assert result.tree.visits[0] == 3
    assert result.cost.expansions == 9 and result.cost.model_calls == 3  # lockstep: one call per depth


def test_best_of_n_reranks_final_states_with_the_scorer():
    task = ToyTask(verifiable=False)  # the scorer alone decides
    scorer = MockScorer({(7, 3): 0.9, (10, 3): 0.1}, key_fn=content_key)
    cfg = BestOfNConfig(num_samples=3)
    result = best_of_n(task.problem(10), task, vote_policy(), scorer, Budget(max_expansions=100), cfg, 0)
    assert result.answer == "7" and result.solved is False
    assert scorer.calls == [[(10, 3), (7, 3)]] or scorer.calls == [[(7, 3), (10, 3)]]
    assert result.cost.model_calls == 3 + 1


def test_best_of_n_uses_the_free_verifier_on_finished_paths_of_verifiable_tasks():
    scorer = MockScorer({(7, 3): 0.9, (10, 3): 0.1}, key_fn=content_key)
    cfg = BestOfNConfig(num_samples=3)
    result = best_of_n(TASK.problem(10), TASK, vote_policy(), scorer, Budget(max_expansions=100), cfg, 0)
    assert result.answer == "10" and scorer.calls == []


def test_paths_advance_in_waves_of_batch_size():
    cfg = SelfConsistencyConfig(num_samples=4, batch_size=2)
    policy = MockPolicy(generations=lambda prompt: ["+1", "*3"])
    result = self_consistency(TASK.problem(10), TASK, policy, None, Budget(max_expansions=100), cfg, 0)
    assert len(result.info["paths"]) == 4
    assert result.cost.model_calls == 6 and result.cost.expansions == 12


def test_budget_clips_the_paths_of_a_wave():
    cfg = SelfConsistencyConfig(num_samples=3)
    result = self_consistency(TASK.problem(10), TASK, vote_policy(), None, Budget(max_expansions=5), cfg, 0)
    assert result.cost.expansions == 5
    assert sorted(p["end"] for p in result.info["paths"]) == ["budget", "budget", "budget"]


@pytest.mark.parametrize("knobs", [{"num_samples": 0}, {"temperature": 0.0}, {"batch_size": 0}])
def test_bad_knobs_are_config_errors(knobs):
    with pytest.raises(ConfigError):
        SelfConsistencyConfig(**knobs)
    with pytest.raises(ConfigError):
        BestOfNConfig(**knobs)
