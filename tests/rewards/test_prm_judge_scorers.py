"""PRM aggregation, the ToT judge, learned-Q scorer, metrics, and the scorer names."""

from __future__ import annotations

import math

import pytest
from reward_toy_task import ToyTask, state_of

from qstar.errors import ConfigError
from qstar.policy.mock import MockPolicy
from qstar.rewards.judge import TOT_VALUES, JudgeScorer, parse_verdict
from qstar.rewards.prm import PRMScorer, aggregate_scores, auc, reliability_bins, step_metrics
from qstar.rewards.qvalue import QValueScorer
from qstar.rewards.registry import make_scorer
from qstar.rewards.rollout import RolloutScorer

TASK = ToyTask()
# Step scores by the rendered state after each step.
STEP_VALUES = {
    "toy-rewards: 10\n*3\n": 0.8,
    "toy-rewards: 10\n*3\n*3\n": 0.5,
    "toy-rewards: 10\n*3\n*3\n+1\n": 0.9,
}


@pytest.mark.parametrize(
    ("how", "expected"), [("min", 0.5), ("product", 0.8 * 0.5 * 0.9), ("last", 0.9), ("mean", 2.2 / 3)]
)
def test_prm_aggregates_the_step_scores_of_the_path(how, expected):
    policy = MockPolicy(values=STEP_VALUES)
    prm = PRMScorer(TASK, policy, aggregate=how)
    assert prm.value([state_of(TASK, 10, "*3", "*3", "+1")]) == [pytest.approx(expected)]


def test_prm_values_all_prefixes_of_all_paths_in_one_call():
    policy = MockPolicy(values=STEP_VALUES, default_value=0.1)
    prm = PRMScorer(TASK, policy)
    rows = prm.step_scores(
        [state_of(TASK, 10, "*3", "*3", "+1"), state_of(TASK, 10, "*3", "+1"), state_of(TASK, 10)]
    )
    assert rows == [[0.8, 0.5, 0.9], [0.8, 0.1], [0.1]]  # the root is valued as itself
    assert policy.usage.model_calls == 1 and prm.usage.model_calls == 1


def test_aggregate_rejects_unknown_names_and_empty_paths():
    with pytest.raises(ConfigError):
        aggregate_scores([0.5], "max")
    with pytest.raises(ConfigError):
        aggregate_scores([], "min")


def test_judge_averages_tot_verdicts_and_ignores_answers_without_one():
    answers = ["3 * 8 = 24\nsure", "too big\nImpossible.", "hmm\nlikely", "no verdict here"]
    policy = MockPolicy(generations=lambda prompt: answers)
    judge = JudgeScorer(TASK, policy, mode="prompt", num_samples=4, temperature=0.7)
    (v,) = judge.value([state_of(TASK, 10, "*3")])
    assert v == pytest.approx((1.0 + 0.001 / 20 + 1 / 20 + 0.0) / 4)
    assert policy.usage.model_calls == 1
    assert TOT_VALUES["sure"] / TOT_VALUES["likely"] == 20  # ToT's 20 / 1 / 0.001
    assert parse_verdict("a\nb: likely\n") == "likely" and parse_verdict("sure\nno") is None


def test_judge_with_a_value_head_reads_the_head():
    policy = MockPolicy(values={"toy-rewards: 10\n*3\n": 0.7})
    judge = JudgeScorer(TASK, policy)  # auto: the mock has a value head
    assert judge.mode == "value_head"
    assert judge.value([state_of(TASK, 10, "*3")]) == [0.7]


def test_q_scorer_is_the_value_of_the_state_after_the_step():
    q = QValueScorer(TASK, MockPolicy(values=STEP_VALUES))
    assert q([state_of(TASK, 10, "*3"), state_of(TASK, 10, "*3", "*3")]) == [0.8, 0.5]


def test_auc_and_calibration_by_hand():
    assert auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    assert auc([0.5, 0.5], [False, True]) == 0.5
    assert auc([0.2, 0.3], [True, True]) is None
    bins, ece = reliability_bins([0.05, 0.15, 0.95], [0.0, 1.0, 1.0], num_bins=10)
    assert [b["count"] for b in bins] == [1, 1, 1]
    assert ece == pytest.approx((0.05 + 0.85 + 0.05) / 3)
    m = step_metrics([0.9, 0.2, 0.6], [True, False, False], mc_labels=[True, False, True])
    assert m["accuracy"] == pytest.approx(2 / 3) and m["mc_agreement"] == 1.0


def test_scorer_names_resolve(tmp_path, tiny_checkpoint):
    policy = MockPolicy()
    assert isinstance(make_scorer("rollout:4", TASK, policy), RolloutScorer)
    assert make_scorer("rollout:4", TASK, policy).num_rollouts == 4
    assert isinstance(make_scorer("judge", TASK, policy), JudgeScorer)
    prm = make_scorer(f"prm:{tiny_checkpoint}:product", TASK, policy)
    assert isinstance(prm, PRMScorer) and prm.aggregate == "product"
    q = make_scorer(f"q:{tiny_checkpoint}", TASK, None)
    assert isinstance(q, QValueScorer)
    assert all(0 <= v <= 1 and not math.isnan(v) for v in q.value([state_of(TASK, 10, "*3")]))
    with pytest.raises(ConfigError, match="rollout:N"):
        make_scorer("rollout:x", TASK, policy)
    assert make_scorer("none", TASK, policy) is None
