"""Specification of Countdown (``qstar.tasks.countdown``): integer-only rules, not every number
needed, the reasoning ends when the target is produced; generated splits.

Expected values are worked out by hand; solvability of generated problems is checked with a
small depth-first search written here (not the library's oracle).
"""

from __future__ import annotations

import re
from collections import Counter
from itertools import combinations

import pytest

from qstar.errors import IllegalStepError, ProblemError
from qstar.tasks import countdown
from qstar.tasks.countdown import COUNTDOWN_4, COUNTDOWN_6, CountdownTask
from qstar.types import State, Step, Verdict

C4 = CountdownTask(COUNTDOWN_4)
C6 = CountdownTask(COUNTDOWN_6)
TV_DECK = Counter([*range(1, 11), *range(1, 11), 25, 50, 75, 100])


def reaches(numbers: list[int], target: int) -> bool:
    """Independent search: can a step of positive-integer arithmetic on some of ``numbers``
    produce ``target``? (Pairs combined with + - * /, every result a positive integer.)"""
    dead: set[tuple[int, ...]] = set()

    def walk(pool: list[int]) -> bool:
        key = tuple(sorted(pool))
        if key in dead:
            return False
        for i, j in combinations(range(len(pool)), 2):
            a, b = pool[i], pool[j]
            rest = [pool[k] for k in range(len(pool)) if k not in (i, j)]
            results = {a + b, a * b, abs(a - b)}
            if a % b == 0:
                results.add(a // b)
            if b % a == 0:
                results.add(b // a)
            for r in results:
                if r > 0 and (r == target or walk([*rest, r])):
                    return True
        dead.add(key)
        return False

    return walk(list(numbers))


def state_after(task: CountdownTask, problem: str, *steps: str) -> State:
    return task.replay(task.parse_problem(problem), steps)


def step_texts(task: CountdownTask, state: State) -> list[str]:
    return sorted(s.text for s in task.legal_steps(state))


# -- settings ------------------------------------------------------------------------------------


def test_countdown_4_is_four_numbers_1_to_99_and_a_target_1_to_100():
    assert C4.name == "countdown-4"
    assert COUNTDOWN_4.num_numbers == 4
    assert COUNTDOWN_4.number_range == (1, 99)
    assert COUNTDOWN_4.target_range == (1, 100)
    assert C4.max_steps == 3
    assert C4.has_test_time_verifier is True


def test_countdown_6_is_six_tv_cards_and_a_target_101_to_999():
    assert C6.name == "countdown-6"
    assert COUNTDOWN_6.num_numbers == 6
    assert COUNTDOWN_6.number_range is None
    assert COUNTDOWN_6.target_range == (101, 999)
    assert C6.max_steps == 5


def test_the_default_setting_is_countdown_4():
    assert CountdownTask().name == "countdown-4"


# -- problems ------------------------------------------------------------------------------------


def test_parse_problem_reads_numbers_and_target_and_sorts_the_numbers():
    problem = C6.parse_problem("25 50 75 100 3 6 -> 952")
    assert problem.task == "countdown-6"
    assert problem.text == "3 6 25 50 75 100 -> 952"
    assert list(problem.data["numbers"]) == [3, 6, 25, 50, 75, 100]
    assert problem.data["target"] == 952


def test_parse_problem_takes_the_target_as_an_argument_too():
    assert C4.parse_problem("98, 61, 85, 75", target=99).text == "61 75 85 98 -> 99"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1 2 3 4", "give a target"),
        ("1 2 3 x -> 5", "expected integers"),
        ("1 2 3 4 -> five", "expected integers"),
        ("1 2 3 -> 5", "expected 4 integers 1-99"),
        ("1 2 3 4 5 -> 6", "expected 4 integers 1-99"),
        ("1 2 3 100 -> 5", "expected 4 integers 1-99"),
        ("0 2 3 4 -> 5", "expected 4 integers 1-99"),
        ("1 2 3 4 -> 101", "target must be an integer 1-100"),
        ("1 2 3 4 -> 0", "target must be an integer 1-100"),
    ],
)
def test_parse_problem_rejects_a_bad_countdown_4_problem_with_the_reason(text, reason):
    with pytest.raises(ProblemError, match=re.escape(reason)):
        C4.parse_problem(text)


