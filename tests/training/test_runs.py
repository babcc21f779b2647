"""The run directory: atomic writes, committed rounds, resume state, pruning."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from qstar.errors import ConfigError
from qstar.policy.tinygpt.model import GPT, GPTConfig
from qstar.policy.tinygpt.tokenizer import Tokenizer
from qstar.training.runs import RunDir, write_atomic


def tiny_model(seed: int = 0) -> tuple[GPT, Tokenizer]:
    tok = Tokenizer(max_int=20)
    return GPT(GPTConfig(tok.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16), seed=seed), tok


def commit(rd: RunDir, r: int, model: GPT, tok: Tokenizer, opt=None, history=None) -> None:
    rd.save_checkpoint(r, model, tok)
    rd.commit_round(
        r, optimizer=opt, replay={"values": {"p": 1.0}}, counters={"n": r}, history=history or [{"round": r}]
    )


def test_write_atomic_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a" / "f.json"
    write_atomic(path, b"one")
    write_atomic(path, b"two")
    assert path.read_bytes() == b"two"
    assert [p.name for p in path.parent.iterdir()] == ["f.json"]


def test_create_refuses_an_existing_run(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.create({"seed": 0})
    assert rd.read_config() == {"seed": 0}
    with pytest.raises(ConfigError, match="--resume"):
        rd.create({"seed": 0})
    with pytest.raises(ConfigError, match="not a run directory"):
        RunDir(tmp_path / "nothing").read_config()


def test_a_round_is_committed_only_when_its_state_is_complete(tmp_path):
    rd = RunDir(tmp_path / "run")
    model, tok = tiny_model()
    assert rd.latest_round() is None
    commit(rd, 0, model, tok)
    rd.save_checkpoint(1, model, tok)  # killed before commit_round(1)
    assert rd.latest_round() == 0


def test_load_round_restores_weights_optimizer_replay_and_rng(tmp_path):
    rd = RunDir(tmp_path / "run")
    model, tok = tiny_model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.tensor([[1, 2, 3]])).logits.sum().backward()
    opt.step()
    random.seed(7)
    np.random.seed(7)
    torch.manual_seed(7)
    commit(rd, 3, model, tok, opt, history=[{"round": 1}, {"round": 2}, {"round": 3}])
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    state = rd.load_round(3)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    for (name, a), b in zip(model.state_dict().items(), state.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    restored = torch.optim.AdamW(state.model.parameters(), lr=1e-3)
    restored.load_state_dict(state.optimizer_state)
    assert torch.equal(restored.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert state.replay == {"values": {"p": 1.0}}
    assert state.counters == {"n": 3}
    assert [h["round"] for h in state.history] == [1, 2, 3]


def test_old_rounds_are_pruned_but_round_zero_weights_stay(tmp_path):
    rd = RunDir(tmp_path / "run")
    model, tok = tiny_model()
    for r in range(5):
        commit(rd, r, model, tok)
    assert sorted(p.name for p in (rd.path / "state").glob("round-*")) == ["round-0003", "round-0004"]
    assert sorted(p.name for p in (rd.path / "checkpoints").glob("round-*")) == [
        "round-0000",
        "round-0003",
        "round-0004",
    ]


def test_collected_results_survive_until_their_round_commits(tmp_path):
    rd = RunDir(tmp_path / "run")
    model, tok = tiny_model()
    commit(rd, 0, model, tok)
    rd.save_collected(1, {"records": [{"id": "train/1"}]})
    assert rd.load_collected(1) == {"records": [{"id": "train/1"}]}
    commit(rd, 1, model, tok)
    assert rd.load_collected(1) is None


def test_rewrite_metrics_keeps_exactly_the_committed_rounds(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.path.mkdir()
    rd.metrics_file.write_text('{"round": 1}\n{"round": 2}\n{"round": 2, "torn')
    rd.rewrite_metrics([{"round": 1}, {"round": 2}])
    assert [json.loads(line) for line in rd.metrics_file.read_text().splitlines()] == [
        {"round": 1},
        {"round": 2},
    ]


def test_saved_tree_names_are_safe_file_names(tmp_path):
    rd = RunDir(tmp_path / "run")
    path = rd.save_tree(2, "train/17", {"schema": "qstar.tree/1"})
    assert path.name == "train_17.json" and path.parent.name == "round-0002"
