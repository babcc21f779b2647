import random

import pytest

from qstar.errors import ConfigError
from qstar.tasks.registry import get_task
from qstar.training.loop_config import LoopConfig
from qstar.training.loop_data import held_out_headers, held_out_texts, rule_steps, split_choice

TINY_ONE_ROUND = dict(
    rounds=1,
    problems_per_round=2,
    search_budget=8,
    n_layer=1,
    n_head=2,
    n_embd=32,
    block_size=128,
    train_steps=2,
    batch_size=6,
    num_eval_problems=2,
    eval_budget=3,
)


@pytest.mark.parametrize("name", ["game24", "countdown-4"])
def test_rule_steps_are_legal_and_never_held_out(name):
    task = get_task(name)
    held_out, headers = held_out_texts(task), held_out_headers(task)
    pairs = rule_steps(task, 60, random.Random(1), held_out)
    assert len(pairs) == 60
    depths = set()
    for prompt, step in pairs:
        assert prompt.split("\n", 1)[0] not in headers
        state = _state_of(task, prompt)
        depths.add(len(state.steps))
        task.apply(state, task.parse_step(state, step))  # raises if the step is illegal
    assert len(depths) > 1  # states at several depths, not only the problem itself


def test_rule_steps_reproducible_from_the_rng():
    task = get_task("game24")
    assert rule_steps(task, 10, random.Random(3), frozenset()) == rule_steps(
        task, 10, random.Random(3), frozenset()
    )


def test_rules_fraction_needs_a_rule_generator():
    with pytest.raises(ConfigError, match="rules_fraction"):
        LoopConfig(task="arith", rules_fraction=0.3)
    LoopConfig(task="arith")
    with pytest.raises(ConfigError, match="rules_fraction"):
        LoopConfig(rules_fraction=1.0)


def _state_of(task, prompt):
    """Replay the steps written in a rendered prompt from its first line."""
    header, *lines = [line for line in prompt.split("\n") if line]
    state = task.initial_state(task.parse_problem(header.split(":", 1)[1].strip()))
    for line in lines:
        state = task.apply(state, task.parse_step(state, line))
    return state


def test_split_choice_cuts_before_the_result():
    assert split_choice("10 - 4 = 6 (left: 5 6 6)") == ("10 - 4", " = 6 (left: 5 6 6)")
    assert split_choice("The answer is 6") == ("", "The answer is 6")


def test_loop_with_rule_lines_runs_and_is_reproducible(tmp_path):
    from qstar.training.expert_iteration import run_loop

    tiny = {**TINY_ONE_ROUND, "rules_fraction": 0.5}
    a = run_loop(LoopConfig(**tiny), tmp_path / "a")
    b = run_loop(LoopConfig(**tiny), tmp_path / "b")
    assert a[0]["lm_loss"] is not None  # rule lines train the LM even before any solved state
    assert a[0]["lm_loss"] == b[0]["lm_loss"]


def test_rules_warmup_teaches_lines_before_round_one(tmp_path):
    from qstar.policy.tinygpt.checkpoint import load_checkpoint
    from qstar.training.expert_iteration import run_loop
    from qstar.training.runs import RunDir

    tiny = {**TINY_ONE_ROUND, "rules_warmup_steps": 3}
    run_loop(LoopConfig(**tiny), tmp_path / "warm")
    run_loop(LoopConfig(**{**tiny, "rules_warmup_steps": 0}), tmp_path / "cold")
    warm = load_checkpoint(tmp_path / "warm" / "checkpoints" / "round-0000").model.state_dict()
    cold = load_checkpoint(tmp_path / "cold" / "checkpoints" / "round-0000").model.state_dict()
    assert any(not (warm[k] == cold[k]).all() for k in warm)  # round 0 is the warmed-up model
    counters = RunDir(tmp_path / "warm").load_round(1).counters
    assert counters["rules_warmup"]["rules_warmup_steps"] == 3
