"""Specification of the Game of 24 (``qstar.tasks.game24`` on the rules of ``numbers_game``).

Expected values are worked out by hand (step texts, legal steps of small states, reasons) or
read straight from the vendored ToT csv with the ``csv`` module.
"""

from __future__ import annotations

import contextlib
import csv
import random
import re
import signal
from fractions import Fraction
from importlib import resources

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from qstar.errors import IllegalStepError, ParseError, ProblemError
from qstar.tasks.game24 import Game24Task
from qstar.types import State, Step, Verdict

TASK = Game24Task()


def csv_rows() -> list[tuple[int, list[int]]]:
    text = resources.files("qstar.data").joinpath("24.csv").read_text(encoding="utf-8")
    return [
        (int(row["Rank"]), [int(x) for x in row["Puzzles"].split()])
        for row in csv.DictReader(text.splitlines())
    ]


def rank_of(problem_id: str) -> int:
    return int(problem_id.split("/")[1])


def state_after(puzzle: str, *steps: str) -> State:
    return TASK.replay(TASK.parse_problem(puzzle), steps)


def values(state: State) -> list[Fraction]:
    return list(state.content.values)


class Timeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float):
    """Interrupt the block after ``seconds`` (a hang is a failure, not a stuck test run)."""

    def on_alarm(signum, frame):
        raise Timeout(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# -- the data and its splits -------------------------------------------------------------------


def test_the_task_is_named_game24_with_three_steps_and_a_test_time_verifier():
    assert TASK.name == "game24"
    assert TASK.max_steps == 3
    assert TASK.has_test_time_verifier is True


def test_the_splits_together_hold_every_puzzle_of_the_csv_once():
    ranks = [r for r, _ in csv_rows()]
    assert len(ranks) == 1362
    ids = [p.id for split in ("train", "val", "test") for p in TASK.problems(split)]
    assert sorted(rank_of(i) for i in ids) == sorted(ranks)


def test_the_test_split_is_ranks_901_to_1000_exactly_as_in_tree_of_thoughts():
    test = TASK.problems("test")
    assert [p.id for p in test] == [f"test/{r}" for r in range(901, 1001)]
    assert test[0].text == "4 5 6 10"
    assert test[-1].text == "4 9 10 13"
    by_rank = dict(csv_rows())
    assert [p.data["numbers"] for p in test] == [sorted(by_rank[r]) for r in range(901, 1001)]


def test_the_val_split_is_the_documented_fixed_draw_of_100_puzzles_outside_test():
    others = [r for r, _ in csv_rows() if not 901 <= r <= 1000]
    expected = sorted(random.Random(24).sample(others, 100))
    assert [rank_of(p.id) for p in TASK.problems("val")] == expected


def test_the_splits_are_disjoint():
    ranks = {split: {rank_of(p.id) for p in TASK.problems(split)} for split in ("train", "val", "test")}
    assert len(ranks["train"]) == 1162
    assert len(ranks["val"]) == 100
    assert len(ranks["test"]) == 100
    assert not ranks["train"] & ranks["val"]
    assert not ranks["train"] & ranks["test"]
    assert not ranks["val"] & ranks["test"]


def test_a_split_is_the_same_on_every_call():
    assert TASK.problems("val") == TASK.problems("val")
    assert [p.id for p in TASK.problems("train")] == [p.id for p in Game24Task().problems("train")]


def test_an_unknown_split_is_a_problem_error_naming_the_splits():
    with pytest.raises(ProblemError, match="train, val, test"):
        TASK.problems("dev")


# -- problems ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["4 9 10 13", "13 10 9 4", "13,9, 10 ,4", "  4 9 10 13\n"])
def test_parse_problem_reads_four_numbers_and_sorts_them(text):
    problem = TASK.parse_problem(text)
    assert problem.task == "game24"
    assert problem.text == "4 9 10 13"
    assert list(problem.data["numbers"]) == [4, 9, 10, 13]


@pytest.mark.parametrize(
    "text", ["4 9 x 13", "4 9 10", "4 9 10 13 1", "0 1 2 3", "1 2 3 14", "", "-1 2 3 4", "1.5 2 3 4"]
)
def test_parse_problem_rejects_anything_but_four_integers_1_to_13(text):
    with pytest.raises(ProblemError, match="expected four integers 1-13"):
        TASK.parse_problem(text)


def test_problem_from_json_reads_a_numbers_list():
    problem = TASK.problem_from_json({"numbers": [13, 4, 10, 9]}, id="f.jsonl:3")
    assert problem.text == "4 9 10 13"
    assert problem.id == "f.jsonl:3"


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"numbers": "4 9 10 13"},
        {"numbers": [4, 9, 10]},
        {"numbers": [4, 9, 10, 14]},
        {"numbers": [4, 9, 10, 13.0]},
        {"numbers": [True, 9, 10, 13]},
        {"numbers": [4, 9, 10, None]},
    ],
)
def test_problem_from_json_rejects_anything_but_four_integers_1_to_13(obj):
    with pytest.raises(ProblemError, match="four integers 1-13"):
        TASK.problem_from_json(obj)


