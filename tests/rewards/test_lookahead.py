"""LookaheadScorer: one-step backups over a scripted base scorer, worked out by hand."""

from __future__ import annotations

import pytest
from reward_toy_task import ToyTask, state_of

from qstar.errors import ConfigError
from qstar.policy.mock import MockScorer
from qstar.rewards.base import Scorer
from qstar.rewards.lookahead import LookaheadScorer

TASK = ToyTask()  # from 1: three steps of "+1" or "*3"; target 10 = *3 *3 +1
#: Base values by path (the default for any other path is 0.5).
BASE = {("+1",): 0.9, ("*3",): 0.6, ("*3", "+1"): 0.9, ("*3", "*3"): 0.2, ("+1", "+1"): 0.7}


def path_texts(state):
    return tuple(s.text for s in state.steps)


def make(discount=0.9):
    base = MockScorer(BASE, key_fn=path_texts)
    return LookaheadScorer(TASK, base, discount=discount), base


def test_values_back_up_the_best_child_and_final_children_use_the_verifier():
    scorer, base = make()
    states = [
        state_of(TASK, 10),  # children (+1) 0.9 and (*3) 0.6
        state_of(TASK, 10, "*3"),  # children (*3, +1) 0.9 and (*3, *3) 0.2
        state_of(TASK, 10, "*3", "*3"),  # final children 10 (right) and 27 (wrong)
        state_of(TASK, 10, "+1", "+1"),  # final children 4 and 9: both wrong
        state_of(TASK, 10, "*3", "*3", "+1"),  # final and right
        state_of(TASK, 10, "*3", "*3", "*3"),  # final and wrong
    ]
    assert scorer.value(states) == pytest.approx([0.81, 0.81, 0.9, 0.0, 1.0, 0.0])
    # One batched base call for every non-final child of the call, none for final ones.
    assert base.calls == [[("+1",), ("*3",), ("*3", "+1"), ("*3", "*3")]]
    assert list(scorer.base_values.values()) == [0.9, 0.6, 0.9, 0.2]  # the children's, as asked
    assert isinstance(scorer, Scorer) and scorer.name == "lookahead:mock-scorer"


def test_states_are_remembered_and_only_new_work_is_charged():
    scorer, base = make(discount=0.5)
    root = state_of(TASK, 10)
    assert scorer.value([root, root]) == [0.45, 0.45]
    assert scorer.usage.model_calls == 1
    assert scorer.value([root]) == [0.45] and scorer.value([]) == []
    assert len(base.calls) == 1 and scorer.usage.model_calls == 1


def test_a_task_without_listed_steps_or_verdicts_falls_back_to_the_base():
    class Unlisted(ToyTask):
        def legal_steps(self, state):
            return None

    class Unverified(ToyTask):
        def outcome(self, state):
            return None

    state = state_of(TASK, 10, "*3")
    base = MockScorer(BASE, key_fn=path_texts)
    assert LookaheadScorer(Unlisted(), base).value([state]) == [0.6]
    final = state_of(TASK, 10, "*3", "*3", "+1")
    assert LookaheadScorer(Unverified(), base).value([final]) == [0.5]
    # From (*3, *3) both children are final without a verdict: their base values (0.5) back up.
    assert LookaheadScorer(Unverified(), base).value([state_of(TASK, 10, "*3", "*3")]) == [0.45]


def test_discount_is_validated():
    for bad in (0.0, 1.5):
        with pytest.raises(ConfigError, match="discount"):
            make(discount=bad)
