"""The value sweep: swept states, backed-up targets, held-out guard, end to end."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest
import torch

from qstar.cli.main import main
from qstar.errors import ConfigError
from qstar.policy.tinygpt.checkpoint import load_checkpoint
from qstar.policy.tinygpt.policy import TinyGPTPolicy
from qstar.policy.tinygpt.tokenizer import Tokenizer
from qstar.tasks.registry import get_task
from qstar.training.sft import ValueExample
from qstar.training.value_sweep import (
    SweepConfig,
    fit_values,
    states_at_depth,
    sweep_examples,
    sweep_job,
    value_sweep,
)
from qstar.training.workers import Job


def _job(task, problems, checkpoint, config, seeds=None):
    seeds = seeds or list(range(len(problems)))
    return Job(task.name, Job.pack(problems, seeds), str(checkpoint), knobs=asdict(config))


def test_config_is_validated():
    with pytest.raises(ConfigError, match="depth must be an integer >= 1"):
        SweepConfig(depth=0)
    with pytest.raises(ConfigError, match="states_per_problem must be an integer >= 0"):
        SweepConfig(states_per_problem=-1)
    with pytest.raises(ConfigError, match="discount"):
        SweepConfig(discount=0.0)
    with pytest.raises(ConfigError, match="anchor_fraction"):
        SweepConfig(anchor_fraction=1.5)
    with pytest.raises(ConfigError, match="lm_anchor"):
        SweepConfig(lm_anchor=-1.0)
    with pytest.raises(ConfigError, match="steps"):
        SweepConfig(steps=0)


def test_states_at_depth_are_the_distinct_open_states_that_many_steps_down():
    task = get_task("game24")
    problem = task.parse_problem("1 1 4 6")
    root = task.initial_state(problem)
    first = states_at_depth(task, problem, 1)
    renders = [task.render(s) for s in first]
    assert len(renders) == len(set(renders))
    assert set(renders) == {task.render(task.apply(root, step)) for step in task.legal_steps(root)}
    second = states_at_depth(task, problem, 2)
    assert second and all(s.depth == 2 and len(s.content.values) == 2 for s in second)
    assert states_at_depth(task, problem, 3) == []  # one number left: final, nothing to sweep


def test_targets_are_the_discounted_best_child_and_the_verifier_on_final_children(tiny_checkpoint):
    task = get_task("game24")
    problem = task.parse_problem("1 1 4 6")
    config = SweepConfig(depth=2, anchor_fraction=0.5, discount=0.8)
    (record,) = sweep_job(_job(task, [problem], tiny_checkpoint, config))
    policy = TinyGPTPolicy.load(tiny_checkpoint)
    states = states_at_depth(task, problem, 2)
    assert [p for p, _ in record["targets"]] == [task.render(s) for s in states]
    winners = 0
    for state, (_, target) in zip(states, record["targets"], strict=True):
        kids = [task.apply(state, step) for step in task.legal_steps(state)]
        assert all(task.is_terminal(k) for k in kids)  # two numbers: every child is final
        best = max(task.outcome(k) for k in kids)  # the verifier, no value call
        assert target == pytest.approx(0.8 * best)
        winners += best == 1.0
    assert 0 < winners < len(states)  # e.g. 4 * 6 wins, 1 + 1 does not
    first = SweepConfig(depth=1, anchor_fraction=0.5, discount=0.8)
    (record,) = sweep_job(_job(task, [problem], tiny_checkpoint, first))
    state = states_at_depth(task, problem, 1)[0]
    kids = [task.apply(state, step) for step in task.legal_steps(state)]
    expected = 0.8 * max(policy.value([task.render(k) for k in kids]))
    assert record["targets"][0] == [task.render(state), pytest.approx(expected, abs=1e-5)]
    prompts = [task.render(k) for k in kids]
    values = dict(zip(prompts, policy.value(prompts), strict=True))
    anchored = [a for a in record["anchors"] if a[0] in values]
    assert anchored and all(v == pytest.approx(values[p], abs=1e-5) for p, v in anchored)
    assert record["cost"]["model_calls"] >= 1 and record["cost"]["expansions"] == len(record["targets"])
    assert record["prompt_tokens"] > 0 and record["cost"]["tokens"] == 0  # value calls write nothing


def test_sampling_is_seeded_and_bounded(tiny_checkpoint):
    task = get_task("game24")
    problems = task.problems("train")[:2]
    config = SweepConfig(states_per_problem=3)
    job = _job(task, problems, tiny_checkpoint, config, seeds=[5, 6])
    first, again = sweep_job(job), sweep_job(job)
    strip = [{k: v for k, v in r.items() if k != "cpu_seconds"} for r in first]
    assert strip == [{k: v for k, v in r.items() if k != "cpu_seconds"} for r in again]
    assert all(len(r["targets"]) == 3 for r in first)
    other = sweep_job(_job(task, problems, tiny_checkpoint, config, seeds=[7, 8]))
    assert [r["targets"] for r in other] != [r["targets"] for r in first]
    examples, sizes = sweep_examples(first)
    assert sizes["targets"] == 6 and len(examples) == sizes["targets"] + sizes["anchors"]


def test_held_out_problems_and_tasks_without_steps_are_refused(tiny_checkpoint, tmp_path):
    task = get_task("game24")
    with pytest.raises(AssertionError, match="held-out"):
        value_sweep(tiny_checkpoint, tmp_path / "x", SweepConfig(), problems=task.problems("val")[:1])
    with pytest.raises(ConfigError, match="enumerates its steps"):
        value_sweep(tiny_checkpoint, tmp_path / "y", SweepConfig(), task_name="arith", progress=False)


def test_cli_train_sweep_end_to_end(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "swept"
    args = ["train", "sweep", "--init", tiny_checkpoint, "--out", str(out), "--num-problems", "2"]
    main(
        [
            *args,
            "--states-per-problem",
            "4",
            "--steps",
            "3",
            "--batch-size",
            "4",
            "--precision",
            "bf16",
            "--quiet",
        ]
    )
    assert "saved" in capsys.readouterr().out
    card = json.loads((out / "sweep_summary.json").read_text())
    assert card["trainer"] == "sweep" and card["data"]["targets"] == 8
    assert card["sweep_config"]["precision"] == "bf16"
    assert card["command"].startswith("qstar ") and card["sweep_config"]["states_per_problem"] == 4
    before, after = load_checkpoint(tiny_checkpoint).model, load_checkpoint(out).model
    changed = [
        name
        for (name, a), (_, b) in zip(before.state_dict().items(), after.state_dict().items(), strict=True)
        if not torch.equal(a, b)
    ]
    assert any(name.startswith("value_head") for name in changed)
    assert main([*args, "--depth", "0"]) == 2
    assert "depth must be an integer >= 1" in capsys.readouterr().err


def test_the_lm_anchor_keeps_the_policy_near_the_initial_model(tiny_checkpoint):
    task = get_task("game24")
    problem = task.parse_problem("1 1 4 6")
    prompts = [task.render(s) for s in states_at_depth(task, problem, 1)]
    examples = [ValueExample(p, 1.0 if i % 2 else 0.0) for i, p in enumerate(prompts)]
    reference = load_checkpoint(tiny_checkpoint).model
    drift = {}
    for weight in (0.0, 10.0):
        model = load_checkpoint(tiny_checkpoint).model
        config = SweepConfig(steps=30, batch_size=8, lr=1e-2, lm_anchor=weight)
        metrics = fit_values(model, Tokenizer(), examples, config, reference=reference, progress=False)
        assert metrics["step"] == 30 and metrics["value_loss"] > 0
        ids = torch.tensor([[Tokenizer().bos_id, *Tokenizer().encode(prompts[0])]])
        with torch.no_grad():
            new, old = (
                model.lm_head(model.hidden_states(ids)),
                reference.lm_head(reference.hidden_states(ids)),
            )
        drift[weight] = float((new.log_softmax(-1) - old.log_softmax(-1)).abs().max())
    assert drift[10.0] < drift[0.0] / 2


def test_plain_value_calls_give_the_same_targets_as_the_shared_prefix_path(tiny_checkpoint):
    from qstar.training import value_sweep as module

    class PlainValues:  # a policy with value() only: the scorer's fallback path
        def __init__(self, inner):
            self.value, self.usage = inner.value, inner.usage

    task = get_task("game24")
    problem = task.parse_problem("1 1 4 6")
    states = states_at_depth(task, problem, 1)[:4]
    policy = TinyGPTPolicy.load(tiny_checkpoint)
    config = SweepConfig(anchor_fraction=0.5)
    shared = module._backups(task, policy, states, config, np.random.default_rng(0))
    plain = module._backups(task, PlainValues(policy), states, config, np.random.default_rng(0))
    for got, want in zip(shared, plain, strict=True):
        assert [p for p, _ in got] == [p for p, _ in want] and len(got) >= 4
        assert [v for _, v in got] == pytest.approx([v for _, v in want], abs=1e-5)