# -- states, steps and their text ----------------------------------------------------------------


def test_the_initial_state_holds_the_numbers_ascending_as_fractions():
    state = TASK.initial_state(TASK.parse_problem("13 4 10 9"))
    assert values(state) == [4, 9, 10, 13]
    assert all(isinstance(v, Fraction) for v in values(state))
    assert state.steps == ()


def test_render_is_the_header_line_then_one_line_per_step():
    assert TASK.render(state_after("4 9 10 13")) == "game24: 4 9 10 13\n"
    assert TASK.render(state_after("4 9 10 13", "10 - 4 = 6 (left: 6 9 13)")) == (
        "game24: 4 9 10 13\n10 - 4 = 6 (left: 6 9 13)\n"
    )


@pytest.mark.parametrize(
    "text",
    [
        "10 - 4 = 6 (left: 5 6 6)",
        "10-4=6(left:5 6 6)",
        "  10 - 4 = 6   (left: 6 5 6) ",
        "10 - 4 = 6",
        "10 − 4 = 6 (left: 5 6 6)",
    ],
)
def test_parse_step_normalises_to_the_tree_of_thoughts_format(text):
    state = state_after("4 5 6 10")
    assert TASK.parse_step(state, text) == Step("10 - 4 = 6 (left: 5 6 6)")


@pytest.mark.parametrize(
    ("text", "normal"),
    [("5 x 6 = 30", "5 * 6 = 30"), ("5 × 6 = 30", "5 * 6 = 30"), ("10 ÷ 5 = 2", "10 / 5 = 2")],
)
def test_parse_step_reads_other_operator_signs(text, normal):
    state = state_after("4 5 6 10")
    left = {"5 * 6 = 30": "4 10 30", "10 / 5 = 2": "2 4 6"}[normal]
    assert TASK.parse_step(state, text) == Step(f"{normal} (left: {left})")


def test_parse_step_keeps_wrong_numbers_as_written_for_apply_to_judge():
    state = state_after("4 5 6 10")
    assert TASK.parse_step(state, "10 - 4 = 7 (left: 5 6 7)") == Step("10 - 4 = 7 (left: 5 6 7)")


@pytest.mark.parametrize(
    "text", ["", "hello", "10 - 4", "10 - 4 = ", "10 ^ 4 = 6", "= 6 (left: 5 6 6)", "ten - 4 = 6"]
)
def test_parse_step_rejects_text_that_is_not_a_step(text):
    with pytest.raises(ParseError, match="is not of the form"):
        TASK.parse_step(state_after("4 5 6 10"), text)


def test_a_path_of_steps_reaches_24_and_rebuilds_the_expression():
    state = state_after("4 9 10 13", "10 - 4 = 6 (left: 6 9 13)", "13 - 9 = 4 (left: 4 6)")
    assert values(state) == [4, 6]
    assert not TASK.is_terminal(state)
    assert TASK.outcome(state) is None
    assert TASK.answer(state) is None
    state = TASK.apply(state, Step("6 * 4 = 24 (left: 24)"))
    assert values(state) == [24]
    assert TASK.is_terminal(state)
    assert TASK.outcome(state) == 1.0
    assert TASK.answer(state) == "(10 - 4) * (13 - 9)"
    assert [s.text for s in state.steps] == [
        "10 - 4 = 6 (left: 6 9 13)",
        "13 - 9 = 4 (left: 4 6)",
        "6 * 4 = 24 (left: 24)",
    ]


def test_a_path_that_ends_on_another_number_fails():
    state = state_after(
        "4 9 10 13", "10 + 13 = 23 (left: 4 9 23)", "23 - 9 = 14 (left: 4 14)", "14 + 4 = 18 (left: 18)"
    )
    assert TASK.is_terminal(state)
    assert TASK.outcome(state) == 0.0
    assert TASK.answer(state) == "10 + 13 - 9 + 4"


