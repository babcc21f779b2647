"""Step-label files: TRL stepwise-supervision JSONL, round trip, resume, per-line errors."""

from __future__ import annotations

import json

import pytest
from reward_toy_task import ToyTask, uniform_generations

from qstar.errors import ConfigError
from qstar.policy.mock import MockPolicy
from qstar.rewards.labels import (
    LabelRecord,
    LabelWriter,
    label_tree,
    parse_label_line,
    paths_tree,
    read_labels,
    step_prompts,
    tree_paths,
)
from qstar.rewards.rollout import RolloutScorer, complete

SETTINGS = {"task": "toy", "method": "mc", "num_rollouts": 4}


def record(problem: int, n_steps: int = 2) -> LabelRecord:
    steps = tuple(f"+{i}" for i in range(1, n_steps + 1))
    values = tuple(round(0.25 * (i % 5), 2) for i in range(n_steps))
    labels = tuple(v > 0 for v in values)
    meta = {"task": "toy", "problem": str(problem), "problem_id": f"train/{problem}", "method": "mc"}
    return LabelRecord(f"toy: {problem}\n", steps, labels, values, values, meta)


def test_a_line_is_trl_stepwise_supervision_plus_our_columns(tmp_path):
    out = tmp_path / "labels.jsonl"
    with LabelWriter(out, SETTINGS) as w:
        w.write_problem(0, [record(0, 3)])
    obj = json.loads(out.read_text().splitlines()[0])
    assert isinstance(obj["prompt"], str)
    assert obj["completions"] == ["+1", "+2", "+3"]
    assert obj["labels"] == [False, True, True] and all(isinstance(b, bool) for b in obj["labels"])
    assert obj["values"] == [0.0, 0.25, 0.5]
    assert (obj["index"], obj["path"], obj["num_paths"]) == (0, 0, 1)


def test_records_round_trip(tmp_path):
    out = tmp_path / "labels.jsonl"
    written = [[record(0), record(0, 3)], [record(1, 1)]]
    with LabelWriter(out, SETTINGS) as w:
        for i, recs in enumerate(written):
            w.write_problem(i, recs)
    report = read_labels(out)
    assert report.errors == []
    flat = [r for recs in written for r in recs]
    assert report.records == flat  # meta is not compared ...
    assert [r.meta["problem_id"] for r in report.records] == [r.meta["problem_id"] for r in flat]
    assert report.num_steps == 6


def test_resume_cuts_a_torn_tail_and_continues_without_duplicates_or_losses(tmp_path):
    out = tmp_path / "labels.jsonl"
    with LabelWriter(out, SETTINGS) as w:
        for i in range(3):
            w.write_problem(i, [record(i), record(i, 3)])
    # A crash while writing problem 3: one of its two lines, then half a line.
    good = out.read_text()
    line = json.dumps({**record(3).to_json(), "index": 3, "path": 0, "num_paths": 2})
    out.write_text(good + line + "\n" + line[:25])
    with LabelWriter(out, SETTINGS) as w:
        assert w.next_index == 3
        assert out.read_text() == good
        for i in range(w.next_index, 5):
            w.write_problem(i, [record(i), record(i, 3)])
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(x["index"], x["path"]) for x in lines] == [(i, j) for i in range(5) for j in range(2)]


def test_resume_with_other_settings_is_an_error(tmp_path):
    out = tmp_path / "labels.jsonl"
    with LabelWriter(out, SETTINGS) as w:
        w.write_problem(0, [record(0)])
    with pytest.raises(ConfigError, match="num_rollouts"):
        LabelWriter(out, {**SETTINGS, "num_rollouts": 16})
    with LabelWriter(out, {**SETTINGS, "num_rollouts": 16}, resume=False) as w:  # --restart
        assert w.next_index == 0
    assert out.read_text() == ""


def test_bad_lines_are_reported_with_their_numbers(tmp_path):
    good = json.dumps(record(0).to_json())
    bad = [
        "not json",
        "[1, 2]",
        json.dumps({"prompt": "p\n", "completions": ["a"]}),
        json.dumps({"prompt": "p\n", "completions": ["a", "b"], "labels": [True]}),
        json.dumps({"prompt": "p\n", "completions": ["a"], "labels": [1]}),
        json.dumps({"prompt": "p\n", "completions": ["a"], "labels": [True], "values": [1.5]}),
        json.dumps(
            {"prompt": "p\n", "completions": ["a"], "labels": [True], "values": [0.0], "method": "mc"}
        ),
        json.dumps({"prompt": "p\n", "completions": [], "labels": []}),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([good, *bad, "", good]) + "\n")
    report = read_labels(path)
    assert len(report.records) == 2
    assert [n for n, _ in report.errors] == list(range(2, 10))
    reasons = [r for _, r in report.errors]
    assert "not valid JSON" in reasons[0]
    assert "missing field(s) labels" in reasons[2]
    assert "list of 2 booleans" in reasons[3]
    assert "true/false" in reasons[4]
    assert "[0, 1]" in reasons[5]
    assert "contradicts MC value 0" in reasons[6]
    with pytest.raises(ValueError, match="non-empty"):
        parse_label_line(bad[-1])


def test_label_tree_labels_every_step_of_sampled_paths_by_rollouts():
    task = ToyTask()
    policy = MockPolicy(generations=uniform_generations)
    problem = task.problem(10)
    (paths,) = complete(task, policy, [task.initial_state(problem)], num_samples=8, mode="generate")
    tree = paths_tree(task, problem, paths)
    ends = tree_paths(tree)
    assert len(ends) == 8 and tree.visits[0] == 8  # the uniform script lists all 8 paths
    rollout = RolloutScorer(task, policy, num_rollouts=8, mode="generate")
    records = label_tree(task, tree, ends, method="mc", rollout=rollout)
    winner = next(r for r in records if r.completions == ("*3", "*3", "+1"))
    assert winner.values == (1 / 4, 1 / 2, 1.0) and winner.labels == (True, True, True)
    assert winner.meta["outcome"] == 1.0
    loser = next(r for r in records if r.completions == ("+1", "+1", "+1"))
    assert loser.values == (0.0, 0.0, 0.0) and loser.labels == (False, False, False)
    assert step_prompts(winner)[-1] == task.render(task.replay(problem, ["*3", "*3", "+1"]))
    outcome = label_tree(task, tree, ends, method="outcome")
    assert next(r for r in outcome if r.completions == ("*3", "*3", "*3")).labels == (False,) * 3
    assert next(r for r in outcome if r.completions == ("*3", "*3", "+1")).values == (1.0,) * 3
