"""Smoke test of benchmarks/engine_figure.py run on its own (several batch sizes, CPU)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `benchmarks` is a top-level package of the repository
    sys.path.insert(0, str(ROOT))

from benchmarks import engine_figure  # noqa: E402


def test_engine_figure_cli(tiny_checkpoint, tmp_path):
    out = tmp_path / "engine.json"
    args = ["--model", tiny_checkpoint, "--puzzles", "1", "--expansions", "3", "--batch", "4,1"]
    payload = engine_figure.main([*args, "--out", str(out)])
    data = json.loads(out.read_text())
    assert data["device"] == "cpu" and data["puzzles"] == 1
    assert [row["batch_size"] for row in data["batched"]] == [4, 1]
    # batch 1 is among the sizes asked: it is the shared-prefix batch-1 row, not measured twice
    assert data["batch1_prefix_shared"] == data["batched"][1]
    naive = data["batch1_one_call_per_candidate"]
    for row in [*data["batched"], naive]:
        assert row["expansions"] == 3 and row["expansions_per_s"] > 0
    # one call per candidate makes more model calls than the batched, prefix-shared search
    assert naive["model_calls"] > data["batched"][0]["model_calls"]
    assert data["speedup"] == data["batched"][0]["speedup"] > 0
    assert payload["speedup"] == data["speedup"]


def test_engine_figure_rejects_bad_sizes(tiny_checkpoint):
    with pytest.raises(SystemExit, match="must be positive"):
        engine_figure.main(["--model", tiny_checkpoint, "--batch", "0"])
