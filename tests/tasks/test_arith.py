"""Specification of the ``arith`` task: one integer operation per step, checked exactly.

The independent value oracle is Python's own evaluator on canonical text (digits, ``+ - *`` and
parentheses only, which Python reads with the same values); the library itself never uses it.
"""

from __future__ import annotations

import contextlib
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qstar.errors import ConfigError, IllegalStepError, ParseError, ProblemError
from qstar.tasks.arith import (
    MAX_OPERATIONS,
    SPLIT_SIZES,
    ArithTask,
    BinOp,
    format_expression,
    parse_expression,
    solution_steps,
    value_of,
)
from qstar.tasks.base import load_problems_jsonl
from qstar.types import State, Step

TASK = ArithTask()
SAFE = re.compile(r"[0-9+\-*()]+")


def python_value(text: str) -> int:
    assert SAFE.fullmatch(text), text
    return eval(text)  # the independent oracle, on text checked to be plain arithmetic


def state_of(expression: str) -> State:
    return TASK.initial_state(TASK.parse_problem(expression))


def step_texts(state: State) -> list[str]:
    steps = TASK.legal_steps(state)
    assert steps is not None
    return [s.text for s in steps]


def trees(min_value: int = 0, max_value: int = 999, max_leaves: int = MAX_OPERATIONS + 1):
    return st.recursive(
        st.integers(min_value, max_value),
        lambda sub: st.builds(BinOp, st.sampled_from("+-*"), sub, sub),
        max_leaves=max_leaves,
    )


problem_trees = trees().filter(lambda t: isinstance(t, BinOp))


# -- the worked example and precedence -------------------------------------------------------
def test_example_chain_replays_to_52():
    problem = TASK.parse_problem("(12+7)*3-5")
    state = TASK.replay(problem, ["19*3-5", "57-5", "52"])
    assert TASK.is_terminal(state)
    assert TASK.answer(state) == "52"
    assert TASK.outcome(state) == 1.0


def test_example_first_step_is_the_only_legal_one():
    assert step_texts(state_of("(12+7)*3-5")) == ["19*3-5"]


def test_multiplication_goes_before_addition():
    assert step_texts(state_of("2+3*4")) == ["2+12"]


def test_subtraction_is_left_associative():
    assert step_texts(state_of("10-4-3")) == ["6-3"]
    assert step_texts(state_of("10-(4-3)")) == ["10-1"]


def test_independent_groups_may_go_in_either_order():
    assert step_texts(state_of("(1+2)*(3+4)")) == ["3*(3+4)", "(1+2)*7"]
    assert step_texts(state_of("1*2+3*4")) == ["2+3*4", "1*2+12"]


def test_negative_result_opening_the_expression_is_bare():
    state = TASK.replay(TASK.parse_problem("5-17+3"), ["-12+3"])
    assert state.content == "-12+3"
    assert step_texts(state) == ["-9"]


def test_negative_result_after_an_operator_is_parenthesised():
    state = TASK.replay(TASK.parse_problem("20-(2-5)"), ["20-(-3)"])
    assert step_texts(state) == ["23"]


def test_render_is_header_then_one_line_per_step():
    state = TASK.replay(TASK.parse_problem("(12+7)*3-5"), ["19*3-5"])
    assert TASK.render(state) == "arith: (12+7)*3-5\n19*3-5\n"


# -- steps ---------------------------------------------------------------------------------
def test_wrong_value_is_rejected_with_the_reason():
    with pytest.raises(
        IllegalStepError, match=r"`19\*3-4` is not one correct simplification of `\(12\+7\)\*3-5`"
    ):
        TASK.replay(TASK.parse_problem("(12+7)*3-5"), ["19*3-4"])


def test_two_operations_at_once_are_rejected():
    assert not TASK.legal(state_of("(12+7)*3-5"), Step("57-5"))


def test_operation_out_of_precedence_order_is_rejected():
    assert not TASK.legal(state_of("2+3*4"), Step("5*4"))


def test_spaces_and_redundant_parentheses_in_a_step_are_accepted():
    state = state_of("(12+7)*3-5")
    step = TASK.parse_step(state, "  (19) * 3 - 5 \n")
    assert step.text == "(19) * 3 - 5"
    assert TASK.apply(state, step).content == "19*3-5"


def test_garbage_step_is_a_parse_error():
    with pytest.raises(ParseError, match="unexpected character 'x'"):
        TASK.parse_step(state_of("1+2"), "x = 3")


