"""benchmarks/threshold_match.py: the matching quantile, and a smoke run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `benchmarks` is a top-level package of the repository
    sys.path.insert(0, str(ROOT))

from benchmarks import threshold_match  # noqa: E402


def test_matching_threshold_keeps_the_asked_share():
    values = [i / 100 for i in range(101)]
    threshold = threshold_match.matching_threshold(values, 0.25)
    assert threshold == pytest.approx(0.75)
    assert sum(v >= threshold for v in values) == 26  # 0.75 itself is kept
    assert threshold_match.matching_threshold(values, 1.0) == 0.0


@pytest.mark.parametrize("values, share", [([], 0.5), ([0.1, 0.2], 1.5)])
def test_matching_threshold_refuses_bad_input(values, share):
    with pytest.raises(ValueError):
        threshold_match.matching_threshold(values, share)


def test_smoke_on_a_tiny_model_matches_itself(tiny_checkpoint, tmp_path):
    out = tmp_path / "t.json"
    threshold_match.main(
        [
            "--reference",
            tiny_checkpoint,
            "--model",
            tiny_checkpoint,
            "--limit",
            "2",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    payload = json.loads(out.read_text())
    row = payload["results"][tiny_checkpoint]
    assert payload["states"] > 10 and 0 <= payload["reference_kept"] <= 1
    assert row["kept_at_0.5"] == payload["reference_kept"]  # the same head keeps the same share