def test_fractions_are_allowed_along_the_way():
    state = state_after(
        "1 5 5 5", "1 / 5 = 1/5 (left: 1/5 5 5)", "5 - 1/5 = 24/5 (left: 24/5 5)", "5 * 24/5 = 24 (left: 24)"
    )
    assert TASK.outcome(state) == 1.0
    assert TASK.answer(state) == "5 * (5 - 1 / 5)"


def test_apply_accepts_any_correct_step_not_only_canonical_ones():
    state = state_after("4 9 10 13")
    assert TASK.legal(state, Step("4 + 10 = 14 (left: 9 13 14)"))
    assert TASK.legal(state, Step("4 - 10 = -6 (left: -6 9 13)"))
    assert values(TASK.apply(state, Step("4 - 10 = -6 (left: -6 9 13)"))) == [-6, 9, 13]


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        ("7 + 4 = 11 (left: 9 10 11)", "7 and 4 are not both among the numbers left (4 9 10 13)"),
        ("4 + 4 = 8 (left: 8 9 10)", "4 and 4 are not both among the numbers left"),
        ("10 - 4 = 7 (left: 7 9 13)", "10 - 4 is 6, not 7"),
        ("10 - 4 = 6 (left: 6 9 12)", "numbers left should be (6 9 13), the step says (6 9 12)"),
        ("10 - 4 = 6 (left: 6 9)", "numbers left should be (6 9 13)"),
    ],
)
def test_apply_rejects_a_wrong_step_with_the_reason(step, reason):
    state = state_after("4 9 10 13")
    with pytest.raises(IllegalStepError, match=re.escape(reason)):
        TASK.apply(state, Step(step))
    assert not TASK.legal(state, Step(step))


def test_apply_rejects_division_by_zero():
    state = state_after("1 1 4 6", "1 - 1 = 0 (left: 0 4 6)")
    with pytest.raises(IllegalStepError, match="division by zero"):
        TASK.apply(state, Step("4 / 0 = 4 (left: 4 6)"))


def test_no_step_is_allowed_after_the_last_number():
    state = state_after(
        "4 9 10 13", "10 - 4 = 6 (left: 6 9 13)", "13 - 9 = 4 (left: 4 6)", "6 * 4 = 24 (left: 24)"
    )
    assert TASK.legal_steps(state) == []
    assert not TASK.legal(state, Step("24 - 24 = 0 (left: 0)"))
    with pytest.raises(IllegalStepError, match="reasoning has ended"):
        TASK.apply(state, Step("24 + 24 = 48 (left: 48)"))


# -- legal steps ---------------------------------------------------------------------------------


def test_legal_steps_of_two_numbers_are_the_five_canonical_operations():
    state = state_after("4 9 10 13", "10 - 4 = 6 (left: 6 9 13)", "13 - 9 = 4 (left: 4 6)")
    assert sorted(s.text for s in TASK.legal_steps(state)) == sorted(
        [
            "6 + 4 = 10 (left: 10)",
            "6 - 4 = 2 (left: 2)",
            "6 * 4 = 24 (left: 24)",
            "6 / 4 = 3/2 (left: 3/2)",
            "4 / 6 = 2/3 (left: 2/3)",
        ]
    )


def test_legal_steps_of_equal_numbers_are_listed_once():
    state = state_after("1 1 4 6", "1 + 1 = 2 (left: 2 4 6)", "6 - 4 = 2 (left: 2 2)")
    assert sorted(s.text for s in TASK.legal_steps(state)) == sorted(
        ["2 + 2 = 4 (left: 4)", "2 - 2 = 0 (left: 0)", "2 * 2 = 4 (left: 4)", "2 / 2 = 1 (left: 1)"]
    )


def test_legal_steps_of_four_distinct_numbers_are_six_pairs_times_five():
    texts = [s.text for s in TASK.legal_steps(state_after("4 9 10 13"))]
    assert len(texts) == len(set(texts)) == 30
    assert "13 - 4 = 9 (left: 9 9 10)" in texts
    assert "4 / 13 = 4/13 (left: 4/13 9 10)" in texts


def test_legal_steps_skip_division_by_zero():
    state = state_after("1 1 4 6", "1 - 1 = 0 (left: 0 4 6)")
    texts = [s.text for s in TASK.legal_steps(state)]
    assert "0 / 4 = 0 (left: 0 6)" in texts
    assert not any(t.startswith(("4 / 0", "6 / 0")) for t in texts)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([p.text for p in TASK.problems("test")]),
    st.lists(st.integers(0, 10**6), min_size=0, max_size=2),
)
def test_every_legal_step_is_legal_non_negative_and_its_own_normal_form(puzzle, picks):
    state = state_after(puzzle)
    for pick in picks:
        steps = TASK.legal_steps(state)
        state = TASK.apply(state, steps[pick % len(steps)])
    for step in TASK.legal_steps(state):
        assert TASK.legal(state, step)
        assert TASK.parse_step(state, step.text) == step
        result = Fraction(step.text.split("=")[1].split("(")[0].strip())
        assert result >= 0
        assert len(values(TASK.apply(state, step))) == len(values(state)) - 1


