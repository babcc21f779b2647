"""Stream of Search: the teacher's golden traces, reading a trace back, the greedy student."""

from __future__ import annotations

import math

import pytest
from toy_search_task import ToyTask

from qstar.errors import ConfigError
from qstar.policy.mock import MockPolicy, MockScorer
from qstar.search.registry import run_search
from qstar.search.stream import (
    StreamConfig,
    StreamTeacherConfig,
    parse_trace,
    stream,
    stream_prompt,
    stream_teacher,
)
from qstar.tasks.registry import get_task
from qstar.types import Budget

TASK = ToyTask()  # +1 / *3 from 1, target 10 = *3 *3 +1
VALUES = {
    ("+1",): 0.9,
    ("*3",): 0.6,
    ("+1", "+1"): 0.8,
    ("+1", "*3"): 0.7,
    ("*3", "+1"): 0.9,
    ("*3", "*3"): 0.5,
}
# Equal priors in prior order: "+1" first at every state.
DEPTH_FIRST = [
    "1: +1",
    "2: +1",
    "3: +1",
    "3: *3",
    "2: *3",
    "3: +1",
    "3: *3",
    "1: *3",
    "2: +1",
    "3: +1",
    "3: *3",
]


def teach(threshold=0.55, temperature=0.0, scores=None, max_lines=32, budget=50, rng=0):
    config = StreamTeacherConfig(temperature=temperature, value_threshold=threshold, max_lines=max_lines)
    policy = MockPolicy(scores=scores)
    return stream_teacher(
        TASK.problem(10), TASK, policy, MockScorer(VALUES), Budget(max_expansions=budget), config, rng
    )


def test_teacher_writes_every_child_and_enters_only_those_above_the_threshold():
    result = teach(threshold=0.55)
    # ("*3", "*3") is valued 0.5: written as a dead end, never entered, so 10 is missed.
    assert result.info["trace"].split("\n") == [*DEPTH_FIRST, "2: *3"]
    assert result.info["end"] == "exhausted" and result.solved is False
    assert "pruned" in result.tree.flags[result.tree.children[2][1]]


def test_teacher_stops_at_the_first_verified_answer():
    result = teach(threshold=0.5)
    assert result.info["trace"].split("\n") == [*DEPTH_FIRST, "2: *3", "3: +1"]
    assert result.info["end"] == "solved" and result.solved is True
    assert [s.text for s in result.steps] == ["*3", "*3", "+1"]
    assert result.info["lines"] == 13


def test_teacher_orders_children_by_the_prior():
    scores = {"*3": math.log(0.75), "+1": math.log(0.25)}
    result = teach(threshold=0.5, scores=scores)
    assert result.info["trace"] == "1: *3\n2: *3\n3: *3\n3: +1"
    assert result.cost.expansions == 3 and result.cost.model_calls > 0


def test_teacher_max_lines_and_budget_stop_unsolved():
    result = teach(threshold=0.5, max_lines=3)
    assert result.info["lines"] == 3 and result.info["end"] == "max_lines" and not result.solved
    result = teach(threshold=0.5, budget=2)
    assert result.info["end"] == "budget" and not result.solved and result.cost.expansions == 2


def test_teacher_gumbel_order_is_reproducible_from_the_seed_and_varies_with_it():
    traces = {teach(threshold=0.5, temperature=5.0, rng=seed).info["trace"] for seed in range(12)}
    assert len(traces) > 1
    assert (
        teach(threshold=0.5, temperature=5.0, rng=3).info == teach(threshold=0.5, temperature=5.0, rng=3).info
    )


def test_teacher_config_is_validated():
    with pytest.raises(ConfigError, match="value_threshold"):
        StreamTeacherConfig(value_threshold=1.5)
    with pytest.raises(ConfigError, match="max_lines"):
        StreamTeacherConfig(max_lines=0)


def test_parse_trace_rebuilds_the_teachers_tree_and_answer():
    result = teach(threshold=0.5)
    tree, report = parse_trace(TASK, TASK.problem(10), result.info["trace"])
    assert report == {"lines": 13, "bad_lines": 0, "answer_node": report["answer_node"], "expanded": 7}
    assert [s.text for s in tree.path_to(report["answer_node"])] == ["*3", "*3", "+1"]


def test_parse_trace_counts_bad_lines_and_orphans_and_reuses_repeated_lines():
    text = "1: +1\n1: +1\nnonsense\n3: +1\n2: /2\n2: *3"
    tree, report = parse_trace(TASK, TASK.problem(10), text)
    # "nonsense" is malformed, "3: +1" has no parent at depth 2, "/2" is not a step of the task.
    assert report["lines"] == 6 and report["bad_lines"] == 3
    assert len(tree.children[0]) == 1 and "repeated" in tree.flags[1]
    assert [s.text for s in tree.path_to(report["answer_node"])] == ["+1", "*3"]
    _, report = parse_trace(TASK, TASK.problem(10), "1: +1\n1: oops")
    assert report["answer_node"] is None  # the last line is the answer, and it is bad


def student(text):
    policy = MockPolicy(generations={stream_prompt(TASK, TASK.problem(10)): [text]})
    return stream(TASK.problem(10), TASK, policy, None, None, StreamConfig(max_new_tokens=100), 0)


def test_student_answers_with_its_last_line_in_one_model_call():
    result = student("1: +1\n2: +1\n1: *3\n2: *3\n3: +1")
    assert result.solved is True and [s.text for s in result.steps] == ["*3", "*3", "+1"]
    assert result.cost.model_calls == 1 and result.cost.tokens_generated == 10  # mock: words
    assert result.cost.expansions == 4  # root, "+1", "*3", ("*3", "*3") got children
    assert result.info["end"] == "answered" and result.info["lines"] == 5


def test_student_must_stop_on_the_solution_itself():
    result = student("1: *3\n2: *3\n3: +1\n3: *3")
    assert result.solved is False and result.info["end"] == "answered"
    result = student("1: *3\n2: *3\n3: +1\n1: zz")
    assert result.solved is False and result.info["end"] == "bad_last_line"


def test_student_out_of_tokens_is_unsolved():
    policy = MockPolicy(generations={stream_prompt(TASK, TASK.problem(10)): ["1: *3 2: *3 3: +1"]})
    result = stream(TASK.problem(10), TASK, policy, config=StreamConfig(max_new_tokens=2))
    assert result.info["end"] == "unfinished" and result.solved is False


def test_stream_searches_are_registered_and_read_game24_traces():
    task = get_task("game24")
    problem = task.parse_problem("4 9 10 13")
    text = "1: 13 - 9 = 4 (left: 4 4 10)\n2: 10 - 4 = 6 (left: 4 6)\n3: 6 * 4 = 24 (left: 24)"
    policy = MockPolicy(generations={stream_prompt(task, problem): [text]})
    result = run_search("sos", problem, task, policy, None, Budget(), 0, max_new_tokens=300)
    assert result.solved is True and result.method == "stream"
    assert stream_prompt(task, problem) == "game24: 4 9 10 13\nsearch:\n"