def test_multi_line_step_is_a_parse_error():
    with pytest.raises(ParseError, match="one line"):
        TASK.parse_step(state_of("1+2*3"), "1+6\n7")


def test_no_step_after_the_answer():
    state = TASK.replay(TASK.parse_problem("1+2"), ["3"])
    assert TASK.legal_steps(state) == []
    with pytest.raises(IllegalStepError, match="already a single number"):
        TASK.apply(state, Step("3"))


def test_outcome_is_none_before_the_end():
    assert TASK.outcome(state_of("1+2")) is None
    assert TASK.answer(state_of("1+2")) is None


def test_task_declares_no_test_time_verifier():
    assert TASK.name == "arith"
    assert TASK.has_test_time_verifier is False
    assert TASK.max_steps >= MAX_OPERATIONS


def test_lenient_mode_accepts_a_slip_and_outcome_catches_it():
    task = ArithTask(strict=False)
    problem = task.parse_problem("(12+7)*3-5")
    assert task.legal_steps(task.initial_state(problem)) is None
    state = task.replay(problem, ["18*3-5", "54-5", "49"])
    assert task.answer(state) == "49"
    assert task.outcome(state) == 0.0


def test_lenient_mode_still_requires_exactly_one_operation():
    task = ArithTask(strict=False)
    state = task.initial_state(task.parse_problem("(12+7)*3-5"))
    assert not task.legal(state, Step("57-5"))
    assert not task.legal(state, Step("19*3-4"))


def test_lenient_slip_can_still_end_right_so_outcome_differs_from_process():
    task = ArithTask(strict=False)
    state = task.replay(task.parse_problem("(1+2)*0"), ["4*0", "0"])
    assert task.outcome(state) == 1.0


# -- problems ------------------------------------------------------------------------------
def test_problem_text_is_canonical():
    problem = TASK.parse_problem(" ((1 + 2)) + 3 ")
    assert problem.text == "1+2+3"
    assert problem.data == {"expression": "1+2+3"}
    assert problem.task == "arith"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("(1+", "expression '(1+': unbalanced parenthesis"),
        ("1+2)", "unbalanced parenthesis"),
        ("", "empty"),
        ("   ", "empty"),
        ("1+a", "unexpected character 'a'"),
        ("1/2", "division is not supported"),
        ("1000+1", "operand 1000 has more than 3 digits"),
        ("-5+3", "negative numbers are not allowed"),
        ("42", "nothing to evaluate"),
        ("+".join(["1"] * 10), "has 9 operations, at most 8"),
        ("1++2", "expected a number"),
        ("1 2", "expected an operator"),
    ],
)
def test_bad_problem_text_is_a_one_line_problem_error(text, reason):
    with pytest.raises(ProblemError, match=re.escape(reason)) as info:
        TASK.parse_problem(text)
    assert "\n" not in str(info.value)


def test_deep_nesting_and_huge_numbers_are_errors_not_crashes():
    with pytest.raises(ParseError):
        parse_expression("(" * 5000 + "1" + ")" * 5000)
    with pytest.raises(ParseError):
        parse_expression("9" * 5000)
    with pytest.raises(ParseError):
        parse_expression("+".join(["1"] * 5000))


def test_problem_from_json_reads_expression():
    problem = TASK.problem_from_json({"expression": "2*(3+4)"}, id="file:1")
    assert (problem.text, problem.id) == ("2*(3+4)", "file:1")


def test_problem_from_json_round_trips_problem_to_json():
    problem = TASK.parse_problem("2*(3+4)")
    assert TASK.problem_from_json(problem.to_json()) == problem


def test_problem_from_json_without_expression_is_a_problem_error():
    with pytest.raises(ProblemError, match="expression"):
        TASK.problem_from_json({"numbers": [1, 2]})