# -- verify --------------------------------------------------------------------------------------

PUZZLE = TASK.parse_problem("4 9 10 13")
SOLUTION_STEPS = "10 - 4 = 6 (left: 6 9 13)\n13 - 9 = 4 (left: 4 6)\n6 * 4 = 24 (left: 24)"


@pytest.mark.parametrize(
    "answer",
    [
        "(10 - 4) * (13 - 9)",
        "(10-4)*(13-9)",
        "(10-4)*(13-9) = 24",
        "(13 − 9) × (10 − 4)",
        "  (10 - 4) * (13 - 9)\n\n",
    ],
)
def test_verify_accepts_a_correct_bare_expression(answer):
    assert TASK.verify(PUZZLE, answer) == Verdict(True)


def test_verify_accepts_correct_step_lines():
    assert TASK.verify(PUZZLE, SOLUTION_STEPS) == Verdict(True)
    assert TASK.verify(PUZZLE, "\n" + SOLUTION_STEPS.replace("\n", "\n\n") + "\n")


def test_verify_accepts_step_lines_without_the_numbers_left():
    assert TASK.verify(PUZZLE, "10 - 4 = 6\n13 - 9 = 4\n6 * 4 = 24")


def test_verify_accepts_a_solution_that_needs_fractions():
    assert TASK.verify(TASK.parse_problem("1 5 5 5"), "5 * (5 - 1 / 5)")
    assert TASK.verify(TASK.parse_problem("3 3 8 8"), "8 / (3 - 8 / 3)")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("", "empty answer"),
        ("   \n  ", "empty answer"),
        ("(10 - 4) * (12 - 8)", "the expression uses 4 8 10 12; it must use exactly 4 9 10 13"),
        ("(10 - 4) * 4", "it must use exactly 4 9 10 13"),
        ("(10 - 4) * (13 - 9) * 1", "it must use exactly 4 9 10 13"),
        ("(10 + 4) * (13 - 9)", "the expression equals 56, not 24"),
        ("(10 - 4) * (13 - 9", "ends too early"),
        ("(10 - 4)) * (13 - 9)", "unexpected ')'"),
    ],
)
def test_verify_rejects_a_wrong_bare_expression_with_the_reason(answer, reason):
    verdict = TASK.verify(PUZZLE, answer)
    assert not verdict.ok
    assert reason in verdict.reason


def test_verify_reports_division_by_zero_in_an_expression():
    verdict = TASK.verify(TASK.parse_problem("4 4 10 13"), "(10 + 13) / (4 - 4)")
    assert not verdict.ok
    assert "divides by zero" in verdict.reason


def test_verify_reports_division_by_zero_in_a_step():
    verdict = TASK.verify(
        TASK.parse_problem("1 1 4 6"), "1 - 1 = 0 (left: 0 4 6)\n4 / 0 = 4 (left: 4 6)\n4 * 6 = 24 (left: 24)"
    )
    assert verdict == Verdict(False, "division by zero")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("10 - 4 = 6 (left: 6 9 13)\n13 - 9 = 4 (left: 4 6)", "the steps stop before the reasoning ends"),
        (
            "10 - 4 = 6 (left: 6 9 13)\n13 - 9 = 4 (left: 4 6)\n6 + 4 = 10 (left: 10)",
            "the steps end at 10 - 4 + 13 - 9, not the target",
        ),
        ("10 - 4 = 6 (left: 6 9 13)\n13 - 9 = 5 (left: 5 6)\n6 * 4 = 24 (left: 24)", "13 - 9 is 4, not 5"),
        (SOLUTION_STEPS + "\n24 + 0 = 24 (left: 24)", "comes after the reasoning already ended"),
        ("10 - 4 = 6 (left: 6 9 13)\nso the answer is 24", "is not of the form"),
    ],
)
def test_verify_rejects_wrong_step_lines_with_the_reason(answer, reason):
    verdict = TASK.verify(PUZZLE, answer)
    assert not verdict.ok
    assert reason in verdict.reason


# -- robustness: never raise on arbitrary text ---------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60))
def test_verify_returns_a_verdict_on_arbitrary_text(text):
    assert isinstance(TASK.verify(PUZZLE, text), Verdict)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60))
