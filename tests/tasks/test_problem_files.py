"""Specification of ``load_problems_jsonl``: one problem per JSON line; a bad line is reported with
its line number and reason and never stops the others from loading."""

from __future__ import annotations

import pytest

from qstar.errors import ProblemError
from qstar.tasks.base import ProblemLoadReport, load_problems_jsonl
from qstar.tasks.countdown import COUNTDOWN_4, CountdownTask
from qstar.tasks.game24 import Game24Task

G24 = Game24Task()
C4 = CountdownTask(COUNTDOWN_4)


def write(tmp_path, text: str, name: str = "problems.jsonl"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_good_lines_load_in_order_with_file_and_line_ids(tmp_path):
    path = write(tmp_path, '{"numbers": [13, 10, 9, 4]}\n{"numbers": [1, 5, 5, 5]}\n')
    report = load_problems_jsonl(G24, path)
    assert [p.text for p in report.problems] == ["4 9 10 13", "1 5 5 5"]
    assert [p.id for p in report.problems] == ["problems.jsonl:1", "problems.jsonl:2"]
    assert report.errors == []


def test_blank_lines_are_skipped_but_still_counted(tmp_path):
    path = write(tmp_path, '\n  \n{"numbers": [4, 9, 10, 13]}\n\n')
    report = load_problems_jsonl(G24, path)
    assert [p.id for p in report.problems] == ["problems.jsonl:3"]
    assert report.errors == []


def test_bad_lines_are_reported_with_line_number_and_reason_and_the_rest_still_load(tmp_path):
    path = write(
        tmp_path,
        "\n".join(
            [
                '{"numbers": [4, 9, 10, 13]}',
                "",
                '{"numbers": [4, 9, 10, 13]',
                "[4, 9, 10, 13]",
                '{"numbers": [4, 9, 10, 14]}',
                '{"numbers": [1, 1, 4, 6]}',
                "4 9 10 13",
            ]
        ),
    )
    report = load_problems_jsonl(G24, path)
    assert [(p.id, p.text) for p in report.problems] == [
        ("problems.jsonl:1", "4 9 10 13"),
        ("problems.jsonl:6", "1 1 4 6"),
    ]
    assert [lineno for lineno, _ in report.errors] == [3, 4, 5, 7]
    reasons = dict(report.errors)
    assert reasons[3].startswith("not valid JSON")
    assert reasons[4] == "expected a JSON object"
    assert "four integers 1-13" in reasons[5]
    assert reasons[7].startswith("not valid JSON")


def test_windows_line_endings_are_read(tmp_path):
    path = tmp_path / "crlf.jsonl"
    path.write_bytes(b'{"numbers": [4, 9, 10, 13]}\r\n{"numbers": [1, 5, 5, 5]}\r\n')
    assert [p.text for p in load_problems_jsonl(G24, path)] == ["4 9 10 13", "1 5 5 5"]


def test_countdown_problems_load_with_their_target(tmp_path):
    path = write(tmp_path, '{"numbers": [98, 61, 85, 75], "target": 99}\n{"numbers": [1, 2, 3, 4]}\n')
    report = C4.load_problems(path)
    assert [p.text for p in report] == ["61 75 85 98 -> 99"]
    assert [lineno for lineno, _ in report.errors] == [2]
    assert "target" in report.errors[0][1]


def test_the_report_iterates_and_counts_its_problems(tmp_path):
    path = write(tmp_path, '{"numbers": [4, 9, 10, 13]}\nnot json\n{"numbers": [1, 5, 5, 5]}\n')
    report = G24.load_problems(path)
    assert isinstance(report, ProblemLoadReport)
    assert len(report) == 2
    assert [p.text for p in report] == ["4 9 10 13", "1 5 5 5"]
    assert len(report.errors) == 1


def test_an_empty_file_loads_nothing_without_errors(tmp_path):
    report = load_problems_jsonl(G24, write(tmp_path, ""))
    assert report.problems == [] and report.errors == []


def test_a_missing_file_is_a_problem_error_naming_it(tmp_path):
    with pytest.raises(ProblemError, match="nope.jsonl"):
        load_problems_jsonl(G24, tmp_path / "nope.jsonl")


def test_a_directory_is_a_problem_error(tmp_path):
    with pytest.raises(ProblemError, match="cannot read problems file"):
        load_problems_jsonl(G24, tmp_path)


def test_a_file_that_is_not_utf8_is_a_problem_error(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"numbers": [4, 9, 10, 13]}\n{"note": "caf\xe9"}\n')
    with pytest.raises(ProblemError, match="latin1.jsonl"):
        load_problems_jsonl(G24, path)


def test_a_line_with_an_absurdly_long_integer_is_reported_and_the_rest_still_load(tmp_path):
    path = write(tmp_path, '{"numbers": [4, 9, 10, 13]}\n{"numbers": [' + "1" * 5000 + ", 1, 1, 1]}\n")
    report = load_problems_jsonl(G24, path)
    assert [p.text for p in report.problems] == ["4 9 10 13"]
    assert [lineno for lineno, _ in report.errors] == [2]
