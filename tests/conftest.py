"""Shared fixtures: a tiny random tiny-GPT checkpoint, single-threaded torch."""

from __future__ import annotations

import pytest
import torch

from qstar.policy.tinygpt.checkpoint import save_checkpoint
from qstar.policy.tinygpt.model import GPT, GPTConfig
from qstar.policy.tinygpt.tokenizer import Tokenizer


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # Tiny models are dominated by per-op overhead; one thread is fastest and avoids
    # oversubscribing CI's two cores.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> str:
    """A randomly initialised 1-layer tiny GPT saved as a checkpoint directory."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    tokenizer = Tokenizer()
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=32), seed=0)
    save_checkpoint(path, model, tokenizer, meta={"note": "random test model"})
    return str(path)