def test_parse_step_and_apply_raise_only_parse_or_illegal_step_errors(text):
    state = state_after("4 9 10 13")
    with contextlib.suppress(ParseError):
        TASK.parse_step(state, text)
    with contextlib.suppress(ParseError, IllegalStepError):
        TASK.apply(state, Step(text))
    assert TASK.legal(state, Step(text)) in (True, False)


STEP_TOKENS = [
    "4",
    "9",
    "10",
    "13",
    "6",
    "0",
    "24",
    "-6",
    "1/5",
    "/",
    "+",
    "-",
    "*",
    "x",
    "=",
    "(left:",
    ")",
    "(",
    "\n",
]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(STEP_TOKENS), st.sampled_from(["", " "])), max_size=14))
@example([("1", ""), ("/", ""), ("0", " "), ("+", " "), ("4", " "), ("=", " "), ("5", "")])
def test_verify_and_apply_never_raise_on_step_like_text(tokens):
    text = "".join(tok + sep for tok, sep in tokens)
    state = state_after("4 9 10 13")
    with time_limit(2.0):
        assert isinstance(TASK.verify(PUZZLE, text), Verdict)
        with contextlib.suppress(ParseError, IllegalStepError):
            TASK.apply(state, TASK.parse_step(state, text))


@pytest.mark.parametrize("text", ["1/0 + 4 = 4", "10 - 4 = 6 (left: 1/0 9 13)"])
def test_a_zero_denominator_in_a_step_is_a_parse_error_and_a_rejected_answer(text):
    state = state_after("4 9 10 13")
    with pytest.raises(ParseError):
        TASK.parse_step(state, text)
    assert not TASK.verify(PUZZLE, text + "\n" + text).ok


def test_verify_rejects_an_absurdly_long_number():
    assert not TASK.verify(PUZZLE, "9" * 5000).ok


def test_a_step_with_a_long_digit_run_is_rejected_quickly():
    state = state_after("4 9 10 13")
    text = "4 + 9 = 13 (left: " + "1" * 40 + " x)"
    with time_limit(0.5):
        with pytest.raises(ParseError):
            TASK.parse_step(state, text)
        assert not TASK.verify(PUZZLE, text).ok


# -- TaskBase.replay -----------------------------------------------------------------------------


def test_replay_of_no_steps_is_the_initial_state():
    problem = TASK.parse_problem("4 9 10 13")
    assert TASK.replay(problem, []) == TASK.initial_state(problem)


def test_replay_applies_the_step_texts_in_order_in_normal_form():
    state = TASK.replay(TASK.parse_problem("4 9 10 13"), ["10-4=6", "13 - 9 = 4"])
    assert [s.text for s in state.steps] == ["10 - 4 = 6 (left: 6 9 13)", "13 - 9 = 4 (left: 4 6)"]
    assert values(state) == [4, 6]


def test_replay_raises_on_the_first_bad_step():
    problem = TASK.parse_problem("4 9 10 13")
    with pytest.raises(IllegalStepError, match="10 - 4 is 6, not 5"):
        TASK.replay(problem, ["10 - 4 = 5", "nonsense"])
    with pytest.raises(ParseError, match="is not of the form"):
        TASK.replay(problem, ["10 - 4 = 6", "nonsense", "10 - 4 = 5"])


def test_replay_refuses_a_step_after_the_reasoning_ended_and_names_it():
    problem = TASK.parse_problem("4 9 10 13")
    with pytest.raises(
        IllegalStepError, match=r"step 4 \('24 - 0 = 24'\) comes after the reasoning already ended"
    ):
        TASK.replay(problem, ["10 - 4 = 6", "13 - 9 = 4", "6 * 4 = 24", "24 - 0 = 24"])


def test_legal_steps_are_cached_per_number_set_and_the_cache_is_never_pickled():
    import pickle

    from qstar.tasks import numbers_game

    task = Game24Task()
    first = task.legal_steps(state_after("4 9 10 13"))
    hits = numbers_game._canonical_step_texts.cache_info().hits
    again = task.legal_steps(state_after("13 10 9 4"))  # same numbers, another problem
    assert numbers_game._canonical_step_texts.cache_info().hits == hits + 1
    assert again == first and again is not first  # a fresh list each call: callers may mutate it
    again.clear()
    assert task.legal_steps(state_after("4 9 10 13")) == first
    copy = pickle.loads(pickle.dumps(task))
    assert copy.__dict__ == task.__dict__  # the game carries no cache of its own
    assert copy.legal_steps(state_after("4 9 10 13")) == first
