"""`qstar eval`, `qstar train sft`, `qstar tasks` and `qstar demo` end to end on tiny settings."""

from __future__ import annotations

import json
import subprocess
import sys

from qstar.cli.main import main
from qstar.policy.tinygpt.checkpoint import load_checkpoint


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_json_reports_accuracy_n_cost_and_results(capsys):
    code, out, _ = run(
        capsys,
        "eval",
        "--task",
        "game24",
        "--split",
        "test",
        "--limit",
        "3",
        "--search",
        "blind",
        "--budget",
        "20",
        "--json",
        "--quiet",
    )
    assert code == 0
    report = json.loads(out)
    assert report["n"] == 3 and len(report["results"]) == 3
    assert report["accuracy"] == sum(r["solved"] for r in report["results"]) / 3
    assert report["cost"]["expansions"] <= 60
    assert report["results"][0]["problem"] == "4 5 6 10"  # ToT rank 901


def test_eval_reads_a_problems_file_and_reports_bad_lines(capsys, tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"numbers": [1, 1, 4, 6]}\nnot json\n{"numbers": [1, 2]}\n\n{"numbers": [4, 9, 10, 13]}\n'
    )
    code, out, err = run(
        capsys, "eval", "--problems", str(path), "--search", "blind", "--budget", "500", "--json", "--quiet"
    )
    assert code == 0
    assert json.loads(out)["n"] == 2
    assert f"{path}:2:" in err and f"{path}:3:" in err


def test_eval_with_a_model_prints_a_summary(capsys, tiny_checkpoint):
    code, out, _ = run(
        capsys,
        "eval",
        "--split",
        "val",
        "--limit",
        "2",
        "--model",
        tiny_checkpoint,
        "--search",
        "qstar",
        "--budget",
        "4",
        "--quiet",
    )
    assert code == 0
    assert "accuracy" in out and "s/problem" in out


def test_eval_of_an_empty_problems_file_is_an_error(capsys, tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    code, _, err = run(capsys, "eval", "--problems", str(path), "--search", "blind")
    assert code == 2 and "no problems" in err


def test_train_sft_writes_a_loadable_checkpoint(capsys, tmp_path):
    out_dir = tmp_path / "ckpt"
    code, out, _ = run(
        capsys,
        "train",
        "sft",
        "--task",
        "game24",
        "--task",
        "arith",
        "--num-problems",
        "3",
        "--steps",
        "3",
        "--batch-size",
        "4",
        "--n-layer",
        "1",
        "--n-embd",
        "32",
        "--n-head",
        "2",
        "--out",
        str(out_dir),
        "--quiet",
    )
    assert code == 0, out
    ckpt = load_checkpoint(out_dir)
    assert ckpt.meta["trainer"] == "sft-oracle"
    assert ckpt.meta["data"]["tasks"]["game24"]["problems"] == 3
    code, out, _ = run(capsys, "solve", "4 9 10 13", "--model", str(out_dir), "--json")
    assert code == 0 and json.loads(out)["problem"] == "4 9 10 13"


def test_tasks_lists_every_builtin_task(capsys):
    code, out, _ = run(capsys, "tasks")
    assert code == 0
    for name in ("game24", "countdown-4", "countdown-6", "arith"):
        assert name in out


def test_demo_runs_on_a_given_model(capsys, tiny_checkpoint):
    code, out, _ = run(capsys, "demo", "-n", "1", "--budget", "3", "--model", tiny_checkpoint)
    assert code == 0
    assert "System 2" in out and "System 1" in out and "4 5 6 10" in out
    assert "writing its own search" not in out  # the random model was not distilled


def test_demo_stream_shows_the_search_the_model_writes(capsys, tiny_checkpoint):
    code, out, _ = run(capsys, "demo", "-n", "1", "--budget", "3", "--model", tiny_checkpoint, "--stream")
    assert code == 0
    assert "search written by the model:" in out and "System 1 writing its own search: " in out


def test_console_script_prints_no_traceback_on_bad_input():
    proc = subprocess.run(
        [sys.executable, "-m", "qstar.cli.main", "solve", "4 9 x 13"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == "qstar: error: puzzle '4 9 x 13': expected four integers 1-13, e.g. '4 9 10 13'"
    )