def test_parse_problem_checks_the_countdown_6_ranges():
    with pytest.raises(ProblemError, match="expected 6 integers 1-100"):
        C6.parse_problem("25 50 75 100 3 -> 952")
    with pytest.raises(ProblemError, match="target must be an integer 101-999"):
        C6.parse_problem("25 50 75 100 3 6 -> 100")


def test_problem_from_json_reads_numbers_and_target():
    problem = C4.problem_from_json({"numbers": [98, 61, 85, 75], "target": 99}, id="p.jsonl:2")
    assert problem.text == "61 75 85 98 -> 99"
    assert problem.id == "p.jsonl:2"


@pytest.mark.parametrize(
    "obj",
    [
        {"numbers": [1, 2, 3, 4]},
        {"numbers": [1, 2, 3, 4], "target": True},
        {"numbers": [1, 2, 3, 4], "target": 5.0},
        {"numbers": [1, 2, 3], "target": 5},
        {"numbers": [1, 2, 3, False], "target": 5},
        {"target": 5},
    ],
)
def test_problem_from_json_rejects_a_bad_problem(obj):
    with pytest.raises(ProblemError, match="countdown-4 problem"):
        C4.problem_from_json(obj)


# -- rules: positive integers only ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("problem", "step", "reason"),
    [
        ("2 4 7 50 -> 14", "7 / 2 = 7/2 (left: 7/2 4 50)", "7 / 2 = 7/2: results must be positive integers"),
        ("2 4 7 50 -> 14", "2 - 7 = -5 (left: -5 4 50)", "2 - 7 = -5: results must be positive integers"),
        ("4 4 7 50 -> 14", "4 - 4 = 0 (left: 0 7 50)", "4 - 4 = 0: results must be positive integers"),
    ],
)
def test_a_step_must_produce_a_positive_integer(problem, step, reason):
    state = state_after(C4, problem)
    with pytest.raises(IllegalStepError, match=re.escape(reason)):
        C4.apply(state, Step(step))
    assert not C4.legal(state, Step(step))


def test_a_correct_integer_step_is_legal_in_either_operand_order():
    state = state_after(C4, "2 4 7 50 -> 14")
    assert C4.legal(state, Step("50 / 2 = 25 (left: 4 7 25)"))
    assert C4.legal(state, Step("2 + 50 = 52 (left: 4 7 52)"))


def test_legal_steps_of_two_numbers_leave_out_fractions():
    state = state_after(C4, "2 3 4 6 -> 100", "4 - 3 = 1 (left: 1 2 6)", "2 * 1 = 2 (left: 2 6)")
    assert step_texts(C4, state) == sorted(
        ["6 + 2 = 8 (left: 8)", "6 - 2 = 4 (left: 4)", "6 * 2 = 12 (left: 12)", "6 / 2 = 3 (left: 3)"]
    )


def test_legal_steps_of_equal_numbers_leave_out_zero():
    state = state_after(C4, "1 3 3 9 -> 100", "9 / 3 = 3 (left: 1 3 3)", "3 * 1 = 3 (left: 3 3)")
    assert step_texts(C4, state) == sorted(
        ["3 + 3 = 6 (left: 6)", "3 * 3 = 9 (left: 9)", "3 / 3 = 1 (left: 1)"]
    )


def test_legal_steps_of_four_numbers_are_all_positive_integer_results():
    texts = step_texts(C4, state_after(C4, "2 3 7 50 -> 99"))
    assert "7 / 2 = 7/2 (left: 3 7/2 50)" not in texts
    assert "50 / 2 = 25 (left: 3 7 25)" in texts
    # 6 pairs x (+ - *), plus 50 / 2: no other pair divides evenly.
    assert len(texts) == 6 * 3 + 1


