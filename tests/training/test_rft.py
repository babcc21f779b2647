"""The RFT / STaR baseline: sampled paths, their targets, and the loop run with method="rft"."""

from __future__ import annotations

import numpy as np
import pytest

from qstar.policy.mock import MockPolicy
from qstar.rewards.value_head import ValueHeadScorer
from qstar.search.tree import is_solution
from qstar.tasks.registry import get_task
from qstar.training.loop_config import LoopConfig
from qstar.training.rft import rft_config, run_rft, sample_paths
from qstar.training.targets import tree_targets
from qstar.training.workers import value_children

RIGHT = ["13 - 9 = 4 (left: 4 4 10)", "10 - 4 = 6 (left: 4 6)", "6 * 4 = 24 (left: 24)"]


def right_path_script() -> dict[str, list[str]]:
    return {"game24: 4 9 10 13\n" + "".join(s + "\n" for s in RIGHT[:i]): [RIGHT[i]] for i in range(3)}


def test_legal_sampler_walks_legal_steps_and_counts_paths():
    task = get_task("game24")
    problem = task.parse_problem("4 9 10 13")
    tree, cost = sample_paths(task, MockPolicy(), problem, num_paths=12, rng=np.random.default_rng(0))
    assert tree.visits[0] == 12
    leaves = [i for i in range(len(tree)) if tree.terminal[i] and tree.visits[i] > 0]
    assert sum(tree.visits[i] for i in leaves) == 12  # every path ends at a terminal state
    solved = sum(tree.visits[i] for i in leaves if is_solution(tree, i))
    assert tree.q[0] == pytest.approx(solved / 12)
    # One expansion per distinct state on the paths; every legal step is scored (tokens).
    assert cost.expansions == sum(1 for i in range(len(tree)) if tree.expanded[i])
    assert cost.tokens_scored > 0 and cost.tokens_generated == 0


def test_legal_sampler_is_reproducible_from_its_seed():
    task = get_task("game24")
    problem = task.parse_problem("1 2 3 4")
    a, _ = sample_paths(task, MockPolicy(), problem, num_paths=8, rng=np.random.default_rng(5))
    b, _ = sample_paths(task, MockPolicy(), problem, num_paths=8, rng=np.random.default_rng(5))
    assert a.to_json() == b.to_json()


def test_generate_sampler_keeps_what_the_model_writes():
    task = get_task("game24")
    problem = task.parse_problem("4 9 10 13")
    policy = MockPolicy(generations=right_path_script())
    tree, cost = sample_paths(
        task, policy, problem, num_paths=4, sampler="generate", rng=np.random.default_rng(0)
    )
    assert tree.q[0] == 1.0 and cost.tokens_generated > 0
    tt = tree_targets(tree, policy_mode="verified", value_mode="q", exhaustive=False)
    assert [dist for _, dist in tt.policy] == [{s: 1.0} for s in RIGHT]
    assert all(v == 1.0 for _, v in tt.values)
    garbage = MockPolicy(default_generation="24!")
    tree, _ = sample_paths(
        task, garbage, problem, num_paths=4, sampler="generate", rng=np.random.default_rng(0)
    )
    assert len(tree) == 1 and tree.q[0] == 0.0


def test_rft_config_sets_the_baseline_targets():
    config = rft_config(LoopConfig(rounds=3), samples_per_problem=4)
    assert (config.method, config.policy_target, config.value_target) == ("rft", "verified", "q")
    assert config.rounds == 3 and config.samples_per_problem == 4


def tiny_rft(**changes) -> LoopConfig:
    """One round of RFT on a 1-layer model, a few problems, tiny evaluation."""
    base = {
        "rounds": 1,
        "problems_per_round": 2,
        "samples_per_problem": 3,
        "n_layer": 1,
        "n_head": 2,
        "n_embd": 32,
        "block_size": 128,
        "train_steps": 2,
        "batch_size": 8,
        "num_eval_problems": 2,
        "eval_budget": 3,
    }
    return rft_config(LoopConfig(**base), **changes)


def test_rft_loop_spends_its_token_budget_in_waves(tmp_path):
    config = tiny_rft(problems_per_round=8, samples_per_problem=4, max_tokens_per_round=1, wave_size=2)
    (metrics,) = run_rft(config, tmp_path / "rft")
    assert metrics["method"] == "rft"
    assert metrics["problems_searched"] == 2  # one wave spent the (tiny) budget
    assert metrics["tokens"] > 0 and "system1_val_acc" in metrics


def test_lookahead_targets_value_every_child_of_an_expanded_node():
    """value_children fills the children sampling left unvalued (value calls charged to the
    cost); then every expanded non-terminal node gets a "lookahead" target, preferring the
    child the value script rates highest."""
    task = get_task("game24")
    problem = task.parse_problem("4 9 10 13")
    good = "game24: 4 9 10 13\n" + RIGHT[0] + "\n"
    policy = MockPolicy(values={good: 0.9}, default_value=0.1)
    tree, cost = sample_paths(task, policy, problem, num_paths=4, rng=np.random.default_rng(0))
    calls = cost.model_calls
    value_children(tree, ValueHeadScorer(task, policy, cost=cost))
    assert cost.model_calls == calls + 1  # one batched value call
    for n in range(len(tree)):
        if tree.expanded[n]:
            assert all(tree.value[c] is not None or tree.terminal[c] for c in tree.children[n])
    targets = dict(
        tree_targets(tree, policy_mode="lookahead", value_mode="q", exhaustive=True, temperature=0.1).policy
    )
    expanded = [n for n in range(len(tree)) if tree.expanded[n] and tree.children[n] and not tree.terminal[n]]
    assert len(targets) == len(expanded)
    root = targets["game24: 4 9 10 13\n"]
    assert max(root, key=root.get) == RIGHT[0] and abs(sum(root.values()) - 1) < 1e-9


def test_rft_loop_runs_with_lookahead_targets(tmp_path):
    config = tiny_rft(policy_target="lookahead", value_target="lookahead")
    (metrics,) = run_rft(config, tmp_path / "rft")
    assert metrics["policy_states"] >= 2  # at least each root, solved or not
    assert metrics["value_examples"] >= 2  # every expanded node is backed up
