"""The expert-iteration loop: a tiny end-to-end run, kill-and-resume equivalence, the held-out
guard, problem generation, and the batched System-1 evaluation."""

from __future__ import annotations

import json
import random

import pytest
import torch

from qstar.errors import ConfigError
from qstar.policy.mock import MockPolicy
from qstar.policy.tinygpt.checkpoint import load_checkpoint
from qstar.search.sampling import greedy
from qstar.tasks.registry import get_task
from qstar.training import workers as workers_module
from qstar.training.expert_iteration import LoopConfig, run_loop
from qstar.training.loop_data import (
    Replay,
    check_not_held_out,
    generate_problems,
    held_out_headers,
    held_out_texts,
    round_problems,
)
from qstar.training.workers import Job, system1_job

TINY = dict(
    rounds=2,
    problems_per_round=4,
    search_budget=16,
    n_layer=1,
    n_head=2,
    n_embd=32,
    block_size=128,
    train_steps=3,
    batch_size=8,
    num_eval_problems=3,
    eval_budget=4,
    num_saved_trees=1,
)
TIMING = ("seconds", "minutes")


def numbers(history: list[dict]) -> list[dict]:
    """Metrics without the clock readings, which differ between any two runs."""
    return [{k: v for k, v in h.items() if not any(t in k for t in TIMING)} for h in history]


def weights(run_dir, r: int) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / f"round-{r:04d}").model.state_dict()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("loop") / "run"
    history = run_loop(LoopConfig(**TINY), run_dir)
    return run_dir, history


def test_config_is_validated_at_construction():
    with pytest.raises(ConfigError, match="rounds"):
        LoopConfig(rounds=0)
    with pytest.raises(ConfigError, match="problem_source"):
        LoopConfig(problem_source="oracle")
    with pytest.raises(ConfigError, match="policy_target"):
        LoopConfig(policy_target="oracle")
    with pytest.raises(ConfigError, match="no knob"):
        LoopConfig(search_knobs={"beam_width": 3})
    with pytest.raises(ConfigError, match="unknown task"):
        LoopConfig(task="chess")
    with pytest.raises(ConfigError, match="position"):
        LoopConfig(position="alibi")
    assert LoopConfig.from_json(LoopConfig(**TINY).to_json()) == LoopConfig(**TINY)


def test_two_round_run_writes_the_run_directory(uninterrupted):
    run_dir, history = uninterrupted
    assert json.loads((run_dir / "config.json").read_text())["problem_source"] == "train"
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert lines == history and [h["round"] for h in lines] == [1, 2]
    for key in ("problems_searched", "search_solve_rate", "lm_loss", "value_loss", "system1_val_acc",
                "system1_legal_val_acc", "system2_val_acc", "train_cpu_minutes", "tokens_total",
                "problem_source"):  # fmt: skip
        assert key in lines[-1], key
    assert lines[0]["problems_searched"] == 4
    assert (run_dir / "state" / "LATEST").read_text().strip() == "2"
    assert len(list((run_dir / "trees" / "round-0001").glob("*.json"))) == 1
    assert not any(p.suffix == ".tmp" for p in run_dir.rglob("*"))


@pytest.mark.parametrize("kill_at", [("collected", 2), ("updated", 1), ("round", 1)])
def test_resume_after_a_kill_reproduces_the_uninterrupted_run(uninterrupted, tmp_path, kill_at):
    run_dir, expected = uninterrupted

    def kill(kind, data):
        if (kind, data["round"]) == kill_at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_loop(LoopConfig(**TINY), tmp_path / "run", on_event=kill)
    history = run_loop(LoopConfig(**TINY), tmp_path / "run", resume=True)
    assert numbers(history) == numbers(expected)
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert numbers(lines) == numbers(expected)
    for name, tensor in weights(run_dir, 2).items():
        assert torch.equal(tensor, weights(tmp_path / "run", 2)[name]), name


def test_a_rotary_position_model_trains_and_continues_only_as_one(uninterrupted, tmp_path):
    rope = {**TINY, "rounds": 1, "position": "rope"}
    run_loop(LoopConfig(**rope), tmp_path / "rope")
    ckpt = load_checkpoint(tmp_path / "rope" / "checkpoints" / "round-0001")
    assert ckpt.model.config.position == "rope" and ckpt.model.wpe is None
    learned = str(uninterrupted[0] / "checkpoints" / "round-0001")
    with pytest.raises(ConfigError, match="position"):
        run_loop(LoopConfig(**{**rope, "init": learned}), tmp_path / "mixed")


