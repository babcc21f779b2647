"""Smoke test of benchmarks/system1_ceiling.py: complete oracle targets and a tiny run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `benchmarks` is a top-level package of the repository
    sys.path.insert(0, str(ROOT))

from benchmarks import system1_ceiling  # noqa: E402
from qstar.tasks.numbers_oracle import solvable_from  # noqa: E402
from qstar.tasks.registry import get_task  # noqa: E402


def test_complete_targets_hold_every_right_step_and_only_those():
    task = get_task("game24")
    replay = system1_ceiling.complete_targets(task, limit=2)
    roots = [task.render(task.initial_state(p)) for p in task.problems("train")[:2]]
    assert set(roots) <= set(replay.policy)
    for root, problem in zip(roots, task.problems("train")[:2], strict=True):
        state = task.initial_state(problem)
        right = {s.text for s in task.legal_steps(state) if solvable_from(task, task.apply(state, s))}
        assert set(replay.policy[root]) == right
        assert abs(sum(replay.policy[root].values()) - 1) < 1e-9
    assert set(replay.values.values()) == {0.0, 1.0}


def test_main_writes_the_three_splits(tiny_checkpoint, tmp_path):
    out = tmp_path / "c.json"
    args = ["--init", tiny_checkpoint, "--steps", "2", "--limit", "2", "--train-limit", "1"]
    system1_ceiling.main([*args, "--save", str(tmp_path / "m"), "--out", str(out)])
    got = json.loads(out.read_text())
    assert set(got["results"]) == {"train", "val", "test"} and got["policy_states"] > 0


def test_main_from_scratch_trains_a_fresh_model_of_the_asked_shape(tmp_path):
    out = tmp_path / "c.json"
    args = ["--init", "scratch", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--batch-size", "4"]
    args += ["--steps", "2", "--limit", "1", "--train-limit", "1"]
    system1_ceiling.main([*args, "--save", str(tmp_path / "m"), "--out", str(out)])
    got = json.loads(out.read_text())
    assert got["settings"]["init"] == "scratch" and got["parameters"] > 0
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert (saved["model"]["n_layer"], saved["model"]["n_embd"]) == (1, 16)
