"""benchmarks/stream_anatomy.py: the dead-end calls of a hand-written trace, and a smoke run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `benchmarks` is a top-level package of the repository
    sys.path.insert(0, str(ROOT))

from benchmarks import stream_anatomy as anatomy  # noqa: E402
from qstar.tasks.registry import get_task  # noqa: E402

# 4 9 10 13: "10 * 9" leaves 4 13 90 (dead); "10 - 4" leaves 6 9 13 (alive, 6 * (13 - 9));
# from there "13 + 9" leaves 6 22 (dead) and "13 - 9" leaves 4 6 (alive).
TRACE = "\n".join(
    [
        "10 * 9 = 90 (left: 4 13 90)",
        "back to: start",
        "10 - 4 = 6 (left: 6 9 13)",
        "13 + 9 = 22 (left: 6 22)",
        "22 - 6 = 16 (left: 16)",  # a final state: not a call
        "back to: 13 + 9 = 22 (left: 6 22)",
        "back to: 10 - 4 = 6 (left: 6 9 13)",
        "13 - 9 = 5 (left: 5 6)",  # wrong arithmetic: illegal, skipped
        "13 - 9 = 4 (left: 4 6)",
        "back to: 10 - 4 = 6 (left: 6 9 13)",  # an alive state left at once
        "13 - 9 = 4 (left: 4 6)",
        "6 * 4 = 24 (left: 24)",
    ]
)


def test_judge_trace_counts_each_call_by_depth_and_the_illegal_lines():
    task = get_task("game24")
    calls, illegal = anatomy.judge_trace(task, task.parse_problem("4 9 10 13"), TRACE)
    assert illegal == 1
    assert dict(calls) == {
        "d1_back_dead": 1,
        "d1_enter_alive": 1,
        "d2_enter_dead": 1,
        "d2_back_alive": 1,
        "d2_enter_alive": 1,
    }


def test_summarise_splits_answered_into_right_and_wrong():
    rows = [
        {"solved": True, "end": "answered", "tokens": 10, "calls": {"d1_enter_alive": 1}, "illegal": 0},
        {"solved": False, "end": "answered", "tokens": 30, "calls": {"d1_enter_dead": 2}, "illegal": 1},
        {"solved": False, "end": "unfinished", "tokens": 50, "calls": {}, "illegal": 0},
    ]
    s = anatomy.summarise(rows)
    assert s["accuracy"] == 33.3 and s["tokens_per_puzzle"] == 30.0 and s["illegal_lines"] == 1
    assert s["ends"] == {"answered": 1, "unfinished": 1, "wrong": 1}
    assert s["calls"] == {"depth_1": {"enter_alive": 1, "back_dead": 0, "back_alive": 0, "enter_dead": 2}}


def test_smoke_on_a_tiny_model(tiny_checkpoint, tmp_path):
    out = tmp_path / "s.json"
    anatomy.main(
        ["--model", tiny_checkpoint, "--limit", "2", "--splits", "val", "--quiet", "--out", str(out)]
    )
    row = json.loads(out.read_text())["results"][tiny_checkpoint]["val"]
    assert set(row) == {"free", "legal", "legal_mass"}
    assert all(r["n"] == 2 and sum(r["ends"].values()) == 2 for r in row.values())
