"""GSM8K task: data, answer extraction, calculator check, prompts, and every search + scorer on it."""

from __future__ import annotations

import pytest

from qstar.errors import ConfigError, IllegalStepError, ParseError, ProblemError
from qstar.policy.mock import MockPolicy, MockScorer
from qstar.search.registry import run_search, search_names
from qstar.tasks.gsm8k import (
    GSM8KTask,
    check_calculations,
    extract_answer,
    reference_steps,
    same_number,
)
from qstar.tasks.registry import get_task
from qstar.types import Budget, Step


@pytest.fixture(scope="module")
def task() -> GSM8KTask:
    return GSM8KTask(num_shots=2)


# -- data --------------------------------------------------------------------------------------
def test_splits_have_gsm8k_sizes_and_train_val_are_disjoint(task):
    train, val, test = task.problems("train"), task.problems("val"), task.problems("test")
    assert (len(train), len(val), len(test)) == (7000, 473, 1319)
    assert not {p.text for p in train} & {p.text for p in val}
    assert train[0].text.startswith("Natalia sold clips to 48 of her friends")
    assert train[0].data["answer"] == "72"
    assert test[0].text.startswith("Janet’s ducks lay 16 eggs per day")
    assert test[0].data["answer"] == "18"


def test_reference_solutions_replay_to_the_answer_key(task):
    for problem in task.problems("test")[:200]:
        state = task.replay(problem, reference_steps(problem))
        assert task.is_terminal(state)
        assert task.answer(state) == problem.data["answer"]
        assert task.outcome(state) == 1.0


def test_task_is_registered_without_a_test_time_verifier():
    task = get_task("gsm8k")
    assert task.has_test_time_verifier is False
    assert task.legal_steps(task.initial_state(task.problems("test")[0])) is None


def test_problem_from_json_takes_a_number_or_a_solution(task):
    p = task.problem_from_json({"question": "How many?", "answer": "3 + 4 = <<3+4=7>>7\n#### 7"})
    assert p.data["answer"] == "7" and p.data["solution"] == ["3 + 4 = <<3+4=7>>7", "#### 7"]
    assert task.problem_from_json({"question": "How many?", "answer": 12}).data["answer"] == "12"
    with pytest.raises(ProblemError):
        task.problem_from_json({"text": "How many?"})
    with pytest.raises(ProblemError):
        task.problem_from_json({"question": "   "})


def test_num_shots_must_be_a_non_negative_integer():
    with pytest.raises(ConfigError):
        GSM8KTask(num_shots=-1)


# -- answers -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("She made 9 * 2 = $18 every day.\n#### 18", "18"),
        ("#### 1,234", "1234"),
        ("The answer is $18.00.", "18"),
        ("So the final answer is: -3", "-3"),
        ("The answer is 0.50", "0.5"),
        ("#### 72\nThen 5 more", "72"),
        ("so 5 apples and 7 pears", "7"),
        ("half is 3/4 of it", "0.75"),
        ("a third is 1/3", "1/3"),
        ("no numbers here", None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_same_number_compares_exact_values():
    assert same_number("18", "18.00")
    assert same_number("1/2", "0.5")
    assert same_number("$1,200", "1200")
    assert not same_number("3", "4")
    assert not same_number("three", "3")


# -- calculator annotations --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.", True),
        ("Natalia sold 48/2 = <<48/2=25>>25 clips in May.", False),
        ("Each gets <<10/3=3.33>>3.33 cakes.", True),  # rounded to the decimals shown
        ("Each gets <<10/3=3.5>>3.5 cakes.", False),
        ("Total <<2*(3+4)=14>>14 and <<14-1=12>>12.", False),  # the second one is wrong
        ("Total <<2*(3+4)=14>>14 and <<14-1=13>>13.", True),
        ("Unjudged <<x+1=3>>3.", True),  # not arithmetic over numbers
        ("No annotation at all: 2 + 2 = 5.", True),
    ],
)
def test_check_calculations(text, ok):
    assert check_calculations(text).ok is ok


def test_wrong_annotation_names_the_right_value():
    assert "24" in check_calculations("<<48/2=25>>").reason


