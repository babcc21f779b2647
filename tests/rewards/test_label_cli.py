"""`qstar label` and `qstar train prm|q` end to end on the toy task with a scripted policy."""

from __future__ import annotations

import json

import pytest
from reward_toy_task import ToyTask, uniform_generations

import qstar.cli.label as label_cli
from qstar.cli.main import main
from qstar.policy.mock import MockPolicy
from qstar.rewards.labels import read_labels
from qstar.tasks.registry import register_task


@pytest.fixture(autouse=True)
def toy(monkeypatch):
    register_task("toy-rewards", ToyTask, "toy task of the reward tests", replace=True)
    monkeypatch.setattr(label_cli, "load_policy", lambda spec: MockPolicy(generations=uniform_generations))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def label(capsys, out, *extra: str) -> tuple[int, str, str]:
    args = ["label", "--task", "toy-rewards", "--num-rollouts", "8", "--num-paths", "8", "--out", str(out)]
    args += ["--rollout-mode", "generate"]  # the scripted policy writes every continuation once
    return run(capsys, *args, "--quiet", *extra)


def test_label_writes_mc_labels_and_resumes_after_an_interruption(capsys, tmp_path):
    out = tmp_path / "labels.jsonl"
    code, stdout, _ = label(capsys, out, "--limit", "2", "--trees-out", str(tmp_path / "trees.jsonl"))
    assert code == 0 and "16 labelled paths from 2 problems" in stdout
    code, _, _ = label(capsys, out, "--limit", "3", "--trees-out", str(tmp_path / "trees.jsonl"))
    assert code == 0
    report = read_labels(out)
    assert report.errors == []
    assert [(r.meta["index"], r.meta["path"]) for r in report.records] == [
        (i, j) for i in range(3) for j in range(8)
    ]
    winner = next(r for r in report.records if r.meta["index"] == 0 and r.completions == ("*3", "*3", "+1"))
    assert winner.values == (0.25, 0.5, 1.0) and winner.meta["num_rollouts"] == 8
    trees = [json.loads(x) for x in (tmp_path / "trees.jsonl").read_text().splitlines()]
    assert [t["index"] for t in trees] == [0, 1, 2]


def test_label_refuses_to_mix_settings_in_one_file(capsys, tmp_path):
    out = tmp_path / "labels.jsonl"
    assert label(capsys, out, "--limit", "1")[0] == 0
    code, _, err = label(capsys, out, "--limit", "1", "--method", "outcome")
    assert code == 2 and "other settings" in err
    assert label(capsys, out, "--limit", "1", "--method", "outcome", "--restart")[0] == 0


def test_train_prm_and_q_from_labels_and_trees(capsys, tmp_path):
    labels, trees = tmp_path / "labels.jsonl", tmp_path / "trees.jsonl"
    assert label(capsys, labels, "--trees-out", str(trees))[0] == 0
    common = ["--init", "fresh", "--epochs", "2", "--val-frac", "0.4", "--quiet"]
    code, stdout, _ = run(
        capsys, "train", "prm", "--labels", str(labels), "--out", str(tmp_path / "prm"), *common
    )
    assert code == 0 and "saved PRM checkpoint" in stdout
    summary = json.loads((tmp_path / "prm" / "train_summary.json").read_text())
    assert len(summary["history"]) == 2 and "auc" in summary["history"][0]
    code, stdout, _ = run(
        capsys, "train", "q", "--target", "bellman", "--trees", str(trees), "--iterations", "2",
        "--out", str(tmp_path / "q"), *common,
    )  # fmt: skip
    assert code == 0 and "saved Q checkpoint" in stdout
    assert (tmp_path / "q" / "config.json").is_file()


def test_train_reports_every_bad_line_and_stops(capsys, tmp_path):
    labels = tmp_path / "labels.jsonl"
    assert label(capsys, labels, "--limit", "1")[0] == 0
    with open(labels, "a") as f:
        f.write('{"prompt": "x\\n"}\nnot json\n')
    args = [
        "train",
        "prm",
        "--labels",
        str(labels),
        "--out",
        str(tmp_path / "prm"),
        "--init",
        "fresh",
        "--quiet",
    ]
    code, _, err = run(capsys, *args, "--epochs", "1")
    assert code == 2
    assert (
        f"{labels}:9: missing field(s) completions, labels" in err and f"{labels}:10: not valid JSON" in err
    )
    assert "2 bad line(s)" in err
    code, _, err = run(capsys, *args, "--epochs", "1", "--skip-bad-lines", "--val-frac", "0")
    assert code == 0 and "training without 2 bad line(s)" in err
