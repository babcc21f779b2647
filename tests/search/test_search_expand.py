"""expand / sample_steps / evaluate: the bridge from task + policy + scorer, and its cost."""

from __future__ import annotations

import math

import numpy as np
import pytest
from toy_search_task import ToyTask, content_key

from qstar.errors import ConfigError
from qstar.policy.mock import MockPolicy, MockScorer
from qstar.search.expand import ExpandStats, evaluate, expand, sample_steps, softmax
from qstar.types import Cost


def states_of(task, *paths):
    out = []
    for path in paths:
        s = task.initial_state(task.problem(10))
        for op in path:
            s = task.apply(s, task.parse_step(s, op))
        out.append(s)
    return out


def test_enumerable_priors_are_the_softmax_of_the_scored_logprobs():
    task = ToyTask()
    policy = MockPolicy(scores={"+1": -1.0, "*3": -2.0})
    cost = Cost()
    (children,) = expand(task, policy, states_of(task, ()), cost=cost)
    e1, e2 = math.exp(-1.0), math.exp(-2.0)
    assert [s.text for s, _ in children] == ["+1", "*3"]
    assert [s.logprob for s, _ in children] == [-1.0, -2.0]
    assert [p for _, p in children] == pytest.approx([e1 / (e1 + e2), e2 / (e1 + e2)])


def test_enumerable_expansion_is_one_batched_score_call_for_all_states():
    task = ToyTask()
    policy = MockPolicy()
    cost = Cost()
    out = expand(task, policy, states_of(task, (), ("+1",), ("*3", "*3", "+1")), cost=cost)
    assert policy.usage.model_calls == 1
    assert [len(c) for c in out] == [2, 2, 0]  # the terminal state has no children
    # 3 expansions; two states scored, each with two one-word continuations.
    assert (cost.expansions, cost.model_calls, cost.tokens_scored, cost.tokens_generated) == (3, 1, 4, 0)
    assert [p for _, p in out[0]] == pytest.approx([0.5, 0.5])


def test_open_ended_expansion_drops_bad_lines_merges_duplicates_and_normalises_priors():
    task = ToyTask(enumerable=False)
    lines = [
        ("+1", math.log(0.4)),
        ("hello", -0.1),
        ("+5", -0.1),
        ("+1", math.log(0.4)),
        ("*3", math.log(0.1)),
    ]
    policy = MockPolicy(generations=lambda prompt: lines)
    cost, stats = Cost(), ExpandStats()
    (children,) = expand(
        task, policy, states_of(task, ()), num_samples=5, temperature=1.0, cost=cost, stats=stats
    )
    assert [s.text for s, _ in children] == ["+1", "*3"]
    assert [p for _, p in children] == pytest.approx([0.8, 0.2])
    assert (stats.num_generated, stats.num_unparsable, stats.num_illegal, stats.num_duplicates) == (
        5,
        1,
        1,
        1,
    )
    assert [r[0] for r in stats.rejected] == ["hello", "+5"]
    # one generate call; words generated: +1, hello, +5, +1, *3
    assert (cost.model_calls, cost.tokens_generated, cost.expansions) == (1, 5, 1)


def test_open_ended_expansion_passes_a_seed_drawn_from_rng():
    task = ToyTask(enumerable=False)
    policy = MockPolicy(generations=lambda prompt: ["+1", "*3"])
    a = expand(task, policy, states_of(task, ()), num_samples=1, cost=Cost(), rng=np.random.default_rng(7))
    b = expand(task, policy, states_of(task, ()), num_samples=1, cost=Cost(), rng=np.random.default_rng(7))
    assert a == b


def test_no_policy_gives_a_uniform_prior_without_model_calls():
    task = ToyTask(ops=("+1", "*2", "*3"))
    cost = Cost()
    (children,) = expand(task, None, states_of(task, ()), cost=cost)
    assert [p for _, p in children] == pytest.approx([1 / 3] * 3)
    assert (cost.expansions, cost.model_calls) == (1, 0)


def test_no_policy_on_an_open_ended_task_is_a_config_error():
    task = ToyTask(enumerable=False)
    with pytest.raises(ConfigError, match="enumerable"):
        expand(task, None, states_of(task, ()), cost=Cost())


def test_sample_steps_generates_one_line_per_state_even_on_enumerable_tasks():
    task = ToyTask()
    policy = MockPolicy(generations={"toy: 10\n": ["*3", "+1"], "toy: 10\n+1\n": ["oops"]})
    cost, stats = Cost(), ExpandStats()
    steps = sample_steps(task, policy, states_of(task, (), ("+1",)), temperature=0.0, cost=cost, stats=stats)
    assert steps[0].text == "*3" and steps[1] is None
    assert stats.num_unparsable == 1
    assert (cost.expansions, cost.model_calls, cost.tokens_generated) == (2, 1, 2)


def test_evaluate_uses_the_free_verifier_on_terminal_states_and_one_scorer_call_for_the_rest():
    task = ToyTask()
    scorer = MockScorer({(2, 1): 0.3, (4, 1): 0.9}, key_fn=content_key)
    cost = Cost()
    states = states_of(task, ("+1",), ("*3", "*3", "+1"), ("+1", "+1", "+1"), ("*3",))
    assert evaluate(task, scorer, states, cost=cost) == [0.3, 1.0, 0.0, 0.5]
    assert scorer.calls == [[(2, 1), (3, 1)]]
    assert cost.model_calls == 1 and cost.expansions == 0


def test_evaluate_asks_the_scorer_about_terminal_states_of_unverifiable_tasks():
    task = ToyTask(verifiable=False)
    scorer = MockScorer(default=0.25)
    assert evaluate(task, scorer, states_of(task, ("*3", "*3", "+1")), cost=Cost()) == [0.25]


def test_evaluate_without_a_scorer_is_a_config_error():
    task = ToyTask()
    with pytest.raises(ConfigError, match="scorer"):
        evaluate(task, None, states_of(task, ("+1",)), cost=Cost())


def test_softmax_is_stable_for_large_logits():
    assert softmax([1000.0, 1000.0]) == pytest.approx([0.5, 0.5])
    assert softmax([-math.inf, -math.inf]) == [0.5, 0.5]
    assert softmax([]) == []
