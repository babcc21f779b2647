"""benchmarks/scripts/teacher_reach.py: the distillation's stream teacher measured on held-out splits."""

from __future__ import annotations

import json


def test_reach_runs_the_teacher_on_val_and_reports_each_run(tiny_checkpoint, tmp_path, load_script):
    out = tmp_path / "reach.json"
    argv = ["--model", tiny_checkpoint, "--splits", "val", "--limit", "2", "--runs", "2", "--json", str(out)]
    report = load_script("teacher_reach.py").main([*argv, "--value-threshold", "0", "--max-lines", "3"])
    r = report["results"][tiny_checkpoint]["val"]
    assert r["n"] == 2 and len(r["solved_per_run"]) == 2
    assert max(r["solved_per_run"]) <= r["solved_by_any_run"] <= sum(r["solved_per_run"])
    assert 0 < r["lines_per_run"] <= 6 and r["expansions_per_puzzle"] > 0
    assert json.loads(out.read_text())["results"][tiny_checkpoint]["val"] == r