def test_resume_refuses_other_settings(uninterrupted):
    run_dir, _ = uninterrupted
    with pytest.raises(ConfigError, match="search_budget"):
        run_loop(LoopConfig(**{**TINY, "search_budget": 9}), run_dir, resume=True)
    with pytest.raises(ConfigError, match="precision"):
        run_loop(LoopConfig(**{**TINY, "precision": "bf16"}), run_dir, resume=True)


def test_a_run_saved_before_a_newer_field_resumes_with_its_default(uninterrupted, tmp_path):
    import shutil

    run_dir = tmp_path / "old"
    shutil.copytree(uninterrupted[0], run_dir)
    saved = json.loads((run_dir / "config.json").read_text())
    del saved["precision"]  # as written before the field existed
    (run_dir / "config.json").write_text(json.dumps(saved))
    history = run_loop(LoopConfig(**TINY), run_dir, resume=True)
    assert numbers(history) == numbers(uninterrupted[1])


def test_a_pool_of_workers_gives_the_same_numbers(uninterrupted, tmp_path):
    _, expected = uninterrupted
    history = run_loop(LoopConfig(**{**TINY, "workers": 2}), tmp_path / "run")
    assert numbers(history) == numbers(expected)


def test_held_out_problems_are_refused():
    task = get_task("game24")
    held_out = held_out_texts(task)
    test_problem = task.problems("test")[0]
    with pytest.raises(AssertionError, match="held-out"):
        check_not_held_out([task.problems("train")[0], test_problem], held_out)
    replay = Replay()
    prompt = task.render(task.initial_state(test_problem))
    with pytest.raises(AssertionError, match="held-out"):
        replay.merge([{"values": [(prompt, 1.0)]}], union=True, held_out_headers=held_out_headers(task))


def test_the_loop_stops_before_searching_a_test_problem(tmp_path, monkeypatch):
    task = get_task("game24")
    real = task.problems
    monkeypatch.setattr(task, "problems", lambda split: real("test") if split == "train" else real(split))
    with pytest.raises(AssertionError, match="held-out"):
        run_loop(LoopConfig(**TINY), tmp_path / "run")
    assert not (tmp_path / "run" / "collected").exists()


def test_generated_problems_follow_the_rules_and_avoid_held_out_sets():
    task = get_task("game24")
    held_out = held_out_texts(task)
    problems = generate_problems(task, 300, random.Random(0), held_out, "gen/1")
    assert len(problems) == 300
    assert all(len(p.data["numbers"]) == 4 and all(1 <= n <= 13 for n in p.data["numbers"]) for p in problems)
    assert not {p.text for p in problems} & held_out
    countdown = get_task("countdown-4")
    drawn = generate_problems(countdown, 50, random.Random(0), held_out_texts(countdown), "gen/1")
    assert all(p.data["target"] not in p.data["numbers"] for p in drawn)
    mixed = round_problems(
        task, source="train+generated", count=6, seed=0, round_index=1, start=0, held_out=held_out
    )
    assert [p.id.startswith("gen/") for p in mixed] == [False] * 3 + [True] * 3


def test_train_problems_stream_through_shuffled_epochs():
    task = get_task("game24")
    held_out = held_out_texts(task)
    n = len(task.problems("train"))
    first = round_problems(task, source="train", count=n, seed=0, round_index=1, start=0, held_out=held_out)
    assert sorted(p.id for p in first) == sorted(p.id for p in task.problems("train"))
    again = round_problems(task, source="train", count=5, seed=0, round_index=9, start=3, held_out=held_out)
    assert again == first[3:8]


def test_system1_job_is_greedy_decoding_batched(monkeypatch):
    task = get_task("game24")
    right = ["13 - 9 = 4 (left: 4 4 10)", "10 - 4 = 6 (left: 4 6)", "6 * 4 = 24 (left: 24)"]
    script = {"game24: 4 9 10 13\n" + "".join(s + "\n" for s in right[:i]): [right[i]] for i in range(3)}
    script["game24: 1 1 4 6\n"] = ["1 + 1 = 2 (left: 2 4 6)"]
    scores = {s + "\n": 0.0 for s in right}  # the right steps outscore every other legal step (-1)
    policy = MockPolicy(generations=script, default_generation="not a step", scores=scores)
    monkeypatch.setattr(workers_module, "load_policy", lambda path: policy)
    problems = [task.parse_problem("4 9 10 13"), task.parse_problem("1 1 4 6")]
    got = system1_job(Job("game24", Job.pack(problems, [0, 1]), "unused"))
    assert [r["solved"] for r in got] == [True, False]
    assert [bool(greedy(p, task, policy).solved) for p in problems] == [True, False]
    # Restricted to legal steps, 1 1 4 6 takes the first legal step each time: 1+1, 4+2, 6+6.
    assert [r["solved_legal"] for r in got] == [True, False]


