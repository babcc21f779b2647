"""benchmarks/scripts/teacher_retry_unsolved.py: retries only the puzzles no teacher run solved."""

from __future__ import annotations

from qstar.tasks.registry import get_task
from qstar.training.distill import TRACES_FILE, load_records, save_records


def test_retry_reruns_the_teacher_on_unsolved_train_puzzles_only(tiny_checkpoint, tmp_path, load_script):
    task = get_task("game24")
    solved, unsolved = task.problems("train")[:2]
    first = tmp_path / "first"
    records = [
        {"id": p.id, "text": p.text, "traces": [{"trace": "", "solved": ok, "lines": 28}]}
        for p, ok in ((solved, True), (unsolved, False))
    ]
    save_records(first / TRACES_FILE, records)
    out = tmp_path / "retry"
    argv = ["--traces", str(first), "--init", tiny_checkpoint, "--out", str(out)]
    summary = load_script("teacher_retry_unsolved.py").main(
        argv + ["--runs", "2", "--max-lines", "3", "--value-threshold", "0"]
    )
    retried = load_records(out, task)
    assert [r["id"] for r in retried] == [unsolved.id]
    assert len(retried[0]["traces"]) == 2 and all(t["lines"] <= 6 for t in retried[0]["traces"])
    assert summary["puzzles"] == 1 and summary["traces"] == 2
