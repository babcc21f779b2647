"""Tiny randomly initialised Hugging Face models, made locally: a ``hf:`` model for smoke tests,
CI and benchmarks of the plumbing, with no download (extra ``[hf]``).

    make_tiny_random_model("models/tiny", corpus=["some text", ...], arch="llama")
    qstar solve "4 9 10 13" --model hf:models/tiny
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from qstar.errors import ConfigError, require_extra

__all__ = ["TINY_CHAT_TEMPLATE", "make_tiny_random_model"]


#: A minimal chat template (ChatML-like) for :func:`make_tiny_random_model`.
TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def make_tiny_random_model(
    directory: str | os.PathLike[str],
    corpus: Sequence[str],
    *,
    arch: str = "gpt2",
    vocab_size: int = 400,
    chat_template: str | None = None,
    max_positions: int = 1024,
    seed: int = 0,
) -> Path:
    """Write a tiny randomly initialised causal LM (2 layers, width 32) and a byte-level BPE
    tokenizer trained on ``corpus`` to ``directory``: a local ``hf:`` model for smoke tests and
    CI that needs no download. ``arch`` is ``"gpt2"`` or ``"llama"``."""
    transformers = require_extra("transformers", "hf")
    tokenizers = require_extra("tokenizers", "hf")
    special = ["<|endoftext|>", "<|pad|>", "<|end|>"]
    bpe = tokenizers.Tokenizer(tokenizers.models.BPE())
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(corpus), trainer=trainer)
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=special[0], eos_token=special[0], pad_token=special[1]
    )
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    torch.manual_seed(seed)
    size = {"vocab_size": len(tokenizer), "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 1}
    if arch == "gpt2":
        config = transformers.GPT2Config(n_positions=max_positions, n_embd=32, n_layer=2, n_head=2, **size)
        model = transformers.GPT2LMHeadModel(config)
    elif arch == "llama":
        config = transformers.LlamaConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=max_positions,
            **size,
        )
        model = transformers.LlamaForCausalLM(config)
    else:
        raise ConfigError(f"arch must be 'gpt2' or 'llama', got {arch!r}")
    out = Path(directory)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
