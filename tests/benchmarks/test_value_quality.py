"""benchmarks/value_quality.py: the per-level report, and a smoke run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `benchmarks` is a top-level package of the repository
    sys.path.insert(0, str(ROOT))

from benchmarks import value_quality  # noqa: E402


def test_level_report_counts_kept_alive_and_rejected_dead_states():
    report = value_quality.level_report([0.9, 0.4, 0.6, 0.1], [True, True, False, False], 0.5)
    assert report == {"n": 4, "alive": 50.0, "alive_kept": 50.0, "dead_rejected": 50.0, "auc": 0.75}
    assert value_quality.level_report([0.9], [True], 0.5)["dead_rejected"] is None


def test_smoke_on_a_tiny_model(tiny_checkpoint, tmp_path):
    out = tmp_path / "v.json"
    value_quality.main(
        ["--model", tiny_checkpoint, "--limit", "2", "--splits", "val", "--quiet", "--out", str(out)]
    )
    row = json.loads(out.read_text())["results"][tiny_checkpoint]["val"]
    first, second = row["first_step"], row["second_step"]
    assert first["n"] > 10 and 0 < first["alive"] < 100  # ToT puzzles have alive and dead first steps
    assert second["n"] > 0 and 0 <= second["auc"] <= 1
    assert 0 <= first["auc_within_puzzle"] <= 1
