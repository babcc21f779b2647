"""MockPolicy and MockScorer: scripted, stateless and honest about usage."""

from __future__ import annotations

import pytest

from qstar.policy.base import Policy
from qstar.policy.mock import MockPolicy, MockScorer
from qstar.types import Problem, State, Step


def test_mock_policy_implements_the_policy_protocol():
    assert isinstance(MockPolicy(), Policy)


def test_score_looks_up_prompt_and_continuation_then_continuation_then_default():
    policy = MockPolicy(scores={("p\n", "a"): -0.1, "a": -0.2, "b\n": -0.3}, default_logprob=-9.0)
    assert policy.score(["p\n", "q\n"], [["a\n", "b\n", "c\n"], ["a\n"]]) == [[-0.1, -0.3, -9.0], [-0.2]]


def test_score_accepts_a_function_returning_none_for_the_default():
    policy = MockPolicy(scores=lambda p, c: -1.0 if c.startswith("x") else None, default_logprob=-4.0)
    assert policy.score(["p"], [["x\n", "y\n"]]) == [[-1.0, -4.0]]


def test_score_usage_counts_one_call_and_the_words_of_the_continuations():
    policy = MockPolicy()
    policy.score(["a b\n", "c\n"], [["one two\n", "three\n"], ["four\n"]])
    assert (policy.usage.model_calls, policy.usage.tokens_scored, policy.usage.tokens_prompt) == (1, 4, 3)


def test_greedy_generation_repeats_the_first_scripted_line():
    policy = MockPolicy(generations={"p": [("first", -0.5), "second"]})
    (row,) = policy.generate(["p"], num_samples=3, temperature=0.0)
    assert [(g.text, g.logprob) for g in row] == [("first", -0.5)] * 3


def test_sampled_generation_cycles_from_the_seed_across_repeated_prompts():
    policy = MockPolicy(generations={"p": ["a", "b", "c"]}, default_logprob=-2.0)
    rows = policy.generate(["p", "p"], num_samples=2, temperature=1.0, seed=1)
    assert [[g.text for g in row] for row in rows] == [["b", "c"], ["a", "b"]]
    assert rows[0][0].logprob == -2.0
    assert policy.generate(["p", "p"], num_samples=2, temperature=1.0, seed=1) == rows  # stateless


def test_generation_stops_at_the_stop_string_and_counts_words():
    policy = MockPolicy(generations={"p": ["x + y\nmore"]})
    (row,) = policy.generate(["p"], temperature=0.0)
    assert row[0].text == "x + y" and row[0].num_tokens == 3 and row[0].finished
    assert policy.usage.tokens_generated == 3 and policy.usage.model_calls == 1


def test_generation_is_cut_at_max_new_tokens():
    policy = MockPolicy(generations={"p": ["a b c d"]})
    (row,) = policy.generate(["p"], temperature=0.0, max_new_tokens=2)
    assert row[0].text == "a b" and not row[0].finished


def test_unscripted_prompts_get_the_default_generation():
    policy = MockPolicy(default_generation="dunno", default_logprob=-3.0)
    (row,) = policy.generate(["anything"], temperature=0.7)
    assert (row[0].text, row[0].logprob) == ("dunno", -3.0)


def test_value_from_mapping_function_or_default():
    assert MockPolicy(values={"p": 0.9}).value(["p", "q"]) == [0.9, 0.5]
    policy = MockPolicy(values=lambda p: 0.1 if p == "p" else None, default_value=0.7)
    assert policy.value(["p", "q"]) == [0.1, 0.7]
    assert policy.usage.model_calls == 1


def test_mock_scorer_keys_states_by_path_and_records_calls():
    problem = Problem("t", "x")
    states = [State(problem, (Step("a"),)), State(problem, (Step("a"), Step("b")))]
    scorer = MockScorer({("a",): 0.25}, default=0.6)
    assert scorer.value(states) == [0.25, 0.6]
    assert scorer.calls == [[("a",), ("a", "b")]]
    assert scorer.usage.model_calls == 1
    assert MockScorer(lambda s: s.depth / 10).value(states) == pytest.approx([0.1, 0.2])
