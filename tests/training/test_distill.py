"""Distilling the search into the model's output: examples, held-out guard, end to end."""

from __future__ import annotations

import gzip
import json

import pytest

from qstar.cli.main import main
from qstar.errors import ConfigError
from qstar.policy.tinygpt.checkpoint import load_checkpoint, save_checkpoint
from qstar.policy.tinygpt.model import GPT, GPTConfig
from qstar.policy.tinygpt.policy import TinyGPTPolicy
from qstar.policy.tinygpt.tokenizer import Tokenizer
from qstar.search.stream import STREAM_HEADER, parse_trace, stream, stream_prompt
from qstar.tasks.registry import get_task
from qstar.training.distill import (
    TRACES_FILE,
    DistillConfig,
    collect_traces,
    distill,
    evaluate_student,
    judge_examples,
    load_records,
    trace_examples,
)

# A random 1-layer model solves these within 16 lines when every child is entered.
TINY = dict(
    traces_per_problem=2, value_threshold=0.0, max_lines=16, teacher_temperature=1.0, steps=2, batch_size=4
)


def test_config_is_validated():
    with pytest.raises(ConfigError, match="traces_per_problem"):
        DistillConfig(traces_per_problem=0)
    with pytest.raises(ConfigError, match="format"):
        DistillConfig(format="sos")
    with pytest.raises(ConfigError, match="finish_budget"):
        DistillConfig(format="scan", finish_budget=0)
    with pytest.raises(ConfigError, match="value_threshold"):
        DistillConfig(value_threshold=2.0)
    with pytest.raises(ConfigError, match="judge_weight must be >= 0"):
        DistillConfig(judge_weight=-1.0)
    with pytest.raises(ConfigError, match="judge_weight needs format 'stream'"):
        DistillConfig(format="scan", judge_weight=1.0)
    with pytest.raises(ConfigError, match="teacher must be 'search' or 'self'"):
        DistillConfig(teacher="student")
    with pytest.raises(ConfigError, match="needs format 'stream'"):
        DistillConfig(teacher="self", format="scan")
    with pytest.raises(ConfigError, match="same trace every time"):
        DistillConfig(teacher="self", teacher_temperature=0.0, traces_per_problem=2)
    with pytest.raises(ConfigError, match="explore must be in"):
        DistillConfig(explore=1.5)
    with pytest.raises(ConfigError, match="grow_layers must be an integer >= 0"):
        DistillConfig(grow_layers=-1)


def test_every_teacher_knob_reaches_the_teacher_search():
    config = DistillConfig(
        teacher_temperature=0.7, value_threshold=0.4, explore=0.25, max_lines=9, teacher_order="value"
    )
    teacher = config.teacher_config()
    knobs = (teacher.temperature, teacher.value_threshold, teacher.explore, teacher.max_lines, teacher.order)
    assert knobs == (0.7, 0.4, 0.25, 9, "value")
    assert (DistillConfig().teacher_config().explore, DistillConfig().teacher_config().order) == (
        0.0,
        "prior",
    )
    with pytest.raises(ConfigError, match="teacher_order must be"):
        DistillConfig(teacher_order="visits")


def test_judge_examples_ask_for_back_after_each_valued_state_written_as_a_trace():
    record = {
        "prompt": "game24: 1 2 3 4\n" + STREAM_HEADER,
        "values": [
            ("game24: 1 2 3 4\n4 * 3 = 12 (left: 1 2 12)\n", 0.75),
            ("game24: 1 2 3 4\n4 * 3 = 12 (left: 1 2 12)\n12 * 2 = 24 (left: 1 24)\n", 1.2),
        ],
    }
    got = [(e.prompt, e.text, e.target) for e in judge_examples([record])]
    assert got == [
        ("game24: 1 2 3 4\nsearch:\n4 * 3 = 12 (left: 1 2 12)\n", "back to:", 0.25),
        ("game24: 1 2 3 4\nsearch:\n4 * 3 = 12 (left: 1 2 12)\n12 * 2 = 24 (left: 1 24)\n", "back to:", 0.0),
    ]
    record["values"] = [("game24: 9 9 9 9\n", 0.5)]
    with pytest.raises(ConfigError, match="does not start with its problem"):
        judge_examples([record])