# -- rules: the reasoning ends when the target is produced ---------------------------------------


def test_producing_the_target_ends_the_reasoning_before_all_numbers_are_used():
    state = state_after(C4, "2 3 7 50 -> 5", "2 + 3 = 5 (left: 5 7 50)")
    assert C4.is_terminal(state)
    assert C4.outcome(state) == 1.0
    assert C4.answer(state) == "2 + 3"
    assert C4.legal_steps(state) == []
    assert not C4.legal(state, Step("7 + 5 = 12 (left: 12 50)"))


def test_the_reasoning_goes_on_while_no_step_has_produced_the_target():
    state = state_after(C4, "2 3 7 50 -> 5")
    assert not C4.is_terminal(state)
    assert C4.outcome(state) is None
    state = C4.apply(state, Step("50 - 7 = 43 (left: 2 3 43)"))
    assert not C4.is_terminal(state)
    assert C4.answer(state) is None


def test_a_step_after_the_target_is_produced_is_refused():
    problem = C4.parse_problem("2 3 7 50 -> 5")
    with pytest.raises(IllegalStepError, match="after the reasoning already ended"):
        C4.replay(problem, ["2 + 3 = 5 (left: 5 7 50)", "7 + 5 = 12 (left: 12 50)"])


def test_one_number_left_without_the_target_is_a_failure():
    state = state_after(
        C4,
        "2 4 7 50 -> 99",
        "2 + 4 = 6 (left: 6 7 50)",
        "7 + 6 = 13 (left: 13 50)",
        "50 + 13 = 63 (left: 63)",
    )
    assert C4.is_terminal(state)
    assert C4.outcome(state) == 0.0
    assert C4.answer(state) == "50 + 7 + 2 + 4"


# -- verify --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("problem", "answer"),
    [
        ("2 4 7 50 -> 14", "7 * 4 / 2"),
        ("2 4 7 50 -> 14", "7 * (4 - 2)"),
        ("2 4 7 50 -> 14", "2 * 7"),
        ("2 4 7 50 -> 14", "2 * 7 = 14"),
        ("2 4 7 50 -> 5", "7 - 4 + 2"),
        ("2 3 7 50 -> 5", "2 + 3 = 5 (left: 5 7 50)"),
        ("2 3 7 50 -> 5", "2 + 3 = 5"),
        ("2 3 7 50 -> 96", "50 * 2 = 100 (left: 3 7 100)\n7 - 3 = 4 (left: 4 100)\n100 - 4 = 96 (left: 96)"),
    ],
)
def test_verify_accepts_a_correct_answer_that_may_leave_numbers_unused(problem, answer):
    assert C4.verify(C4.parse_problem(problem), answer) == Verdict(True)


@pytest.mark.parametrize(
    ("problem", "answer", "reason"),
    [
        ("2 4 7 50 -> 14", "7 / 2 * 4", "every intermediate result must be a positive integer"),
        ("2 4 7 50 -> 5", "2 - 4 + 7", "every intermediate result must be a positive integer"),
        ("2 4 7 50 -> 28", "7 * 2 * 2", "uses a number that is not given (or uses one too often)"),
        ("2 4 7 50 -> 28", "14 * 2", "uses a number that is not given (or uses one too often)"),
        ("2 4 7 50 -> 14", "7 * 4", "the expression equals 28, not 14"),
        ("2 4 7 50 -> 28", "2 + 4 = 6 (left: 6 7 50)", "the steps stop before the reasoning ends"),
        (
            "2 4 7 50 -> 14",
            "7 / 2 = 7/2 (left: 7/2 4 50)\n7/2 * 4 = 14 (left: 14 50)",
            "must be positive integers",
        ),
        (
            "2 4 7 50 -> 99",
            "2 + 4 = 6 (left: 6 7 50)\n7 + 6 = 13 (left: 13 50)\n50 + 13 = 63 (left: 63)",
            "the steps end at 50 + 7 + 2 + 4, not the target",
        ),
        (
            "2 3 7 50 -> 5",
            "2 + 3 = 5 (left: 5 7 50)\n7 + 5 = 12 (left: 12 50)",
            "comes after the reasoning already ended",
        ),
    ],
)
def test_verify_rejects_a_wrong_answer_with_the_reason(problem, answer, reason):
    verdict = C4.verify(C4.parse_problem(problem), answer)
    assert not verdict.ok
    assert reason in verdict.reason