def test_cli_trains_and_refuses_new_settings_on_resume(tmp_path, capsys):
    from qstar.cli.main import main

    flags = ["--rounds", "1", "--problems-per-round", "2", "--search-budget", "6", "--n-layer", "1",
             "--n-head", "2", "--n-embd", "32", "--train-steps", "1", "--eval-problems", "2",
             "--eval-budget", "3", "--runs-dir", str(tmp_path), "--name", "r", "--precision", "bf16",
             "--quiet"]  # fmt: skip
    assert main(["train", "loop", *flags]) == 0
    assert "1 rounds" in capsys.readouterr().out
    lines = (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["method"] == "mcts"
    assert json.loads((tmp_path / "r" / "config.json").read_text())["precision"] == "bf16"
    assert main(["train", "loop", "--resume", str(tmp_path / "r"), "--rounds", "3"]) == 2
    assert "drop --rounds" in capsys.readouterr().err
    assert main(["train", "loop", "--resume", str(tmp_path / "r"), "--quiet"]) == 0


def test_replay_keeps_every_verified_step_and_the_latest_value():
    replay = Replay()
    first = {"policy": [("s\n", {"a": 1.0, "b": 0.0, "c": 0.0})], "values": [("s\n", 1.0), ("t\n", 0.0)]}
    second = {"policy": [("s\n", {"a": 0.0, "b": 1.0, "c": 0.0})], "values": [("t\n", 1.0)]}
    replay.merge([first, second], union=True, held_out_headers=frozenset())
    assert replay.policy == {"s\n": {"a": 0.5, "b": 0.5, "c": 0.0}}
    assert replay.values == {"s\n": 1.0, "t\n": 1.0}
    replay.merge([first], union=False, held_out_headers=frozenset())
    assert replay.policy["s\n"] == {"a": 1.0, "b": 0.0, "c": 0.0}
    assert Replay.from_json(replay.to_json()) == replay


def test_mcts_loop_with_lookahead_targets_values_every_child(tmp_path):
    """Search collection with both lookahead targets: MCTS leaves children unvalued, the job
    values them (charged model calls), and every expanded node gets both targets."""
    config = LoopConfig(**{**TINY, "rounds": 1, "policy_target": "lookahead", "value_target": "lookahead"})
    (metrics,) = run_loop(config, tmp_path / "run")
    assert metrics["policy_states"] >= config.problems_per_round  # every root was expanded
    assert metrics["value_examples"] >= metrics["policy_states"]
    tree = json.loads(next((tmp_path / "run").rglob("trees/**/*.json")).read_text())
    nodes = tree["nodes"]
    expanded = {n["id"] for n in nodes if n["expanded"]}
    assert all(n["value"] is not None or n["terminal"] for n in nodes if n["parent"] in expanded)


def test_a_run_can_start_from_a_checkpoint(tiny_checkpoint, tmp_path):
    shape = dict(n_layer=1, n_head=2, n_embd=32, block_size=256)  # the tiny_checkpoint fixture
    config = LoopConfig(**{**TINY, **shape, "rounds": 1, "init": tiny_checkpoint})
    run_loop(config, tmp_path / "run")
    start = weights(tmp_path / "run", 0)
    init = load_checkpoint(tiny_checkpoint).model.state_dict()
    assert all(torch.equal(start[k], init[k]) for k in init)
    with pytest.raises(ConfigError, match="has shape"):
        run_loop(LoopConfig(**{**TINY, "rounds": 1, "init": tiny_checkpoint}), tmp_path / "other")
    with pytest.raises(ConfigError, match="init"):
        LoopConfig(init="")


def test_cli_init_starts_the_run_from_a_checkpoint(tiny_checkpoint, tmp_path, capsys):
    from qstar.cli.main import main

    # The model's shape is read from the checkpoint.
    flags = ["--rounds", "1", "--problems-per-round", "2", "--samples", "2", "--train-steps", "1",
             "--eval-problems", "2", "--eval-budget", "3", "--runs-dir", str(tmp_path), "--quiet"]  # fmt: skip
    assert main(["train", "rft", *flags, "--name", "r", "--init", tiny_checkpoint]) == 0
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["init"] == tiny_checkpoint and (saved["n_layer"], saved["n_embd"]) == (1, 32)
    assert main(["train", "rft", *flags, "--name", "s", "--init", str(tmp_path / "nothing")]) == 2
    assert "no checkpoint there" in capsys.readouterr().err
