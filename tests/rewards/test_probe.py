"""The probe PRM: fitting, saving, features of a frozen tiny GPT, and the scorer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from qstar.errors import ConfigError
from qstar.policy.tinygpt.policy import TinyGPTPolicy
from qstar.rewards.base import NEUTRAL_VALUE
from qstar.rewards.prm import aggregate_scores
from qstar.rewards.probe import NUM_LOGPROB_FEATURES, LinearProbe, ProbePRMScorer, fit_probe, step_features
from qstar.tasks.numbers_oracle import all_solutions
from qstar.tasks.registry import get_task


def test_fit_probe_learns_a_linear_rule_quickly():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    y = (x[:, 2] - 0.5 * x[:, 4] > 0).astype(float)
    probe = fit_probe(x, y)
    p = probe.predict(x)
    assert ((p >= 0.5) == (y == 1)).mean() > 0.95
    assert np.all((p >= 0) & (p <= 1))
    assert abs(probe.weight[2]) > abs(probe.weight[0])  # the informative feature carries weight
    assert len(probe.predict(np.zeros((0, 5)))) == 0


def test_probe_round_trips_through_its_files(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 4))
    probe = fit_probe(x, (x[:, 0] > 0).astype(float))
    probe.save(tmp_path / "p", meta={"base": "somewhere"})
    back, meta = LinearProbe.load(tmp_path / "p")
    assert meta["base"] == "somewhere" and meta["format"] == "qstar-probe"
    np.testing.assert_allclose(back.predict(x), probe.predict(x))
    assert not list((tmp_path / "p").glob("*.tmp"))


def test_bad_probe_input_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="features and N targets"):
        fit_probe(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        fit_probe(np.zeros((2, 2)), np.array([0.0, 2.0]))
    probe = fit_probe(np.eye(2), np.array([0.0, 1.0]))
    with pytest.raises(ConfigError, match=r"\(N, 2\)"):
        probe.predict(np.zeros((1, 3)))
    with pytest.raises(ConfigError, match="cannot read a probe"):
        LinearProbe.load(tmp_path / "missing")


def test_features_are_the_hidden_state_at_the_last_token_whatever_the_batch(tiny_checkpoint):
    policy = TinyGPTPolicy.load(tiny_checkpoint)
    prompts = ["1 2 3 4", "10 11 12 13 and more"]
    batch = policy.features(prompts)
    for prompt, row in zip(prompts, batch, strict=True):
        ids = torch.tensor([[policy.tokenizer.bos_id, *policy.tokenizer.encode(prompt)]])
        with torch.no_grad():
            expected = policy.model.hidden_states(ids)[0, -1]
        np.testing.assert_allclose(row, expected.numpy(), atol=1e-5)
    assert policy.usage.model_calls == 1


def test_probe_scorer_aggregates_the_probe_over_the_steps_and_pays_for_them(tiny_checkpoint):
    task, base = get_task("game24"), TinyGPTPolicy.load(tiny_checkpoint)
    problem = task.parse_problem("4 9 10 13")
    steps = all_solutions(task, problem, limit=1)[0]
    feats = step_features(task, base, [(problem, steps), (problem, [])])
    assert feats[0].shape == (len(steps), NUM_LOGPROB_FEATURES + base.model.config.n_embd)
    assert feats[1].shape[0] == 0
    rng = np.random.default_rng(2)
    probe = LinearProbe(feats[0].mean(0), feats[0].std(0) + 1.0, rng.normal(size=feats[0].shape[1]), 0.1)
    scorer = ProbePRMScorer(task, base, probe, aggregate="product")
    state = task.replay(problem, steps)
    expected = aggregate_scores(probe.predict(feats[0]).tolist(), "product")
    root = task.initial_state(problem)
    assert scorer.value([state, root]) == [pytest.approx(expected, rel=1e-5), NEUTRAL_VALUE]
    assert scorer.usage.model_calls >= 2 and scorer.cost.model_calls == scorer.usage.model_calls
    with pytest.raises(ConfigError):
        ProbePRMScorer(task, base, probe, aggregate="median")


def test_a_saved_probe_is_a_scorer_by_name(tiny_checkpoint, tmp_path):
    from qstar.rewards.prm import make_extra_scorer

    task, base = get_task("game24"), TinyGPTPolicy.load(tiny_checkpoint)
    width = NUM_LOGPROB_FEATURES + base.model.config.n_embd
    probe = LinearProbe(np.zeros(width), np.ones(width), np.full(width, 0.01), 0.0)
    probe.save(tmp_path / "probe", meta={"base": tiny_checkpoint})
    scorer = make_extra_scorer(f"probe:{tmp_path / 'probe'}:min", task, None)
    assert isinstance(scorer, ProbePRMScorer) and scorer.aggregate == "min"
    problem = task.parse_problem("4 9 10 13")
    state = task.replay(problem, all_solutions(task, problem, limit=1)[0])
    assert 0.0 <= scorer.value([state])[0] <= 1.0
    probe.save(tmp_path / "nobase")
    with pytest.raises(ConfigError, match="names no base"):
        make_extra_scorer(f"probe:{tmp_path / 'nobase'}", task, None)


def _label_file(path, task, puzzles):
    """Two labelled paths a puzzle: an oracle solution (every step right) and a path that
    ends wrong after its first step."""
    from qstar.rewards.labels import LabelRecord

    lines = []
    for puzzle in puzzles:
        problem = task.parse_problem(puzzle)
        good = all_solutions(task, problem, limit=1)[0]
        first = task.initial_state(problem)
        bad_step = next(s for s in task.legal_steps(first) if s.text != good[0])
        state, bad = task.apply(first, bad_step), [bad_step.text]
        while not task.is_terminal(state):
            step = task.legal_steps(state)[0]
            state, bad = task.apply(state, step), [*bad, step.text]
        ok = task.outcome(state) == 1.0
        meta = {"task": task.name, "problem": problem.text, "problem_id": puzzle}
        root = task.render(first)
        lines.append(LabelRecord(root, tuple(good), (True,) * len(good), (1.0,) * len(good), (), meta))
        labels = (True,) + (ok,) * (len(bad) - 1) if ok else (False,) * len(bad)
        lines.append(LabelRecord(root, tuple(bad), labels, tuple(map(float, labels)), (), meta))
    path.write_text("".join(json.dumps(r.to_json()) + "\n" for r in lines))


def test_train_prm_probe_cli_end_to_end(tiny_checkpoint, tmp_path, capsys):
    from qstar.cli.main import main

    task = get_task("game24")
    labels = tmp_path / "labels.jsonl"
    _label_file(labels, task, ["4 9 10 13", "1 1 4 6", "2 2 10 10", "1 5 5 5", "3 3 8 8", "1 2 3 4"])
    out = tmp_path / "probe"
    args = ["train", "prm", "--labels", str(labels), "--out", str(out), "--probe", "--quiet"]
    assert main([*args, "--init", tiny_checkpoint, "--val-frac", "0.3"]) == 0
    assert "saved probe PRM" in capsys.readouterr().out
    scorer = ProbePRMScorer.load(task, out)
    _, meta = LinearProbe.load(out)
    assert meta["trainer"] == "probe" and meta["metrics"]["num_train"] > 0
    problem = task.parse_problem("4 9 10 13")
    assert 0.0 <= scorer.value([task.replay(problem, all_solutions(task, problem, limit=1)[0])])[0] <= 1.0
    assert main([*args, "--init", "fresh"]) == 2
    assert "reads a trained model" in capsys.readouterr().err
    labels.write_text(labels.read_text().replace('"problem": "4 9 10 13"', '"problem": "1 1 1 1"', 1))
    assert main([*args, "--init", tiny_checkpoint]) == 2
    assert "does not replay" in capsys.readouterr().err
