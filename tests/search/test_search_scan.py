"""Written lookahead (scan): the teacher's golden traces, reading a scan back, the student."""

from __future__ import annotations

import pytest
from toy_search_task import TOY_VALUES, ToyTask

from qstar.errors import ConfigError
from qstar.policy.mock import MockPolicy, MockScorer
from qstar.search.registry import run_search
from qstar.search.scan import (
    ScanConfig,
    ScanTeacherConfig,
    brief,
    parse_scan,
    scan,
    scan_prompt,
    scan_teacher,
)
from qstar.tasks.registry import get_task
from qstar.types import Budget

TASK = ToyTask()  # +1 / *3 from 1, target 10 = *3 *3 +1
# The scorer likes "+1" (0.9, verdict 9) over "*3" (0.6, verdict 6); no solution under "+1".
GOLDEN = "+1 ~9\n*3 ~6\npick: +1\n+1\n+1\npick: *3\n*3\n+1"


def teach(budget=50, **knobs):
    config = ScanTeacherConfig(**knobs)
    return scan_teacher(
        TASK.problem(10), TASK, None, MockScorer(TOY_VALUES), Budget(max_expansions=budget), config
    )


def test_teacher_lists_every_first_step_with_a_verdict_then_picks_by_verdict():
    result = teach()
    assert result.info["trace"] == GOLDEN
    assert result.solved is True and [s.text for s in result.steps] == ["*3", "*3", "+1"]
    assert result.info["end"] == "solved" and result.info["picks"] == 2
    # The root; "+1" and both of its children; "*3", ("*3", "+1") and ("*3", "*3"). The scorer
    # is asked for the non-terminal children only (the verifier checks the terminal ones).
    assert result.cost.expansions == 7 and result.cost.model_calls == 3


def test_a_pick_it_cannot_finish_gets_the_path_its_search_tried_first():
    # One expansion below each pick: the path stops at the best-valued child of the pick.
    result = teach(finish_budget=1)
    assert result.info["trace"] == "+1 ~9\n*3 ~6\npick: +1\n+1\npick: *3\n+1"
    assert result.info["end"] == "exhausted" and result.solved is False
    assert teach(max_picks=1).info["trace"] == "+1 ~9\n*3 ~6\npick: +1\n+1\n+1"


def test_teacher_stops_at_its_budget_and_verdict_levels_are_configurable():
    result = teach(budget=2)
    assert result.info["end"] == "budget" and result.info["picks"] == 1 and not result.solved
    assert teach(levels=2).info["trace"].startswith("+1 ~1\n*3 ~1\npick: +1\n")


def test_teacher_config_is_validated_and_needs_enumerable_steps():
    with pytest.raises(ConfigError, match="levels"):
        ScanTeacherConfig(levels=11)
    with pytest.raises(ConfigError, match="finish_budget"):
        ScanTeacherConfig(finish_budget=0)
    with pytest.raises(ConfigError, match="enumerates"):
        scan_teacher(ToyTask(enumerable=False).problem(10), ToyTask(enumerable=False), None, MockScorer())


def test_parse_scan_reads_the_teachers_trace_back():
    tree, report = parse_scan(TASK, TASK.problem(10), GOLDEN)
    assert report["listed"] == 2 and report["bad_list"] == 0 and report["picks"] == 2
    assert report["bad_lines"] == 0 and report["pick_is_best"] is True
    node = report["answer_node"]
    assert [s.text for s in tree.path_to(node)] == ["*3", "*3", "+1"] and tree.outcome[node] == 1.0
    assert sorted(tree.extra[c]["verdict"] for c in tree.children[0]) == [6, 9]


def test_parse_scan_counts_bad_lines_and_a_bad_path_has_no_answer():
    text = "+1 ~9\n+1 ~3\n*5 ~2\n*3 ~x\npick: *3\n*3\n+1"
    tree, report = parse_scan(TASK, TASK.problem(10), text)
    assert report["listed"] == 4 and report["bad_list"] == 3  # a repeat, an illegal step, no digit
    assert report["pick_is_best"] is False and report["answer_node"] is not None
    _, report = parse_scan(TASK, TASK.problem(10), "+1 ~9\npick: *3\n*4\n+1")
    assert report["bad_lines"] == 2 and report["answer_node"] is None


def student(text, max_new_tokens=100):
    policy = MockPolicy(generations={scan_prompt(TASK, TASK.problem(10)): [text]})
    return scan(TASK.problem(10), TASK, policy, None, None, ScanConfig(max_new_tokens=max_new_tokens), 0)


def test_student_answers_with_its_last_pick_in_one_model_call():
    result = student(GOLDEN)
    assert result.solved is True and [s.text for s in result.steps] == ["*3", "*3", "+1"]
    assert result.cost.model_calls == 1 and result.info["end"] == "answered"
    assert result.cost.expansions == 5  # the root, "+1", ("+1", "+1") and "*3", ("*3", "*3")
    wrong = student("+1 ~9\n*3 ~6\npick: *3\n*3\n+1\npick: +1\n+1\n+1")
    assert wrong.solved is False and wrong.info["end"] == "answered"
    assert student("+1 ~9\n*3 ~6").info["end"] == "no_answer"


def test_student_out_of_tokens_is_unsolved():
    result = student(GOLDEN.replace("\n", " "), max_new_tokens=3)
    assert result.info["end"] == "unfinished" and result.solved is False


def test_scan_searches_are_registered_and_read_game24_scans():
    task = get_task("game24")
    problem = task.parse_problem("2 4 4 13")
    assert brief("4 / 4 = 1 (left: 1 2 13)") == "4/4=1: 1 2 13" and brief("+1") == "+1"
    text = "4+2=6: 4 6 13 ~0\n4/4=1: 1 2 13 ~7\npick: 4 / 4 = 1 (left: 1 2 13)\n13 - 1 = 12 (left: 2 12)\n12 * 2 = 24 (left: 24)"
    policy = MockPolicy(generations={scan_prompt(task, problem): [text]})
    result = run_search("scan", problem, task, policy, None, Budget(), 0, max_new_tokens=400)
    assert result.solved is True and result.method == "scan" and result.info["pick_is_best"] is True
    assert scan_prompt(task, problem) == "game24: 2 4 4 13\nscan:\n"
    taught = run_search(
        "scan_teacher", problem, task, None, MockScorer(default=0.3), Budget(max_expansions=64), 0
    )
    steps = task.legal_steps(task.initial_state(problem))
    lines = taught.info["trace"].split("\n")
    assert lines[: len(steps)] == [brief(s.text) + " ~3" for s in steps]  # all level: listing order
    assert lines[len(steps)] == "pick: " + steps[0].text
