"""`qstar plot`: learning curves of a run and the search ladder, from synthetic files."""

from __future__ import annotations

import json
import math
import sys

import pytest

from qstar.cli.main import main
from qstar.errors import ConfigError, MissingExtraError
from qstar.plots import group_panels, ladder_series, metric_series, plot_ladder, plot_run, read_metrics

pytest.importorskip("matplotlib", reason="plots need matplotlib (pip install 'qstar[track]')")

PNG = b"\x89PNG\r\n\x1a\n"
ROUNDS = [
    {"round": 0, "system1_val_acc": 0.07, "system2_val_acc": 0.30, "search_solve_rate": 0.4,
     "policy_loss": 1.9, "value_loss": 0.69, "tokens": 120000, "cpu_minutes": 4.5, "note": "start"},
    {"round": 1, "system1_val_acc": 0.09, "policy_loss": 1.5, "tokens": 250000, "cpu_minutes": 9.0},
    {"round": 2, "system1_val_acc": 0.12, "system2_val_acc": 0.41, "search_solve_rate": 0.5,
     "policy_loss": 1.2, "value_loss": 0.61, "tokens": 380000, "cpu_minutes": 13.5},
]  # fmt: skip


def write_run(tmp_path, rows=ROUNDS, tail=""):
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)
    return run


def test_a_half_written_last_line_is_skipped(tmp_path):
    run = write_run(tmp_path, tail='{"round": 3, "system1_')
    assert [r["round"] for r in read_metrics(run / "metrics.jsonl")] == [0, 1, 2]


def test_a_broken_line_before_the_end_is_an_error_naming_it(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"round": 0}\nnot json\n{"round": 2}\n')
    with pytest.raises(ConfigError, match=r"metrics.jsonl:2"):
        read_metrics(path)


def test_missing_keys_are_gaps_and_strings_are_not_series():
    x_name, xs, series = metric_series(ROUNDS)
    assert (x_name, xs) == ("round", [0.0, 1.0, 2.0])
    assert series["system1_val_acc"] == [0.07, 0.09, 0.12]
    assert math.isnan(series["system2_val_acc"][1]) and series["system2_val_acc"][2] == 0.41
    assert "note" not in series and "round" not in series


def test_nested_metrics_are_flattened_with_dots(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"round": 1, "eval": {"system1_acc": 0.2}}\n')
    assert read_metrics(path) == [{"round": 1, "eval.system1_acc": 0.2}]


def test_keys_are_grouped_into_accuracy_solve_rate_loss_and_cost_panels():
    keys = ["system1_val_acc", "system2_val_acc", "search_solve_rate", "policy_loss", "value_loss",
            "tokens", "cpu_minutes", "learning_rate"]  # fmt: skip
    assert group_panels(keys) == [
        ("held-out accuracy", "accuracy", ["system1_val_acc", "system2_val_acc"]),
        ("solve rate during search", "solve rate", ["search_solve_rate"]),
        ("losses", "loss", ["policy_loss", "value_loss"]),
        ("cost", "as logged", ["tokens", "cpu_minutes"]),
    ]
    assert group_panels(["policy_loss"]) == [("losses", "loss", ["policy_loss"])]


def test_plot_run_writes_a_png_into_the_run(tmp_path):
    run = write_run(tmp_path)
    out = plot_run(run)
    assert out == run / "plots" / "curves.png"
    assert out.read_bytes().startswith(PNG)


def test_a_run_with_nothing_plottable_is_an_error(tmp_path):
    run = write_run(tmp_path, rows=[{"round": 0, "note": "x"}])
    with pytest.raises(ConfigError, match="nothing to plot"):
        plot_run(run)


LADDER = {
    "tasks": {
        "game24": {
            "n": 100,
            "ladder": {
                "blind": {
                    "budgets": {"11": {"success": 0.12}, "50": {"success": 0.45}, "100": {"success": 0.67}}
                },
                "mcts": {"budgets": {"100": {"success": 0.7}, "11": {"success": 0.2}}},
            },
        },
        "countdown-6": {"searches": {"qstar": {"budgets": {"64": {"solve_rate": 0.5}, "all": 1.0}}}},
    },
    "goals": {"game24_best": {"gpt4_tot": 0.74}},
}


def test_ladder_series_reads_budgets_in_order_from_either_layout():
    assert ladder_series(LADDER) == {
        "game24": {"blind": [(11, 0.12), (50, 0.45), (100, 0.67)], "mcts": [(11, 0.2), (100, 0.7)]},
        "countdown-6": {"qstar": [(64, 0.5)]},
    }


def test_plot_ladder_writes_a_png_next_to_the_json(tmp_path):
    path = tmp_path / "search_ladder.json"
    path.write_text(json.dumps(LADDER))
    out = plot_ladder(path)
    assert out == tmp_path / "search_ladder.png" and out.read_bytes().startswith(PNG)


def test_cli_plot_prints_the_png_path(tmp_path, capsys):
    run = write_run(tmp_path)
    target = tmp_path / "out" / "c.png"
    assert main(["plot", str(run), "--out", str(target)]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    assert target.read_bytes().startswith(PNG)


def test_cli_plot_of_a_json_without_results_is_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "x.json"
    path.write_text('{"tasks": {}}')
    assert main(["plot", str(path)]) == 2
    assert "no search-ladder results" in capsys.readouterr().err


def test_without_matplotlib_the_error_names_the_extra(tmp_path, monkeypatch):
    run = write_run(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import now raises ImportError
    with pytest.raises(MissingExtraError, match=r"qstar\[track\]"):
        plot_run(run)
