"""Stream of Search: the teacher's golden traces, reading a trace back, the greedy student."""

from __future__ import annotations

import math

import pytest
from toy_search_task import TOY_VALUES, ToyTask

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
VALUES = TOY_VALUES
# Equal priors in prior order: "+1" first at every state. Every step line enters its state;
# "back to: X" returns to the state the line X made.
DEPTH_FIRST = [
    "+1",
    "+1",
    "+1",
    "back to: +1",
    "*3",
    "back to: +1",
    "back to: +1",
    "*3",
    "+1",
    "back to: *3",
    "*3",
    "back to: *3",
    "back to: +1",
    "back to: start",
    "*3",
    "+1",
    "+1",
    "back to: +1",
    "*3",
    "back to: +1",
    "back to: *3",
]


def teach(threshold=0.55, temperature=0.0, scores=None, max_lines=32, budget=50, rng=0, explore=0.0):
    config = StreamTeacherConfig(
        temperature=temperature, value_threshold=threshold, max_lines=max_lines, explore=explore
    )
    policy = MockPolicy(scores=scores)
    return stream_teacher(
        TASK.problem(10), TASK, policy, MockScorer(VALUES), Budget(max_expansions=budget), config, rng
    )


def test_teacher_writes_every_child_and_enters_only_those_above_the_threshold():
    result = teach(threshold=0.55)
    # ("*3", "*3") is valued 0.5: written as a dead end, never entered, so 10 is missed.
    assert result.info["trace"].split("\n") == [*DEPTH_FIRST, "*3", "back to: *3", "back to: start"]
    assert result.info["end"] == "exhausted" and result.solved is False
    assert "pruned" in result.tree.flags[result.tree.children[2][1]]


def test_teacher_stops_at_the_first_verified_answer():
    result = teach(threshold=0.5)
    assert result.info["trace"].split("\n") == [*DEPTH_FIRST, "*3", "+1"]
    assert result.info["end"] == "solved" and result.solved is True
    assert [s.text for s in result.steps] == ["*3", "*3", "+1"]
    assert result.info["steps"] == 13 and result.info["lines"] == 23


def test_teacher_orders_children_by_the_prior():
    scores = {"*3": math.log(0.75), "+1": math.log(0.25)}
    result = teach(threshold=0.5, scores=scores)
    assert result.info["trace"] == "*3\n*3\n*3\nback to: *3\n+1"
    assert result.cost.expansions == 3 and result.cost.model_calls > 0


def test_teacher_ordered_by_value_ignores_the_prior_and_writes_the_verified_answer_first():
    scores = {"*3": math.log(0.75), "+1": math.log(0.25)}  # the prior prefers "*3" everywhere
    config = StreamTeacherConfig(temperature=0.0, value_threshold=0.5, max_lines=32, order="value")
    result = stream_teacher(
        TASK.problem(10),
        TASK,
        MockPolicy(scores=scores),
        MockScorer(VALUES),
        Budget(max_expansions=50),
        config,
        0,
    )
    # Values prefer "+1" at the root (0.9 > 0.6) and below it; below "*3" they prefer "+1"
    # (0.9 > 0.5), and from 9 the verified "+1" (10) comes before the wrong "*3" (27).
    assert result.info["trace"].split("\n") == [*DEPTH_FIRST, "*3", "+1"]
    assert result.solved is True
    with pytest.raises(ConfigError, match="order must be"):
        StreamTeacherConfig(order="visits")


def test_teacher_max_lines_and_budget_stop_unsolved():
    result = teach(threshold=0.5, max_lines=3)
    assert result.info["trace"] == "+1\n+1\n+1\nback to: +1"
    assert result.info["steps"] == 3 and result.info["end"] == "max_lines" and not result.solved
    result = teach(threshold=0.5, budget=2)
    assert result.info["end"] == "budget" and not result.solved and result.cost.expansions == 2


def test_teacher_gumbel_order_is_reproducible_from_the_seed_and_varies_with_it():
    traces = {teach(threshold=0.5, temperature=5.0, rng=seed).info["trace"] for seed in range(12)}
    assert len(traces) > 1
    assert (
        teach(threshold=0.5, temperature=5.0, rng=3).info == teach(threshold=0.5, temperature=5.0, rng=3).info
    )


