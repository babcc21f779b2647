"""VerifierScorer and ValueHeadScorer."""

from __future__ import annotations

import pytest

from qstar.errors import ConfigError
from qstar.policy.mock import MockPolicy
from qstar.rewards.base import NEUTRAL_VALUE, Scorer
from qstar.rewards.value_head import ValueHeadScorer
from qstar.rewards.verifier import VerifierScorer
from qstar.tasks.base import TaskBase
from qstar.types import Cost, Problem, State, Step


class ToyTask(TaskBase):
    """From 1, apply "+1" or "*3" three times; right when the number is 10."""

    name = "toy"
    max_steps = 3

    def __init__(self, *, verifiable: bool = True):
        self.has_test_time_verifier = verifiable

    def problem(self, target: int) -> Problem:
        return Problem(self.name, str(target), {"target": target})

    def initial_state(self, problem: Problem) -> State:
        return State(problem, (), 1)

    def parse_step(self, state: State, text: str) -> Step:
        return Step(text)

    def apply(self, state: State, step: Step) -> State:
        value = state.content + 1 if step.text == "+1" else state.content * 3
        return State(state.problem, (*state.steps, step), value)

    def is_terminal(self, state: State) -> bool:
        return state.depth >= 3

    def outcome(self, state: State) -> float | None:
        return float(state.content == state.problem.data["target"]) if self.is_terminal(state) else None


def walk(task, *ops):
    s = task.initial_state(task.problem(10))
    for op in ops:
        s = task.apply(s, task.parse_step(s, op))
    return s


def test_terminal_states_get_the_outcome_and_others_the_neutral_value():
    task = ToyTask()
    scorer = VerifierScorer(task)
    states = [walk(task, "*3", "*3", "+1"), walk(task, "+1", "+1", "+1"), walk(task, "*3")]
    assert scorer.value(states) == [1.0, 0.0, 0.5]
    assert NEUTRAL_VALUE == 0.5
    assert isinstance(scorer, Scorer)


def test_verifier_scorer_costs_nothing():
    task = ToyTask()
    scorer = VerifierScorer(task)
    scorer.value([walk(task, "*3")])
    assert scorer.usage.model_calls == 0


def test_a_task_without_test_time_verifier_cannot_be_scored_by_the_verifier():
    with pytest.raises(ConfigError, match="no test-time verifier"):
        VerifierScorer(ToyTask(verifiable=False))


def test_neutral_value_is_configurable_within_0_1():
    task = ToyTask()
    assert VerifierScorer(task, neutral=0.3).value([walk(task)]) == [0.3]
    with pytest.raises(ConfigError):
        VerifierScorer(task, neutral=1.5)


def test_value_head_scorer_asks_the_policy_once_per_batch_and_charges_usage():
    task = ToyTask()
    policy = MockPolicy(values={"toy: 10\n*3\n": 0.8})
    cost = Cost()
    scorer = ValueHeadScorer(task, policy, cost=cost)
    assert scorer.value([walk(task, "*3"), walk(task, "+1")]) == [0.8, 0.5]
    assert policy.usage.model_calls == 1
    assert scorer.usage.model_calls == 1 and scorer.usage.tokens_prompt == 6  # "toy: 10 *3" twice
    assert cost.model_calls == 1
    assert scorer.value([]) == [] and policy.usage.model_calls == 1
    assert isinstance(scorer, Scorer)


def test_value_head_scorer_keeps_its_own_cost_when_none_is_given():
    task = ToyTask()
    scorer = ValueHeadScorer(task, MockPolicy())
    scorer.value([walk(task)])
    scorer.value([walk(task)])
    assert scorer.cost.model_calls == 2
