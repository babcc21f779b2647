"""Smoke test of benchmarks/generalization.py on a tiny random checkpoint."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `benchmarks` is a top-level package of the repository
    sys.path.insert(0, str(ROOT))

from benchmarks import generalization  # noqa: E402


def test_every_split_is_measured_both_ways(tiny_checkpoint, tmp_path):
    out = tmp_path / "g.json"
    generalization.main(["--model", tiny_checkpoint, "--limit", "2", "--out", str(out)])
    got = json.loads(out.read_text())["results"][tiny_checkpoint]
    assert set(got) == {"train", "val", "test"}
    for row in got.values():
        assert set(row) == {"system1", "system1_legal", "system2_qstar_11"}
        assert all(0 <= v <= 100 for v in row.values())


def test_a_missing_checkpoint_is_one_error_before_any_measurement(tiny_checkpoint, tmp_path, capsys):
    missing = tmp_path / "round-0004"
    with pytest.raises(SystemExit) as exit_info:
        generalization.main(
            ["--model", tiny_checkpoint, "--model", str(missing), "--out", str(tmp_path / "g.json")]
        )
    assert exit_info.value.code == 2
    err = capsys.readouterr()
    assert f"--model {str(missing)!r}: no checkpoint there" in err.err and tiny_checkpoint not in err.out
    assert not (tmp_path / "g.json").exists()
