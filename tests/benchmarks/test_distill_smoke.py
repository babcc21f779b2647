"""benchmarks.distill on a tiny random model: trains, evaluates every checkpoint, writes JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `benchmarks` is a top-level package of the repository
    sys.path.insert(0, str(ROOT))

from benchmarks import distill as bench  # noqa: E402


def test_distill_benchmark_smoke(tiny_checkpoint, tmp_path):
    out, result = tmp_path / "student", tmp_path / "distill.json"
    argv = ["--init", tiny_checkpoint, "--out", str(out), "--num-problems", "3", "--limit", "1"]
    argv += ["--value-threshold", "0", "--explore", "0", "--max-lines", "16", "--teacher-temperature", "1"]
    argv += ["--traces-per-problem", "2", "--steps", "2", "--batch-size", "4", "--splits", "val"]
    argv += ["--compare", f"again={tiny_checkpoint}", "--json", str(result)]
    bench.main(argv)
    saved = json.loads(result.read_text())
    assert set(saved["results"]) == {"teacher", "student", "again"}
    assert set(saved["results"]["student"]["val"]) == {"stream", "stream_legal", "greedy", "qstar"}
    assert saved["results"]["again"]["val"]["qstar"]["n"] == 1
    assert saved["distill"]["data"]["problems"] == 3
    # --report-only re-evaluates the saved student without training it again
    bench.main(
        [
            "--init",
            tiny_checkpoint,
            "--out",
            str(out),
            "--report-only",
            "--limit",
            "1",
            "--splits",
            "val",
            "--json",
            str(result),
        ]
    )
    assert json.loads(result.read_text())["distill"]["trainer"] == "distill"


def test_sample_is_a_seeded_random_subset_and_excludes_limit():
    problems = list(range(50))
    pick = bench._parser().parse_args(["--sample", "5", "--sample-seed", "3"])
    first, again = bench._problems(problems, pick), bench._problems(problems, pick)
    assert first == again and len(set(first)) == 5 and first != problems[:5]
    other = bench._problems(problems, bench._parser().parse_args(["--sample", "5", "--sample-seed", "4"]))
    assert other != first
    assert bench._problems(problems, bench._parser().parse_args(["--limit", "2"])) == [0, 1]
    for bad in (["--sample", "5", "--limit", "2"], ["--sample", "0"], ["--sample", "51"]):
        with pytest.raises(SystemExit):
            bench._problems(problems, bench._parser().parse_args(bad))