def test_wrong_annotation_is_an_illegal_step_unless_checking_is_off(task):
    state = task.initial_state(task.problems("test")[0])
    bad = Step("She has 16 - 3 - 4 = <<16-3-4=10>>10 eggs.")
    assert not task.legal(state, bad)
    with pytest.raises(IllegalStepError):
        task.apply(state, bad)
    assert GSM8KTask(num_shots=0, check_calculations=False).legal(state, bad)


# -- steps and states --------------------------------------------------------------------------
def test_step_parsing(task):
    state = task.initial_state(task.problems("test")[0])
    assert task.parse_step(state, "  She eats   3 eggs. ").text == "She eats 3 eggs."
    for bad in ("", "   ", "Question: How many eggs?", "x" * 500):
        with pytest.raises(ParseError):
            task.parse_step(state, bad)


def test_final_answer_line_ends_the_reasoning(task):
    problem = task.problems("test")[0]
    for last in ("#### 18", "The answer is 18."):
        state = task.replay(problem, ["She sells 16 - 3 - 4 = <<16-3-4=9>>9 eggs.", last])
        assert task.is_terminal(state) and task.answer(state) == "18" and task.outcome(state) == 1.0
        with pytest.raises(IllegalStepError):
            task.apply(state, Step("One more line."))
    unfinished = task.replay(problem, ["She sells 9 eggs."])
    assert not task.is_terminal(unfinished) and task.answer(unfinished) is None
    assert task.outcome(unfinished) is None


def test_verify_and_outcome_use_the_answer_key_only(task):
    problem = task.problems("test")[0]
    assert task.verify(problem, "She makes $18.").ok
    assert not task.verify(problem, "#### 17").ok
    mine = task.parse_problem("Tom has 3 apples and buys 4 more. How many?")
    assert "answer key" in task.verify(mine, "7").reason
    assert task.outcome(task.replay(mine, ["#### 7"])) is None


def test_few_shot_prompt_holds_k_train_examples_then_the_question(task):
    train = task.problems("train")
    problem = task.problems("test")[0]
    prompt = task.render(task.initial_state(problem))
    assert prompt.startswith(f"Question: {train[0].text}\nAnswer:\n")
    assert prompt.count("Question: ") == 3 and prompt.count("\n#### ") == 2
    assert f"Question: {train[1].text}\n" in prompt and train[2].text not in prompt
    assert prompt.endswith(f"\n\nQuestion: {problem.text}\nAnswer:\n")
    after = task.apply(task.initial_state(problem), Step("She eats 3."))
    assert task.render(after) == prompt + "She eats 3.\n"
    assert (
        GSM8KTask(num_shots=0).render(task.initial_state(problem)) == f"Question: {problem.text}\nAnswer:\n"
    )


# -- every search runs on it -------------------------------------------------------------------
NATALIA = [
    ["Natalia sold 48/2 = <<48/2=24>>24 clips in May.", "Natalia sold 48/2 = <<48/2=25>>25 clips in May."],
    ["Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May."],
    ["#### 72"],
]


def _scripted(prompt: str) -> list[str]:
    """The next lines for a prompt: by how many steps follow the last 'Answer:'."""
    depth = prompt.rsplit("Answer:\n", 1)[1].count("\n")
    return NATALIA[min(depth, len(NATALIA) - 1)]


@pytest.mark.parametrize(
    "search", [s for s in search_names() if s not in ("blind", "stream", "scan", "scan_teacher")]
)
def test_every_search_solves_a_scripted_gsm8k_problem(task, search):
    """The only legal path is the reference solution (the other line offered for the first step
    has a wrong calculator annotation and is dropped), so every search must end on #### 72."""
    problem = task.problems("train")[0]
    policy = MockPolicy(generations=_scripted)
    knobs = {"num_samples": 4} if search in ("self_consistency", "best_of_n") else {}
    result = run_search(
        search, problem, task, policy, MockScorer(), Budget(max_expansions=20), seed=1, **knobs
    )
    assert result.answer == "72" and result.solved is True
    assert all("<<48/2=25>>" not in (n or "") for n in (s.text for s in result.steps))
    assert all(step is None or "48/2=25" not in step.text for step in result.tree.step)