def test_verify_reports_division_by_zero():
    verdict = C4.verify(C4.parse_problem("2 4 4 50 -> 14"), "50 / (4 - 4)")
    assert not verdict.ok
    assert "divides by zero" in verdict.reason


# -- generated splits ------------------------------------------------------------------------------


def generate_fresh(task: CountdownTask, *splits: str) -> dict[str, list]:
    """Generate the splits from scratch, in the order asked (the module caches them)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(countdown, "_GENERATED", {})
        return {split: task.problems(split) for split in splits}


@pytest.fixture(scope="module")
def countdown4_train_first():
    return generate_fresh(C4, "train", "val", "test")


def check_well_formed(task: CountdownTask, problems: list, split: str, size: int) -> None:
    assert [p.id for p in problems] == [f"{split}/{i}" for i in range(1, size + 1)]
    assert len({p.text for p in problems}) == size
    tlo, thi = task.spec.target_range
    for p in problems:
        numbers, target = list(p.data["numbers"]), p.data["target"]
        assert p.task == task.name
        assert p.text == f"{' '.join(map(str, numbers))} -> {target}"
        assert numbers == sorted(numbers)
        assert len(numbers) == task.spec.num_numbers
        assert tlo <= target <= thi
        assert target not in numbers
        if task.spec.number_range is None:
            assert not Counter(numbers) - TV_DECK, numbers
        else:
            lo, hi = task.spec.number_range
            assert all(lo <= n <= hi for n in numbers)


def test_countdown_4_splits_have_their_sizes_and_well_formed_problems(countdown4_train_first):
    for split, size in (("test", 200), ("val", 200), ("train", 10000)):
        check_well_formed(C4, countdown4_train_first[split], split, size)


def test_countdown_4_splits_are_disjoint(countdown4_train_first):
    texts = {split: {p.text for p in problems} for split, problems in countdown4_train_first.items()}
    assert not texts["test"] & texts["val"]
    assert not texts["test"] & texts["train"]
    assert not texts["val"] & texts["train"]


def test_countdown_4_problems_are_solvable(countdown4_train_first):
    sample = [
        *countdown4_train_first["test"],
        *countdown4_train_first["val"],
        *countdown4_train_first["train"][::100],
    ]
    unsolved = [p.text for p in sample if not reaches(list(p.data["numbers"]), p.data["target"])]
    assert unsolved == []


def test_countdown_4_splits_are_reproducible_and_test_does_not_depend_on_generating_train(
    countdown4_train_first,
):
    alone = generate_fresh(C4, "test", "val")
    assert [p.text for p in alone["test"]] == [p.text for p in countdown4_train_first["test"]]
    assert [p.text for p in alone["val"]] == [p.text for p in countdown4_train_first["val"]]
    assert C4.problems("test") == alone["test"]


def test_countdown_6_test_split_is_100_well_formed_and_solvable_problems():
    test = C6.problems("test")
    check_well_formed(C6, test, "test", 100)
    unsolved = [p.text for p in test[::4] if not reaches(list(p.data["numbers"]), p.data["target"])]
    assert unsolved == []


def test_countdown_6_test_split_is_reproducible():
    assert [p.text for p in generate_fresh(C6, "test")["test"]] == [p.text for p in C6.problems("test")]


def test_an_unknown_split_is_a_problem_error_naming_the_splits():
    with pytest.raises(ProblemError, match="train, val, test"):
        C4.problems("dev")