def test_explore_enters_children_judged_dead_some_of_the_time():
    # threshold 0.95 judges every child dead; explore = 1 enters them all anyway.
    assert teach(threshold=0.95).info["trace"] == "+1\nback to: start\n*3\nback to: start"
    assert teach(threshold=0.95, explore=1.0).info["trace"] == teach(threshold=0.5).info["trace"]
    some = {teach(threshold=0.95, explore=0.5, rng=seed).info["lines"] for seed in range(10)}
    assert len(some) > 1


def test_teacher_config_is_validated():
    with pytest.raises(ConfigError, match="value_threshold"):
        StreamTeacherConfig(value_threshold=1.5)
    with pytest.raises(ConfigError, match="max_lines"):
        StreamTeacherConfig(max_lines=0)
    with pytest.raises(ConfigError, match="explore"):
        StreamTeacherConfig(explore=-0.1)


def test_parse_trace_rebuilds_the_teachers_tree_and_answer():
    result = teach(threshold=0.5)
    tree, report = parse_trace(TASK, TASK.problem(10), result.info["trace"])
    assert report == {"lines": 23, "bad_lines": 0, "answer_node": report["answer_node"], "expanded": 7}
    assert [s.text for s in tree.path_to(report["answer_node"])] == ["*3", "*3", "+1"]


def test_parse_trace_counts_bad_lines_and_reuses_repeated_lines():
    text = "+1\nback to: start\n+1\nnonsense\nback to: +1\nback to: start\n*3\n/2"
    tree, report = parse_trace(TASK, TASK.problem(10), text)
    # "nonsense" is malformed; "back to: +1" returns to the problem, which is "start" (it
    # still returns); the next "back" cannot leave the problem; "/2" is not a step of the task.
    assert report["lines"] == 8 and report["bad_lines"] == 4
    assert [tree.step[c].text for c in tree.children[0]] == ["+1", "*3"]
    assert "repeated" in tree.flags[1] and tree.visits[1] == 2
    assert report["answer_node"] is None  # the last line is the answer, and it is bad
    _, report = parse_trace(TASK, TASK.problem(10), "+1\n*3")
    assert report["answer_node"] is not None and report["bad_lines"] == 0


def student(text):
    policy = MockPolicy(generations={stream_prompt(TASK, TASK.problem(10)): [text]})
    return stream(TASK.problem(10), TASK, policy, None, None, StreamConfig(max_new_tokens=100), 0)


def test_student_answers_with_its_last_line_in_one_model_call():
    result = student("+1\nback to: start\n*3\n*3\n*3\nback to: *3\n+1")
    assert result.solved is True and [s.text for s in result.steps] == ["*3", "*3", "+1"]
    assert result.cost.model_calls == 1 and result.cost.tokens_generated == 11  # mock: words
    assert result.cost.expansions == 3  # the root, "*3" and ("*3", "*3") got children
    assert result.info["end"] == "answered" and result.info["lines"] == 7


def test_student_must_stop_on_the_solution_itself():
    result = student("*3\n*3\n+1\nback to: *3")
    assert result.solved is False and result.info["end"] == "no_answer"
    result = student("*3\n*3\n+1\n*3")  # no step after the end
    assert result.solved is False and result.info["end"] == "no_answer"
    result = student("*3\n*3\n*3")
    assert result.solved is False and result.info["end"] == "answered"


def test_student_out_of_tokens_is_unsolved():
    policy = MockPolicy(generations={stream_prompt(TASK, TASK.problem(10)): ["*3 *3 +1"]})
    result = stream(TASK.problem(10), TASK, policy, config=StreamConfig(max_new_tokens=2))
    assert result.info["end"] == "unfinished" and result.solved is False


def test_stream_searches_are_registered_and_read_game24_traces():
    task = get_task("game24")
    problem = task.parse_problem("4 9 10 13")
    text = "13 - 9 = 4 (left: 4 4 10)\nback to: start\n13 - 9 = 4 (left: 4 4 10)\n10 - 4 = 6 (left: 4 6)\n6 * 4 = 24 (left: 24)"
    policy = MockPolicy(generations={stream_prompt(task, problem): [text]})
    result = run_search("sos", problem, task, policy, None, Budget(), 0, max_new_tokens=300)
    assert result.solved is True and result.method == "stream"
    assert stream_prompt(task, problem) == "game24: 4 9 10 13\nsearch:\n"


