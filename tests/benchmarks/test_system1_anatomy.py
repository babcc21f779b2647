"""benchmarks/system1_anatomy.py: failure classification, root AUC, and a smoke run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `benchmarks` is a top-level package of the repository
    sys.path.insert(0, str(ROOT))

from benchmarks import system1_anatomy as anatomy  # noqa: E402
from qstar.tasks.registry import get_task  # noqa: E402

SOLUTION = ["10 - 4 = 6 (left: 6 9 13)", "13 - 9 = 4 (left: 4 6)", "6 * 4 = 24 (left: 24)"]


def _steps(task, problem, texts):
    state, steps = task.initial_state(problem), []
    for text in texts:
        step = task.parse_step(state, text)
        steps.append(step)
        state = task.apply(state, step)
    return steps


@pytest.mark.parametrize(
    ("texts", "verdict"),
    [
        (SOLUTION, "solved"),
        (["10 * 9 = 90 (left: 4 13 90)"], "dead_first_step"),
        (SOLUTION[:1] + ["9 + 6 = 15 (left: 13 15)"], "dead_later_step"),
        (SOLUTION[:2], "illegal_line"),  # alive, but the path stopped before 24
        ([], "illegal_line"),
    ],
)
def test_classify_names_the_first_thing_that_went_wrong(texts, verdict):
    task = get_task("game24")
    problem = task.parse_problem("4 9 10 13")
    assert anatomy.classify(task, problem, _steps(task, problem, texts)) == verdict


def test_root_auc_is_the_within_puzzle_auc():
    assert anatomy.auc([0.9, 0.1, 0.5], [True, False, False]) == 1.0
    assert anatomy.auc([0.2, 0.8], [True, False]) == 0.0
    assert anatomy.auc([0.5, 0.5], [True, False]) == 0.5
    assert anatomy.auc([0.3, 0.4], [True, True]) is None


def test_smoke_on_a_tiny_model(tiny_checkpoint, tmp_path):
    out = tmp_path / "a.json"
    anatomy.main(
        ["--model", tiny_checkpoint, "--limit", "2", "--splits", "val", "--quiet", "--out", str(out)]
    )
    row = json.loads(out.read_text())["results"][tiny_checkpoint]["val"]
    assert row["n"] == 2
    assert sum(row["failures"].values()) + round(row["system1"] * row["n"] / 100) == 2
    assert set(row["first_step_alive"]) == {"system1", "policy_legal", "value_head", "random"}
    assert all(0 <= v <= 100 for v in row["first_step_alive"].values())
