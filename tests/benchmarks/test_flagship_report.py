"""benchmarks/flagship.py --report-only on the loop results saved in the repository."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `benchmarks` is a top-level package of the repository
    sys.path.insert(0, str(ROOT))

from benchmarks import flagship  # noqa: E402

SAVED = ROOT / "benchmarks" / "results" / "loop_rft_rules_vlookahead_r12"


def test_report_only_reads_a_saved_result_directory(tmp_path):
    out = tmp_path / "flagship.json"
    args = ["--report-only", "--runs-dir", str(tmp_path / "none"), "--saved", f"default={SAVED}"]
    flagship.main([*args, "--out", str(out)])
    data = json.loads(out.read_text())
    saved_test = json.loads((SAVED / "test_eval.json").read_text())
    summary = data["summary"]["default"]
    assert summary["rounds"] == 12 and summary["complete"] is True
    assert summary["system2_test_acc"] == saved_test["system2_test_acc"]
    assert out.with_suffix(".png").is_file()


def test_saved_needs_a_run_directory(tmp_path):
    with pytest.raises(SystemExit):
        flagship.main(["--report-only", "--saved", f"x={tmp_path}"])
