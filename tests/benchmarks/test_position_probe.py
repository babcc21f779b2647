"""benchmarks/position_probe.py: shifted greedy lines, and a smoke run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `benchmarks` is a top-level package of the repository
    sys.path.insert(0, str(ROOT))

from benchmarks import position_probe  # noqa: E402
from qstar.policy.tinygpt.checkpoint import save_checkpoint  # noqa: E402
from qstar.policy.tinygpt.model import GPT, GPTConfig  # noqa: E402
from qstar.policy.tinygpt.tokenizer import Tokenizer  # noqa: E402


def _model(position: str) -> GPT:
    tokenizer = Tokenizer()
    model = GPT(GPTConfig(tokenizer.vocab_size, 64, 1, 2, 32, position=position), seed=0).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # peaked distributions, so a shift shows in the greedy tokens
        for p in model.parameters():
            p.normal_(0.0, 0.5, generator=gen)
    return model


def test_a_rotary_model_writes_the_same_line_at_any_shift_a_learned_one_need_not():
    tokenizer, prompt = Tokenizer(), "game24: 1 2 3 4\n"
    rope = _model("rope")
    lines = {position_probe.shifted_line(rope, tokenizer, prompt, k, max_new_tokens=8) for k in (0, 3, 20)}
    assert len(lines) == 1
    learned = _model("learned")
    lines = {position_probe.shifted_line(learned, tokenizer, prompt, k, max_new_tokens=8) for k in (0, 3, 20)}
    assert len(lines) > 1


def test_smoke_run_writes_legal_counts_per_split_and_shift(tmp_path):
    save_checkpoint(tmp_path / "m", _model("rope"), Tokenizer())
    out = tmp_path / "probe.json"
    argv = ["--model", str(tmp_path / "m"), "--shift", "0", "--shift", "5", "--limit", "2", "--out", str(out)]
    position_probe.main([*argv, "--splits", "val"])
    result = json.loads(out.read_text())["results"][str(tmp_path / "m")]
    assert result["position"] == "rope" and result["val"]["0"] == result["val"]["5"]
    assert result["val"]["0"]["n"] == 2