def test_jsonl_loading_reports_bad_lines_and_keeps_the_rest(tmp_path):
    path = tmp_path / "problems.jsonl"
    lines = [json.dumps({"expression": "1+2"}), "", json.dumps({"expression": "(1+"}), "not json"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = load_problems_jsonl(TASK, path)
    assert [p.text for p in report] == ["1+2"]
    assert report.problems[0].id == "problems.jsonl:1"
    assert [lineno for lineno, _ in report.errors] == [3, 4]
    assert "unbalanced parenthesis" in report.errors[0][1]


def test_verify_compares_the_integer_answer():
    problem = TASK.parse_problem("(12+7)*3-5")
    assert TASK.verify(problem, " 52 ")
    assert not TASK.verify(problem, "51")
    assert "not an integer" in TASK.verify(problem, "fifty-two").reason
    assert TASK.verify(TASK.parse_problem("2-14"), "-12")


# -- splits ----------------------------------------------------------------------------------
def test_splits_have_their_sizes_and_are_disjoint():
    texts = {split: [p.text for p in TASK.problems(split)] for split in ("train", "val", "test")}
    for split, split_texts in texts.items():
        assert len(split_texts) == SPLIT_SIZES[split]
        assert len(set(split_texts)) == len(split_texts)
    assert not set(texts["train"]) & set(texts["val"])
    assert not set(texts["train"]) & set(texts["test"])
    assert not set(texts["val"]) & set(texts["test"])


def test_splits_are_reproducible_across_instances():
    assert ArithTask().problems("test") == ArithTask(strict=False).problems("test")
    assert [p.id for p in TASK.problems("val")[:2]] == ["val/0", "val/1"]


def test_generated_problems_follow_the_documented_distribution():
    for problem in TASK.problems("test"):
        assert TASK.parse_problem(problem.text) == problem
        assert 4 <= len(solution_steps(problem)) <= MAX_OPERATIONS
        numbers = [int(n) for n in re.findall(r"[0-9]+", problem.text)]
        assert all(0 <= n <= 999 for n in numbers)
    small = [n for p in TASK.problems("test") for n in map(int, re.findall(r"[0-9]+", p.text))]
    assert sum(1 <= n <= 99 for n in small) / len(small) > 0.7


def test_unknown_split_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown split 'dev'"):
        TASK.problems("dev")


# -- properties ----------------------------------------------------------------------------
@given(st.text(max_size=40) | st.text(alphabet="0123456789+-*() /x\n", max_size=40))
def test_parser_never_crashes_on_arbitrary_text(text):
    with contextlib.suppress(ProblemError):
        TASK.parse_problem(text)
    with contextlib.suppress(ParseError):
        TASK.parse_step(state_of("1+2"), text)


@given(trees(min_value=-999, max_leaves=12))
def test_canonical_text_parses_back_to_the_same_tree(tree):
    text = format_expression(tree)
    assert parse_expression(text) == tree
    assert value_of(text) == python_value(text)


@settings(suppress_health_check=[HealthCheck.filter_too_much])
@given(problem_trees, st.data())
def test_every_legal_step_keeps_the_value(tree, data):
    state = TASK.initial_state(TASK.parse_problem(format_expression(tree)))
    true_value = python_value(state.content)
    while not TASK.is_terminal(state):
        step = data.draw(st.sampled_from(TASK.legal_steps(state)))
        state = TASK.apply(state, step)
        assert python_value(state.content) == true_value
    assert TASK.answer(state) == str(true_value)
    assert TASK.outcome(state) == 1.0


def replace_leftmost_operation(tree, value: int):
    """``tree`` with its leftmost operation on two literals replaced by ``value``."""
    if isinstance(tree.left, int) and isinstance(tree.right, int):
        return value
    if isinstance(tree.left, BinOp):
        return BinOp(tree.op, replace_leftmost_operation(tree.left, value), tree.right)
    return BinOp(tree.op, tree.left, replace_leftmost_operation(tree.right, value))


def leftmost_operation(tree) -> BinOp:
    if isinstance(tree.left, int) and isinstance(tree.right, int):
        return tree
    return leftmost_operation(tree.left if isinstance(tree.left, BinOp) else tree.right)


@settings(suppress_health_check=[HealthCheck.filter_too_much])
@given(problem_trees, st.integers(-50, 50).filter(bool))
def test_a_step_with_an_edited_value_is_rejected(tree, delta):
    state = TASK.initial_state(TASK.parse_problem(format_expression(tree)))
    redex = leftmost_operation(tree)
    right_value = python_value(f"{redex.left}{redex.op}{redex.right}")
    wrong = Step(format_expression(replace_leftmost_operation(tree, right_value + delta)))
    assert not TASK.legal(state, wrong)
    assert ArithTask(strict=False).legal(state, wrong)


@settings(suppress_health_check=[HealthCheck.filter_too_much])
@given(problem_trees)
def test_oracle_path_replays_to_the_true_value(tree):
    problem = TASK.parse_problem(format_expression(tree))
    state = TASK.replay(problem, solution_steps(problem))
    assert TASK.answer(state) == str(python_value(problem.text))
    assert value_of(problem.text) == python_value(problem.text)
    assert TASK.verify(problem, TASK.answer(state))
