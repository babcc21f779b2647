"""Smoke test of benchmarks/search_ladder.py: the whole pipeline on a tiny random model."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `benchmarks` is a top-level package of the repository
    sys.path.insert(0, str(ROOT))

from benchmarks import search_ladder  # noqa: E402


def test_search_ladder_smoke(tiny_checkpoint, tmp_path):
    out = tmp_path / "ladder.json"
    start = time.perf_counter()
    payload = search_ladder.main(
        [
            "--model",
            tiny_checkpoint,
            "--tasks",
            "game24,countdown-6",
            "--searches",
            "blind,qstar",
            "--budgets",
            "3,6",
            "--limit",
            "2",
            "--verify",
            "2",
            "--engine-puzzles",
            "1",
            "--engine-expansions",
            "2",
            "--out",
            str(out),
        ]
    )
    assert time.perf_counter() - start < 15
    data = json.loads(out.read_text())
    assert data["budgets"] == [3, 6]
    assert data["searches"] == ["blind", "qstar"]
    assert data["anytime_searches"] == ["blind", "qstar"]
    assert set(data["tasks"]) == {"game24", "countdown-6"}
    for task in data["tasks"].values():
        assert task["n"] == 2
        assert set(task["ladder"]) == {"blind", "qstar"}
        for entry in task["ladder"].values():
            assert entry["method"] == "anytime"
            assert len(entry["first_solution_expansion"]) == 2
            ver = entry["verification"]
            assert ver["checks"] == ver["exact_matches"] > 0, ver["mismatches"]
            for b in ("3", "6"):
                row = entry["budgets"][b]
                assert row["n"] == 2 and 0.0 <= row["success"] <= 1.0
                assert set(row["mean_cost"]) >= {"model_calls", "tokens", "expansions"}
                assert row["mean_cost"]["expansions"] <= int(b)
                assert row["seconds_per_puzzle"] >= 0
        assert task["ladder"]["blind"]["budgets"]["6"]["mean_cost"]["model_calls"] == 0
    engine = data["engine"]
    for key in ("batched_prefix_shared", "batch1_one_call_per_candidate"):
        assert engine[key]["expansions"] > 0 and engine[key]["expansions_per_s"] > 0
    assert engine["speedup"] > 0
    assert payload["tasks"].keys() == data["tasks"].keys()
    md = out.with_suffix(".md").read_text()
    assert "| search | 3 | 6 |" in md and "qstar" in md
