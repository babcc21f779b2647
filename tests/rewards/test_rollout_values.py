"""RolloutScorer: Monte-Carlo values and Math-Shepherd labels equal hand-computed values."""

from __future__ import annotations

import pytest
from reward_toy_task import ToyTask, state_of, uniform_generations

from qstar.errors import ConfigError
from qstar.policy.mock import MockPolicy
from qstar.rewards.base import Scorer
from qstar.rewards.rollout import RolloutScorer, complete

TASK = ToyTask()


def scorer(num_rollouts: int = 8, **kw) -> RolloutScorer:
    policy = MockPolicy(generations=uniform_generations)
    return RolloutScorer(TASK, policy, num_rollouts=num_rollouts, mode="generate", **kw)


def test_values_are_the_uniform_policys_success_chances_worked_out_by_hand():
    # Target 10 from 1: only *3, *3, +1 wins. Root: 1 of 8 paths; after *3: 1 of 4; after +1
    # (2): 2+1+1, (2+1)*3, 2*3+1, 2*3*3 = 4, 9, 7, 18, none wins; after *3, *3 (9): 1 of 2.
    states = [
        state_of(TASK, 10),
        state_of(TASK, 10, "*3"),
        state_of(TASK, 10, "+1"),
        state_of(TASK, 10, "*3", "*3"),
        state_of(TASK, 10, "*3", "*3", "+1"),
        state_of(TASK, 10, "*3", "*3", "*3"),
    ]
    assert scorer(8).value(states) == [1 / 8, 1 / 4, 0.0, 1 / 2, 1.0, 0.0]
    assert scorer(16).value(states) == [1 / 8, 1 / 4, 0.0, 1 / 2, 1.0, 0.0]


def test_hard_soft_and_best_rollout_labels():
    s = scorer(8, gamma=0.5)
    root, after_plus, near = state_of(TASK, 10), state_of(TASK, 10, "+1"), state_of(TASK, 10, "*3", "*3")
    root_l, plus_l, near_l = s.labels([root, after_plus, near])
    assert (root_l.hard, root_l.soft, root_l.num_success, root_l.num_rollouts) == (True, 1 / 8, 1, 8)
    assert (plus_l.hard, plus_l.soft, plus_l.best) == (False, 0.0, 0.0)
    # Q*'s best rollout: the winning completion takes 3 steps from the root, 1 from *3,*3.
    assert root_l.best == 0.5**3
    assert near_l.best == 0.5


def test_all_states_share_one_batched_generate_call_and_equal_states_are_rolled_out_once():
    policy = MockPolicy(generations=uniform_generations)
    s = RolloutScorer(TASK, policy, num_rollouts=4, mode="generate")
    a, b = state_of(TASK, 10, "*3"), state_of(TASK, 10, "+1")
    s.value([a, b, a])
    assert policy.usage.model_calls == 1
    assert s.usage.model_calls == 1 and s.cost.model_calls == 1
    assert s.usage.tokens_generated == policy.usage.tokens_generated > 0


def test_a_bad_line_or_an_unfinished_completion_is_a_failure():
    scripts = {"toy-rewards: 10\n": ["*3\n*3\n+1", "*3\n/2\n+1", "*3\n*3", "*3\n*3\n+1\n+1"]}
    policy = MockPolicy(generations=lambda p: scripts.get(p, [""]))
    (row,) = complete(TASK, policy, [state_of(TASK, 10)], num_samples=4, mode="generate")
    assert [c.end for c in row] == ["terminal", "invalid_step", "unfinished", "terminal"]
    assert [len(c.steps) for c in row] == [3, 1, 2, 3]  # lines after the end are ignored
    s = RolloutScorer(TASK, policy, num_rollouts=4, mode="generate")
    assert s.value([state_of(TASK, 10)]) == [0.5]


def test_refuses_a_task_without_a_test_time_verifier_unless_making_labels():
    policy = MockPolicy(generations=uniform_generations)
    hidden = ToyTask(verifiable=False)
    with pytest.raises(ConfigError, match="no test-time verifier"):
        RolloutScorer(hidden, policy)
    s = RolloutScorer(hidden, policy, num_rollouts=8, mode="generate", allow_ground_truth=True)
    assert s.value([state_of(hidden, 10)]) == [1 / 8]


def test_is_a_scorer_and_a_q_fn():
    s = scorer(4)
    assert isinstance(s, Scorer)
    assert s([state_of(TASK, 10, "*3")]) == [1 / 4]


def test_enumerated_rollouts_sample_legal_steps_by_the_policys_prior():
    # The prior puts all its mass on "*3": every rollout from 1 goes *3, *3, *3 = 27.
    sure = MockPolicy(scores={"*3": 0.0, "+1": -50.0})
    assert RolloutScorer(TASK, sure, num_rollouts=8, mode="enumerate").value([state_of(TASK, 27)]) == [1.0]
    assert RolloutScorer(TASK, sure, num_rollouts=8, mode="enumerate").value([state_of(TASK, 10)]) == [0.0]
    # A uniform prior from 9 (after *3, *3): +1 wins with probability 1/2.
    uniform = MockPolicy(default_logprob=-1.0)
    s = RolloutScorer(TASK, uniform, num_rollouts=2000, mode="enumerate")
    (v,) = s.value([state_of(TASK, 10, "*3", "*3")])
    assert abs(v - 0.5) < 0.05  # 2000 draws: standard error 0.011
    assert uniform.usage.model_calls == 1  # one depth left: one batched score call
    (row,) = complete(TASK, uniform, [state_of(TASK, 10)], num_samples=3, mode="auto")
    assert all(c.end == "terminal" and len(c.steps) == 3 for c in row)