def test_examples_keep_distinct_solved_traces_with_eos_and_the_extras():
    record = {
        "prompt": "game24: 1 2 3 4\n" + STREAM_HEADER,
        "traces": [
            {"trace": "a", "solved": True, "lines": 1},
            {"trace": "a", "solved": True, "lines": 1},
            {"trace": "b", "solved": False, "lines": 1},
        ],
        "plain": [("game24: 1 2 3 4\n", "4 * 3 = 12 (left: 1 2 12)")],
        "values": [("game24: 1 2 3 4\n", 0.7)],
    }
    lm, values, sizes = trace_examples([record], DistillConfig())
    assert [(e.completion, e.eos) for e in lm] == [("a\n", True), ("4 * 3 = 12 (left: 1 2 12)\n", False)]
    assert [(v.prompt, v.target) for v in values] == [("game24: 1 2 3 4\n", 0.7)]
    assert sizes == {
        "problems": 1,
        "problems_solved": 1,
        "traces": 3,
        "traces_solved": 2,
        "lm_examples": 2,
        "value_examples": 1,
    }
    lm, values, _ = trace_examples([record], DistillConfig(keep_plain=False, keep_values=False))
    assert len(lm) == 1 and values == []


def test_a_lookahead_judge_values_the_teachers_states_from_their_children(tiny_checkpoint):
    task = get_task("game24")
    problems = [task.problems("train")[i] for i in (0, 2)]
    config = DistillConfig(**{**TINY, "teacher_judge": "lookahead", "value_threshold": 0.0})
    records = collect_traces(task, problems, tiny_checkpoint, config)
    # Two numbers left: every child is final, so the value is 0.9 x the verifier's best verdict;
    # a value head (the default judge) gives neither exactly.
    two_left = [v for r in records for text, v in r["values"] if text.count("\n") == 3]
    assert two_left and set(two_left) <= {0.0, 0.9}
    plain = collect_traces(task, problems, tiny_checkpoint, DistillConfig(**{**TINY, "value_threshold": 0.0}))
    assert not {v for r in plain for text, v in r["values"] if text.count("\n") == 3} <= {0.0, 0.9}
    with pytest.raises(ConfigError, match="teacher_judge must be"):
        DistillConfig(teacher_judge="oracle")


def test_held_out_problems_are_refused(tiny_checkpoint):
    task = get_task("game24")
    with pytest.raises(AssertionError, match="held-out"):
        collect_traces(task, task.problems("test")[:1], tiny_checkpoint, DistillConfig(**TINY))


def distill_three(checkpoint, out, config=None, **kwargs):
    """``distill`` on three train puzzles with the TINY settings (or ``config``), quietly."""
    problems = [get_task("game24").problems("train")[i] for i in (0, 2, 11)]
    config = config or DistillConfig(**TINY)
    return distill(
        checkpoint, out, config, problems=problems, progress=False, log=lambda _: None, **kwargs
    ), problems


def cli_args(checkpoint, out, num_problems):
    """``qstar train distill`` from ``checkpoint`` to ``out`` on the first train puzzles."""
    return [
        "train",
        "distill",
        "--init",
        str(checkpoint),
        "--out",
        str(out),
        "--num-problems",
        str(num_problems),
    ]


def test_distill_end_to_end_saves_a_longer_context_student(tiny_checkpoint, tmp_path):
    task = get_task("game24")
    card, problems = distill_three(tiny_checkpoint, tmp_path / "student")
    assert card["data"]["problems"] == 3 and card["data"]["traces_solved"] >= 1
    assert card["teacher_cost"]["expansions"] > 0 and card["cpu_seconds"] > 0
    ckpt = load_checkpoint(tmp_path / "student")
    assert ckpt.model.config.block_size == 768 and ckpt.meta["trainer"] == "distill"
    with gzip.open(tmp_path / "student" / TRACES_FILE, "rt") as f:
        saved = [json.loads(line) for line in f]
    assert [r["text"] for r in saved] == [p.text for p in problems] and len(saved[0]["traces"]) == 2
    result = stream(problems[0], task, TinyGPTPolicy.load(tmp_path / "student"))
    assert result.cost.model_calls == 1 and result.info["end"] in ("answered", "unfinished", "no_answer")
    report = evaluate_student(tmp_path / "student", problems[:1], modes=("stream", "qstar"))
    assert set(report) == {"stream", "qstar"} and report["qstar"]["n"] == 1
    with pytest.raises(ConfigError, match="unknown mode"):
        evaluate_student(tmp_path / "student", problems[:1], modes=("nope",))


