"""The no-model baseline: random-order DFS with the verifier at the leaves."""

from __future__ import annotations

import pytest
from toy_search_task import ToyTask

from qstar.errors import ConfigError
from qstar.search.blind import blind
from qstar.types import Budget


def test_blind_finds_the_solution_without_any_model_call():
    task = ToyTask()
    result = blind(task.problem(10), task, budget=Budget(max_expansions=7), rng=0)
    assert result.solved is True and result.answer == "10"
    assert result.cost.model_calls == 0 and result.cost.tokens == 0
    assert 3 <= result.cost.expansions <= 7


def test_blind_children_are_visited_in_a_seeded_random_order():
    task = ToyTask()
    orders = {tuple(blind(task.problem(100), task, budget=Budget(max_expansions=3), rng=s).tree.expansion_order)
              for s in range(20)}  # fmt: skip
    assert len(orders) > 1
    a = blind(task.problem(100), task, budget=Budget(max_expansions=3), rng=5).tree.to_json()
    b = blind(task.problem(100), task, budget=Budget(max_expansions=3), rng=5).tree.to_json()
    assert a == b


def test_blind_is_depth_first():
    task = ToyTask()
    tree = blind(task.problem(100), task, budget=Budget(max_expansions=3), rng=1).tree
    assert [tree.depth(i) for i in tree.expansion_order] == [0, 1, 2]


def test_blind_spends_the_whole_tree_when_nothing_solves():
    task = ToyTask()
    result = blind(task.problem(100), task, budget=Budget(max_expansions=1000), rng=0)
    assert result.cost.expansions == 7 and result.solved is False


def test_blind_needs_enumerable_steps_and_a_verifier():
    with pytest.raises(ConfigError, match="enumerable"):
        blind(ToyTask(enumerable=False).problem(10), ToyTask(enumerable=False), budget=Budget(10))
    with pytest.raises(ConfigError, match="verifier"):
        blind(ToyTask(verifiable=False).problem(10), ToyTask(verifiable=False), budget=Budget(10))
