"""`--scorer auto` picks the best scorer a (model, task) pair allows."""

from __future__ import annotations

from qstar.policy.mock import MockPolicy
from qstar.rewards.judge import JudgeScorer
from qstar.rewards.registry import make_scorer
from qstar.rewards.value_head import ValueHeadScorer
from qstar.rewards.verifier import VerifierScorer
from qstar.tasks.registry import get_task


def test_auto_uses_the_value_head_when_the_model_has_one():
    assert isinstance(make_scorer("auto", get_task("arith"), MockPolicy()), ValueHeadScorer)


def test_auto_uses_the_verifier_for_a_headless_model_on_a_verifiable_task():
    policy = MockPolicy()
    policy.has_value_head = False
    assert isinstance(make_scorer("auto", get_task("game24"), policy), VerifierScorer)


def test_auto_asks_the_model_as_a_judge_when_there_is_neither_head_nor_verifier():
    policy = MockPolicy()
    policy.has_value_head = False
    assert isinstance(make_scorer("auto", get_task("gsm8k"), policy), JudgeScorer)


def test_auto_without_a_model_on_an_unverifiable_task_is_no_scorer():
    assert make_scorer("auto", get_task("arith"), None) is None