def test_distill_reuses_saved_traces_and_trains_the_judgement(tiny_checkpoint, tmp_path, capsys):
    task = get_task("game24")
    first, _ = distill_three(tiny_checkpoint, tmp_path / "a")
    records = load_records(tmp_path / "a", task)
    config = DistillConfig(**{**TINY, "judge_weight": 1.0})
    second, _ = distill_three(tiny_checkpoint, tmp_path / "b", config, records=records)
    assert second["data"]["traces_solved"] == first["data"]["traces_solved"]
    assert second["data"]["judge_examples"] == first["data"]["value_examples"] > 0
    assert "token_loss" in second["train_metrics"] and "token_loss" not in first["train_metrics"]
    assert (tmp_path / "b" / TRACES_FILE).read_bytes() == (tmp_path / "a" / TRACES_FILE).read_bytes()
    with pytest.raises(ConfigError, match="not written in the 'scan' format"):
        distill_three(tiny_checkpoint, tmp_path / "c", DistillConfig(format="scan"), records=records)
    args = cli_args(tiny_checkpoint, tmp_path / "c", 3)
    args += [
        "--reuse-traces",
        str(tmp_path / "a"),
        "--judge-weight",
        "0.5",
        "--steps",
        "2",
        "--batch-size",
        "4",
    ]
    assert main([*args, "--eval-problems", "0", "--quiet"]) == 0
    summary = json.loads((tmp_path / "c" / "distill_summary.json").read_text())
    assert summary["distill"]["data"]["judge_examples"] > 0
    assert summary["distill"]["distill_config"]["judge_weight"] == 0.5
    grow = ["--reuse-traces", str(tmp_path / "a"), "--steps", "1", "--batch-size", "2", "--grow-layers", "1"]
    assert (
        main([*cli_args(tiny_checkpoint, tmp_path / "d", 3), *grow, "--eval-problems", "0", "--quiet"]) == 0
    )
    grown, teacher = load_checkpoint(tmp_path / "d"), load_checkpoint(tiny_checkpoint)
    assert grown.model.config.n_layer == teacher.model.config.n_layer + 1
    capsys.readouterr()
    assert main([*args[:-4], "--reuse-traces", str(tmp_path / "none")]) != 0
    assert "no teacher traces at" in capsys.readouterr().err
    with gzip.open(tmp_path / "a" / TRACES_FILE, "rt") as f:
        saved = [json.loads(line) for line in f]
    saved[0]["text"] = task.problems("test")[0].text
    (tmp_path / "held").mkdir()
    with gzip.open(tmp_path / "held" / TRACES_FILE, "wt") as f:
        f.write("".join(json.dumps(r) + "\n" for r in saved))
    with pytest.raises(AssertionError, match="held-out"):
        load_records(tmp_path / "held", task)


def test_self_teacher_samples_its_own_legal_streams_and_mixes_in_earlier_traces(tiny_checkpoint, tmp_path):
    task = get_task("game24")
    first, problems = distill_three(tiny_checkpoint, tmp_path / "a")
    config = DistillConfig(**{**TINY, "teacher": "self"})
    records = collect_traces(task, problems, tiny_checkpoint, config)
    again = collect_traces(task, problems, tiny_checkpoint, config)
    assert [r["traces"] for r in records] == [r["traces"] for r in again]
    assert [r["prompt"] for r in records] == [stream_prompt(task, p) for p in problems]
    for record, problem in zip(records, problems, strict=True):
        assert len(record["traces"]) == 2 and record["cost"]["model_calls"] > 2
        for trace in record["traces"]:  # one legal line at a time: nothing to misread
            assert parse_trace(task, problem, trace["trace"])[1]["bad_lines"] == 0
    assert any(r["traces"][0]["trace"] != r["traces"][1]["trace"] for r in records)  # sampled
    earlier = load_records(tmp_path / "a", task)
    card, _ = distill_three(tiny_checkpoint, tmp_path / "b", config, mixed=earlier)
    assert card["distill_config"]["teacher"] == "self" and card["data"]["traces"] == 6
    assert card["data"]["mixed"]["traces_solved"] == first["data"]["traces_solved"]
    assert card["data"]["mixed"]["value_examples"] == first["data"]["value_examples"]
    with pytest.raises(ConfigError, match="not written in the 'scan' format"):
        distill_three(tiny_checkpoint, tmp_path / "c", DistillConfig(format="scan"), mixed=earlier)
    args = cli_args(tiny_checkpoint, tmp_path / "d", 2)
    args += ["--teacher", "self", "--mix-traces", str(tmp_path / "a"), "--mix-traces", str(tmp_path / "b")]
    assert main([*args, "--steps", "2", "--batch-size", "4", "--eval-problems", "0", "--quiet"]) == 0
    summary = json.loads((tmp_path / "d" / "distill_summary.json").read_text())
    assert summary["distill"]["data"]["mixed"]["problems"] == 6


