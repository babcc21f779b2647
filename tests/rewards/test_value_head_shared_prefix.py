"""ValueHeadScorer with a policy that has ``value_after``: the children of one node share
their parent's text, which is run once; the values are those of plain ``policy.value``."""

from __future__ import annotations

import pytest
import torch

from qstar.policy.tinygpt.model import GPT, GPTConfig
from qstar.policy.tinygpt.policy import TinyGPTPolicy
from qstar.policy.tinygpt.tokenizer import Tokenizer
from qstar.rewards.value_head import ValueHeadScorer
from qstar.tasks.game24 import Game24Task


@pytest.fixture(scope="module")
def policy() -> TinyGPTPolicy:
    tok = Tokenizer()
    config = GPTConfig(
        vocab_size=tok.vocab_size, block_size=96, n_layer=2, n_head=2, n_embd=32, position="rope"
    )
    net = GPT(config, seed=3)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "value_head" in name:
                p.normal_(0.0, 0.5, generator=gen)  # values spread away from 0.5
    return TinyGPTPolicy(net.eval(), tok)


class Spy:
    """Counts which of the policy's value methods a scorer calls."""

    def __init__(self, policy: TinyGPTPolicy) -> None:
        self.policy, self.usage, self.calls = policy, policy.usage, []

    def value(self, prompts):
        self.calls.append(("value", len(prompts)))
        return self.policy.value(prompts)

    def value_after(self, prompts, continuations):
        self.calls.append(("value_after", [len(c) for c in continuations]))
        return self.policy.value_after(prompts, continuations)


def test_children_share_their_parent_and_get_the_plain_values(policy):
    task = Game24Task()
    root = task.initial_state(task.problems("train")[0])
    kids = [task.apply(root, step) for step in task.legal_steps(root)[:5]]
    grandchild = task.apply(kids[0], task.legal_steps(kids[0])[0])
    states = [*kids[:3], grandchild, *kids[3:], root]
    spy = Spy(policy)
    got = ValueHeadScorer(task, spy).value(states)
    assert got == pytest.approx(policy.value([task.render(s) for s in states]), abs=1e-5)
    assert len(set(got)) > 3  # the values differ, so an order mix-up would show
    # The five children share the root's text: one value_after; the grandchild and the root
    # have no sibling here: one plain value call.
    assert spy.calls == [("value_after", [5]), ("value", 2)]


def test_states_without_siblings_take_one_plain_call(policy):
    task = Game24Task()
    root = task.initial_state(task.problems("train")[1])
    kid = task.apply(root, task.legal_steps(root)[0])
    spy = Spy(policy)
    got = ValueHeadScorer(task, spy).value([root, kid])
    assert got == pytest.approx(policy.value([task.render(root), task.render(kid)]), abs=1e-6)
    assert spy.calls == [("value", 2)]
