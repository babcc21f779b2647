"""`qstar solve` end to end on tiny settings (in-process through qstar.cli.main.main)."""

from __future__ import annotations

import json

import pytest

from qstar.cli.main import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_solve_json_has_the_contract_fields(capsys, tiny_checkpoint):
    code, out, _ = run(capsys, "solve", "4 9 10 13", "--model", tiny_checkpoint, "--json")
    assert code == 0
    result = json.loads(out)
    for key in ("problem", "answer", "steps", "solved", "cost"):
        assert key in result
    for key in ("model_calls", "tokens", "expansions", "seconds"):
        assert key in result["cost"]
    assert result["problem"] == "4 9 10 13"


def test_blind_search_solves_an_easy_puzzle_and_saves_its_tree(capsys, tmp_path):
    tree_file = tmp_path / "tree.json"
    code, out, _ = run(
        capsys,
        "solve",
        "1 1 4 6",
        "--search",
        "blind",
        "--budget",
        "400",
        "--save-tree",
        str(tree_file),
        "--json",
    )
    assert code == 0
    result = json.loads(out)
    assert result["solved"] is True
    assert result["cost"]["expansions"] <= 400
    tree = json.loads(tree_file.read_text())
    assert tree["chosen"] and tree["nodes"][0]["parent"] is None


def test_human_output_prints_steps_and_verdict(capsys):
    code, out, _ = run(capsys, "solve", "1 1 4 6", "--search", "blind", "--budget", "400")
    assert code == 0
    assert "(left:" in out and "verifier: correct" in out and "expansions" in out


@pytest.mark.parametrize("search", ["greedy", "qstar", "mcts", "tot_bfs", "best_of_n"])
def test_every_search_runs_through_the_cli_within_budget(capsys, tiny_checkpoint, search):
    code, out, _ = run(
        capsys,
        "solve",
        "4 9 10 13",
        "--model",
        tiny_checkpoint,
        "--search",
        search,
        "--budget",
        "6",
        "--json",
    )
    assert code == 0
    assert json.loads(out)["cost"]["expansions"] <= 6


def test_countdown_target_can_be_given_by_flag(capsys):
    code, out, _ = run(
        capsys,
        "solve",
        "--task",
        "countdown-4",
        "3 5 7 11",
        "--target",
        "22",
        "--search",
        "blind",
        "--budget",
        "200",
        "--json",
    )
    assert code == 0
    result = json.loads(out)
    assert result["problem"] == "3 5 7 11 -> 22" and result["solved"] is True


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["solve", "4 9 x 13"], "expected four integers 1-13"),
        (["solve", "4 9 10"], "expected four integers 1-13"),
        (["solve", ""], "expected four integers 1-13"),
        (["solve", "4 9 10 99"], "expected four integers 1-13"),
        (["solve", "1 1 1 1", "--search", "blind"], "no solution exists"),
        (["solve", "4 9 10 13", "--budget", "0"], "--budget must be a positive"),
        (["solve", "4 9 10 13", "--budget", "-3"], "--budget must be a positive"),
        (["solve", "4 9 10 13", "--search", "nope"], "unknown search 'nope'; choose from"),
        (["solve", "4 9 10 13", "--model", "/does/not/exist"], "no such checkpoint directory"),
        (["solve", "4 9 10 13", "--task", "chess"], "unknown task 'chess'"),
        (["solve", "4 9 10 13", "--search", "blind", "--c-puct", "2"], "has no knob 'pb_c_init'"),
        (["solve", "--task", "countdown-6", "1 2 3 4 5 6"], "give a target"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, fragment):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert fragment in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err + out


def test_the_shipped_model_solves_the_last_tot_test_puzzle_with_qstar_at_tots_budget(capsys):
    code, out, _ = run(capsys, "solve", "4 9 10 13", "--search", "qstar", "--budget", "11", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["solved"] is True and result["cost"]["expansions"] <= 11


def test_system1_output_shows_the_rejected_line(capsys, tiny_checkpoint):
    code, out, _ = run(capsys, "solve", "4 9 10 13", "--model", tiny_checkpoint)
    assert code == 0
    assert "<- rejected:" in out  # a random model never writes a legal first step


def test_solve_with_stream_prints_the_search_the_model_wrote(capsys, tiny_checkpoint):
    code, out, _ = run(capsys, "solve", "4 9 10 13", "--model", tiny_checkpoint, "--search", "stream",
                       "--lines", "legal")  # fmt: skip
    assert code in (0, 1) and "search written by the model:" in out and "its answer path:" in out
    assert "back to:" in out or "= " in out
    code, out, _ = run(capsys, "solve", "4 9 10 13", "--model", tiny_checkpoint, "--search", "stream",
                       "--lines", "legal", "--back", "mass")  # fmt: skip
    assert code in (0, 1) and "search written by the model:" in out