def test_scan_format_writes_one_scan_per_problem_and_evaluates_the_scan_student(
    tiny_checkpoint, tmp_path, capsys
):
    task = get_task("game24")
    problems = [task.problems("train")[i] for i in (0, 2, 11)]
    # A random value head's verdicts are arbitrary; 30 picks fully searched solve any puzzle.
    config = DistillConfig(
        format="scan", max_picks=30, finish_budget=19, steps=2, batch_size=4, block_size=1024
    )
    card = distill(
        tiny_checkpoint, tmp_path / "s", config, problems=problems, progress=False, log=lambda _: None
    )
    assert card["data"]["traces"] == 3 and card["data"]["traces_solved"] == 3
    with gzip.open(tmp_path / "s" / TRACES_FILE, "rt") as f:
        saved = [json.loads(line) for line in f]
    assert saved[0]["prompt"].endswith("\nscan:\n") and " ~" in saved[0]["traces"][0]["trace"]
    report = evaluate_student(tmp_path / "s", problems[:1])  # the scan student's modes by default
    assert set(report) == {"scan", "greedy", "qstar"} and report["scan"]["n"] == 1
    assert main(["demo", "-n", "1", "--model", str(tmp_path / "s"), "--budget", "3"]) == 0
    out = capsys.readouterr().out
    assert "judging every first step in writing" in out and "writing its own search" in out


def test_teacher_that_solves_nothing_is_a_clear_error(tiny_checkpoint, tmp_path):
    task = get_task("game24")
    config = DistillConfig(**{**TINY, "max_lines": 1})
    with pytest.raises(ConfigError, match="solved no problem"):
        distill(
            tiny_checkpoint,
            tmp_path / "s",
            config,
            problems=task.problems("train")[:1],
            progress=False,
            log=print,
        )


def test_cli_train_distill_end_to_end(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "student"
    args = cli_args(tiny_checkpoint, out, 3)
    args += [
        "--traces-per-problem",
        "2",
        "--value-threshold",
        "0",
        "--max-lines",
        "16",
        "--teacher-temperature",
        "1",
    ]
    args += ["--steps", "2", "--batch-size", "4", "--eval-problems", "2", "--precision", "bf16", "--quiet"]
    code = main(args)
    out_text, err_text = capsys.readouterr()
    assert code == 0, err_text
    assert "val stream" in out_text and "saved" in out_text
    summary = json.loads((out / "distill_summary.json").read_text())
    assert summary["distill"]["distill_config"]["precision"] == "bf16"
    assert set(summary["eval"]["val"]) == {"stream", "stream_legal", "greedy", "qstar"}
    assert summary["distill"]["command"].startswith("qstar ")
    code = main(["train", "distill", "--init", str(tmp_path / "none"), "--out", str(out)])
    assert code != 0 and "no checkpoint there" in capsys.readouterr().err


def test_evaluate_student_reads_a_rotary_model_at_a_longer_block_and_refuses_learned_positions(
    tiny_checkpoint, tmp_path
):
    problems = get_task("game24").problems("val")[:1]
    learned = load_checkpoint(tiny_checkpoint).model.config.block_size
    with pytest.raises(ConfigError, match="learned positions trained up to"):
        evaluate_student(tiny_checkpoint, problems, modes=("stream",), block_size=learned + 1)
    with pytest.raises(ConfigError, match="block_size must be an integer"):
        evaluate_student(tiny_checkpoint, problems, modes=("stream",), block_size=0)
    shorter = evaluate_student(tiny_checkpoint, problems, modes=("stream",), block_size=96)
    assert shorter["stream"]["tokens_per_problem"] <= 96
    tokenizer = Tokenizer()
    rope = GPT(
        GPTConfig(
            vocab_size=tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=32, block_size=64, position="rope"
        )
    )
    save_checkpoint(tmp_path / "rope", rope, tokenizer)
    at_64 = evaluate_student(tmp_path / "rope", problems, modes=("stream",))
    at_512 = evaluate_student(tmp_path / "rope", problems, modes=("stream",), block_size=512)
    # A random model writes until the block is full: the longer block lets it write more.
    assert at_64["stream"]["tokens_per_problem"] < at_512["stream"]["tokens_per_problem"]
