"""Smoke test of benchmarks/rewards.py: every part on a tiny random model, tiny settings."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `benchmarks` is a top-level package of the repository
    sys.path.insert(0, str(ROOT))

from benchmarks import rewards, rewards_selection  # noqa: E402


def test_rewards_search_part_smoke(tiny_checkpoint, tmp_path):
    """The Q* part end to end (the arith parts need a policy that writes valid steps, which a
    random model does not; their selection logic is tested below on hand-made samples)."""
    out = tmp_path / "rewards.json"
    args = ["--model", tiny_checkpoint, "--only", "qstar", "--epochs", "1"]
    args += ["--search-problems", "game24=2,countdown-6=1", "--search-budget", "4"]
    args += ["--tree-problems", "2", "--tree-budget", "4", "--out", str(out)]
    rewards.main(args)
    data = json.loads(out.read_text())
    for task in ("game24", "countdown-6"):
        methods = data["qstar"][task]["methods"]
        assert {"blind", "qstar_learned_q", "mcts_shipped_value"} <= set(methods)
        assert all(0 <= m["solved@4"] <= 100 for m in methods.values())
    assert out.with_suffix(".png").is_file()


def test_best_of_n_selection_rules():
    # One problem, 4 samples: answers 5, 5, 7, None (unfinished); 7 is correct.
    answers = [[5, 5, 7, None]]
    correct = [[False, False, True, False]]
    scores = {"good": [[0.1, 0.2, 0.9, 1.0]], "bad": [[0.9, 0.1, 0.2, 1.0]]}
    acc = rewards.best_of_n(answers, correct, scores, np.random.default_rng(0), draws=4)
    assert acc["majority"][4] == 0.0  # two votes for the wrong 5
    assert acc["pass@n"][4] == 100.0
    assert acc["good"][4] == 100.0  # the unfinished sample's score never counts
    assert acc["bad"][4] == 0.0
    assert acc["majority"][1] == acc["good"][1] == acc["bad"][1]  # N = 1: no choice to make


def test_within_problem_auc_ignores_problem_difficulty():
    # Problem 0: every score high; problem 1: every score low. Pooled, "high score = right"
    # looks good; within each problem the scores rank the wrong sample first: AUC 0.
    answers = [[1, 2, None], [3, 4, 5]]
    correct = [[True, False, False], [False, True, False]]
    per = [[0.8, 0.9, 1.0], [0.3, 0.1, 0.2]]
    assert rewards_selection.within_problem_auc(answers, correct, per) == 0.0
    flipped = [[0.9, 0.8, 0.0], [0.1, 0.3, 0.2]]
    assert rewards_selection.within_problem_auc(answers, correct, flipped) == 1.0
    # A problem whose samples are all right (or all wrong) says nothing about ranking.
    assert rewards_selection.within_problem_auc([[1, 1]], [[True, True]], [[0.1, 0.2]]) is None


def test_top_pick_share_tells_an_outlier_picker_from_the_crowd():
    answers = [[5, 5, 5, 7, None]]
    assert rewards_selection.top_pick_share(answers, [[0.9, 0.1, 0.1, 0.2, 1.0]]) == 0.75
    assert rewards_selection.top_pick_share(answers, [[0.1, 0.1, 0.1, 0.9, 1.0]]) == 0.25


def test_step_features_one_row_per_step(tiny_checkpoint):
    from qstar.policy.loading import load_policy
    from qstar.rewards.probe import step_features
    from qstar.tasks.arith import solution_steps
    from qstar.tasks.registry import get_task

    task, policy = get_task("arith"), load_policy(tiny_checkpoint)
    problem = task.problems("test")[0]
    steps = solution_steps(problem)
    feats = step_features(task, policy, [(problem, steps), (problem, [])])
    assert feats[0].shape == (len(steps), 3 + policy.model.config.n_embd)
    assert (feats[0][:, 0] <= 0).all() and (feats[0][:, 2] >= 1).all()  # log-probs, token counts
    assert feats[1].shape[0] == 0


def test_probe_scores_rank_every_finished_sample(tiny_checkpoint):
    from benchmarks.rewards_probe import probe_scores

    from qstar.policy.loading import load_policy
    from qstar.rewards.rollout import Completion
    from qstar.tasks.arith import solution_steps
    from qstar.tasks.registry import get_task

    task, policy = get_task("arith"), load_policy(tiny_checkpoint)
    problems = task.problems("test")[:2]
    data = []
    for k, p in enumerate(problems):
        steps = solution_steps(p)[:2]
        data.append({"problem": p, "steps": steps, "mc": [[k == 0]] * len(steps), "outcome": k == 0})
    state = task.initial_state(problems[0])
    texts = solution_steps(problems[0])
    done = [task.parse_step(state, texts[0])]
    test = [
        [
            Completion(tuple(done), task.apply(state, done[0]), "invalid_step", 5),
            Completion((), state, "unfinished", 0),
        ]
    ]
    got = probe_scores(task, policy, data, test, label_rollouts=1, seed=0)
    assert set(got) == {"probe_prm_min", "probe_prm_product", "probe_orm", "probe_orm_min"}
    for rows in got.values():
        assert 0.0 <= rows[0][0] <= 1.0 and rows[0][1] == -1.0  # a path without steps is never picked


def test_goal_at_16_compares_the_named_rerankers_on_all_and_fresh_problems():
    from types import SimpleNamespace

    bon = {
        "accuracy": {"probe_prm_product": {16: 30.0}, "probe_orm": {16: 24.0}, "orm": {16: 29.0}},
        "accuracy_fresh": {"probe_prm_product": {16: 28.0}, "probe_orm": {16: 25.0}, "orm": {16: 20.0}},
    }
    args = SimpleNamespace(headline="probe_prm_product", headline_orm="probe_orm")
    goal = rewards_selection.goal_at_16(bon, args)
    assert goal["points"] == 6.0 and goal["points_fresh"] == 3.0
    assert goal["met"] is False  # both sets must show the +5
    assert goal["best_prm_variant_at_16"] == "probe_prm_product"
    args.headline_orm = "orm_missing"
    with pytest.raises(SystemExit, match="orm_missing"):
        rewards_selection.goal_at_16(bon, args)


def test_rewards_rejects_no_finetuned_without_probe():
    with pytest.raises(SystemExit, match="add --probe"):
        rewards.main(["--only", "bon", "--no-finetuned"])


def test_easy_arith_test_problems_are_unseen_by_the_policy():
    """The easy test expressions skip every expression the arith policy imitated, and growing
    the test set keeps its first problems (so results on test[:100] stay comparable)."""
    from types import SimpleNamespace

    from benchmarks import rewards_arith
    from qstar.tasks.registry import get_task

    task = get_task("arith")
    seen = {p.text for p in rewards_arith.policy_problems(task)}
    assert len(seen) == rewards_arith.POLICY_PROBLEMS
    args = SimpleNamespace(arith_problems="easy", train_problems=5, test_problems=400, seed=0)
    train, test = rewards_arith.arith_problems(task, args)
    assert not seen & {p.text for p in test}
    assert not {p.text for p in train} & {p.text for p in test}
    small = rewards_arith.arith_problems(task, SimpleNamespace(**{**vars(args), "test_problems": 100}))[1]
    assert [p.text for p in small] == [p.text for p in test[:100]]


def test_plot_reads_a_saved_bon_result(tmp_path):
    """A result read back from JSON (string keys for N) plots, with one panel per part run."""
    acc = {"majority": {"1": 10.0, "4": 20.0}, "probe_prm_product": {"1": 10.0, "4": 30.0}}
    saved = json.loads(json.dumps({"bon": {"accuracy": acc}}))
    path = tmp_path / "bon.png"
    rewards.plot(saved, path)
    assert path.is_file() and path.stat().st_size > 0