def test_legal_lines_mode_writes_the_models_favourite_legal_line_and_never_repeats_one():
    prefer = {"*3": -0.1, "+1": -1.0}

    def run(generations):
        policy = MockPolicy(scores=lambda _p, c: prefer.get(c.strip(), -5.0), generations=generations)
        return stream(TASK.problem(10), TASK, policy, config=StreamConfig(lines="legal", max_new_tokens=100))

    # The mock's greedy next token is <eos> everywhere: it answers at the first final state.
    result = run(None)
    assert result.info["trace"] == "*3\n*3\n*3" and result.info["end"] == "answered" and not result.solved
    # Here it goes on after a wrong final state: "back" is then the only legal line, and the
    # step it already tried from ("*3", "*3") is not offered again.
    result = run(lambda prompt: ["" if prompt.endswith("+1\n") else "more"])
    assert result.info["trace"] == "*3\n*3\n*3\nback to: *3\n+1"
    assert result.solved is True and result.info["bad_lines"] == 0
    assert result.cost.model_calls == 7  # 5 lines scored, 2 next-token checks at final states


def test_back_by_mass_goes_back_only_when_back_outweighs_all_step_lines_together():
    # back (-1.0) beats each step line (-1.4, -1.5) but not both together (log(e^-1.4 + e^-1.5)).
    prefer = {"*3": -1.4, "+1": -1.5}

    def run(back):
        policy = MockPolicy(scores=lambda _p, c: prefer.get(c.strip(), -1.0))
        config = StreamConfig(lines="legal", back=back, max_new_tokens=100)
        return stream(TASK.problem(10), TASK, policy, config=config)

    assert run("line").info["trace"].startswith("*3\nback to: start\n+1\nback to: start")
    assert run("mass").info["trace"] == "*3\n*3\n*3"  # the mock answers at the first final state
    prefer.update({"*3": -2.0, "+1": -2.1})  # now back outweighs both together
    assert run("mass").info["trace"].startswith("*3\nback to: start")
    with pytest.raises(ConfigError, match="back must be"):
        StreamConfig(lines="legal", back="sum")


def test_legal_lines_mode_stops_unfinished_at_the_token_limit_and_needs_enumerable_steps():
    policy = MockPolicy(generations=lambda prompt: ["more"])
    result = stream(TASK.problem(10), TASK, policy, config=StreamConfig(lines="legal", max_new_tokens=3))
    assert result.info["end"] == "unfinished" and result.solved is False
    with pytest.raises(ConfigError, match="enumerates"):
        stream(TASK.problem(10), ToyTask(enumerable=False), policy, config=StreamConfig(lines="legal"))
    with pytest.raises(ConfigError, match="lines"):
        StreamConfig(lines="beam")


def test_sampled_legal_lines_draw_each_line_by_the_models_probability_reproducibly():
    prefer = {"*3": -0.1, "+1": -1.0}
    policy = MockPolicy(scores=lambda _p, c: prefer.get(c.strip(), -5.0))

    def first_line(seed, temperature):
        config = StreamConfig(lines="legal", max_new_tokens=100, temperature=temperature)
        return stream(TASK.problem(10), TASK, policy, config=config, rng=seed).info["trace"].split("\n")[0]

    hot = [first_line(seed, 1.0) for seed in range(300)]
    assert hot == [first_line(seed, 1.0) for seed in range(300)]
    expected = math.exp(-0.1) / (math.exp(-0.1) + math.exp(-1.0))  # 0.71
    assert abs(hot.count("*3") / 300 - expected) < 0.08
    assert [first_line(seed, 0.05) for seed in range(50)] == ["*3"] * 50  # cold: nearly greedy
    with pytest.raises(ConfigError, match="temperature"):
        StreamConfig(temperature=-0.5)


def test_sampled_free_stream_passes_its_temperature_and_a_seed_from_the_rng():
    calls = []

    class Spy(MockPolicy):
        def generate(self, prompts, **kw):
            calls.append((kw["temperature"], kw["seed"]))
            return super().generate(prompts, **kw)

    policy = Spy(generations={stream_prompt(TASK, TASK.problem(10)): ["*3", "+1"]})
    for rng in (3, 3, 4):
        stream(
            TASK.problem(10), TASK, policy, config=StreamConfig(temperature=0.8, max_new_tokens=9), rng=rng
        )
    stream(TASK.problem(10), TASK, policy, config=StreamConfig(max_new_tokens=9), rng=3)
    assert [t for t, _ in calls] == [0.8, 0.8, 0.8, 0.0]
    assert calls[0][1] == calls[1][1] != calls[2][1] and calls[3][1] is None
