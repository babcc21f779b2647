"""The tiny GPT: a decoder-only transformer with a value head and a KV cache.

Written to be read top to bottom, after Karpathy's nanoGPT (https://github.com/karpathy/nanoGPT)
and the transformer of Vaswani et al., "Attention Is All You Need" (2017): token + learned
position embeddings, ``n_layer`` pre-LayerNorm blocks (causal self-attention, then an MLP), a
final LayerNorm and a language-model head tied to the token embedding (Press & Wolf, 2017).

``position="rope"`` replaces the learned position embeddings with rotary embeddings (Su et al.
2021, "RoFormer", arXiv 2104.09864): queries and keys are rotated by their position, so
attention depends on relative positions only and a skill learnt at one place in the text works
at any other. With learned absolute positions it does not: the Game-of-24 models, trained on
prompts that always start at position 0, write no legal step once their positions are shifted
by 6 (``benchmarks/position_probe.py``), which is what a written search needs.

Two additions serve search:

* a **value head** on the same trunk, ``sigmoid(Linear(n_embd, 1))`` of the final hidden
  state, so one forward pass gives both the next-token distribution (the prior) and the value
  of the state, as in AlphaZero's two-headed network;
* a **KV cache**: :meth:`GPT.forward` takes the keys/values of earlier positions and returns
  them extended, so a prompt is computed once and its siblings' continuations reuse it.

Batches of sequences of different lengths are **left-padded**: ``attention_mask`` (1 = real
token, 0 = padding) hides padding keys, and ``position_ids`` count real tokens only, so a padded
row computes exactly what it would alone. Continuations appended after a left-padded prompt may
themselves be right-padded: the causal mask already hides later padding from real tokens.

Notation in shape comments: B batch, T new positions, S = past + T key positions, C = n_embd,
nh = n_head, hs = C // nh, V = vocab_size, L = n_layer.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, replace
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from qstar.errors import ConfigError

__all__ = [
    "GPTConfig",
    "GPT",
    "GPTOutput",
    "KVCache",
    "POSITIONS",
    "expand_cache",
    "rotate",
    "rotary_tables",
    "with_block_size",
    "with_extra_layers",
]

# One (key, value) pair per layer, each (B, nh, S, hs).
KVCache = tuple[tuple[Tensor, Tensor], ...]
# Cosines and signed sines of the rotary angles, laid out over a whole head: each (B, 1, T, hs).
Rotary = tuple[Tensor, Tensor]
#: How positions enter the model: learned absolute embeddings, or rotary (relative).
POSITIONS = ("learned", "rope")


def rotary_tables(angles: Tensor, head_size: int, dtype: torch.dtype) -> Rotary:
    """The (cos, signed sin) tables of :func:`rotate` for ``angles`` (B, 1, T, hs // 2): ``[cos,
    cos, 1]`` and ``[-sin, sin, 0]`` over the two halves of a head and its odd last channel."""
    cos, sin = angles.cos().to(dtype), angles.sin().to(dtype)
    tail = (*angles.shape[:-1], head_size % 2)
    cos_full = torch.cat((cos, cos, torch.ones(tail, dtype=dtype, device=angles.device)), dim=-1)
    sin_full = torch.cat((-sin, sin, torch.zeros(tail, dtype=dtype, device=angles.device)), dim=-1)
    return cos_full, sin_full


def rotate(x: Tensor, rotary: Rotary) -> Tensor:
    """Rotate the two halves of the last dimension of ``x`` (B, nh, T, hs) by the angles:
    ``(x1 cos - x2 sin, x1 sin + x2 cos)``, written ``x * [cos, cos] + [x2, x1] * [-sin, sin]``
    so that a call is four kernels (the same floats: ``a + (-b)`` is ``a - b`` exactly)."""
    cos, sin = rotary
    half = x.size(-1) // 2
    swapped = torch.cat((x[..., half : 2 * half], x[..., :half], x[..., 2 * half :]), dim=-1)
    return x * cos + swapped * sin


@dataclass(frozen=True)
class GPTConfig:
    """Shape of a :class:`GPT`. The defaults give about one million parameters with the default
    tokenizer (vocab 1091), small enough to train on a laptop CPU in minutes."""

    vocab_size: int
    block_size: int = 256
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    position: str = "learned"

    def __post_init__(self) -> None:
        if self.position not in POSITIONS:
            raise ConfigError(
                f"GPTConfig.position must be one of {', '.join(POSITIONS)}, got {self.position!r}"
            )
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"GPTConfig.{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ConfigError(f"GPTConfig.n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)):
            raise ConfigError(f"GPTConfig.dropout must be a number, got {self.dropout!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"GPTConfig.dropout must be in [0, 1), got {self.dropout!r}")


class GPTOutput(NamedTuple):
    """What :meth:`GPT.forward` returns.

    ``logits`` (B, T, V) are next-token logits (T = 1 with ``last_only``); ``value_logits``
    (B, T) are the value head before the sigmoid (``torch.sigmoid`` gives values in [0, 1]);
    ``past_key_values`` is the cache extended with these positions (``None`` unless asked for).
    """

    logits: Tensor
    value_logits: Tensor
    past_key_values: KVCache | None


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)  # q, k, v in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None,
        past: tuple[Tensor, Tensor] | None,
        rotary: Rotary | None = None,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # 3 x (B, T, C)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        if rotary is not None:  # the cache holds keys already rotated at their own positions
            q, k = rotate(q, rotary), rotate(k, rotary)
        if past is not None:
            k = torch.cat((past[0], k), dim=2)  # (B, nh, S, hs)
            v = torch.cat((past[1], v), dim=2)  # (B, nh, S, hs)
        dropout_p = self.dropout if self.training else 0.0
        # bf16 training (qstar.training.precision): PyTorch's CPU flash attention is 1.1 to 4
        # times slower in bf16 than in fp32 (the shorter the rows, the worse), so attention
        # alone stays in fp32.
        fp32 = x.device.type == "cpu" and torch.is_autocast_enabled("cpu")
        qkv = (q.float(), k.float(), v.float()) if fp32 else (q, k, v)
        # mask None means "plain causal over these T positions, no cache, no padding": the fast path.
        with torch.autocast("cpu", enabled=False) if fp32 else contextlib.nullcontext():
            y = F.scaled_dot_product_attention(
                *qkv,
                attn_mask=mask,
                dropout_p=dropout_p,
                is_causal=mask is None and past is None,
            )  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.resid_dropout(self.c_proj(y)), (k, v)


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.gelu(self.c_fc(x))  # (B, T, 4C)
        return self.dropout(self.c_proj(x))  # (B, T, C)


class Block(nn.Module):
    """Pre-LN transformer block: ``x + attn(ln(x))`` then ``x + mlp(ln(x))``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None,
        past: tuple[Tensor, Tensor] | None,
        rotary: Rotary | None = None,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        a, present = self.attn(self.ln_1(x), mask, past, rotary)
        x = x + a
        x = x + self.mlp(self.ln_2(x))
        return x, present


class GPT(nn.Module):
    """Decoder-only transformer with a tied LM head and a value head (see module docstring).

    Weights are initialised from ``torch.Generator().manual_seed(seed)`` (nanoGPT's scheme:
    N(0, 0.02), residual projections scaled by 1/sqrt(2 * n_layer)); the global RNG is left
    untouched.
    """

    def __init__(self, config: GPTConfig, *, seed: int = 0) -> None:
        super().__init__()
        self.config = config
        # nn.Linear/nn.Embedding draw their default init from the global RNG; fork it so that
        # building a model has no side effect, then re-initialise from our own generator.
        with torch.random.fork_rng(devices=[]):
            self.wte = nn.Embedding(config.vocab_size, config.n_embd)
            learned = config.position == "learned"
            self.wpe = nn.Embedding(config.block_size, config.n_embd) if learned else None
            self.drop = nn.Dropout(config.dropout)
            self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
            self.ln_f = nn.LayerNorm(config.n_embd)
            self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
            self.value_head = nn.Linear(config.n_embd, 1)
        self.lm_head.weight = self.wte.weight  # weight tying
        if not learned:
            half = (config.n_embd // config.n_head) // 2
            inv_freq = 1.0 / (10000.0 ** (torch.arange(half, dtype=torch.float32) / max(1, half)))
            self.register_buffer("inv_freq", inv_freq, persistent=False)  # (hs // 2,)
        self.reset_parameters(seed)

    def reset_parameters(self, seed: int = 0) -> None:
        """nanoGPT initialisation from an explicit generator seeded with ``seed``."""
        gen = torch.Generator().manual_seed(seed)
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        with torch.no_grad():
            for name, param in self.named_parameters():
                if name.endswith("c_proj.weight"):
                    nn.init.normal_(param, 0.0, residual_std, generator=gen)
                elif param.dim() >= 2:  # embeddings and linear weights (lm_head is tied to wte)
                    nn.init.normal_(param, 0.0, 0.02, generator=gen)
                elif name.startswith("ln_") or ".ln_" in name:
                    nn.init.ones_(param) if name.endswith("weight") else nn.init.zeros_(param)
                else:  # biases
                    nn.init.zeros_(param)

    def num_params(self, *, non_embedding: bool = False) -> int:
        """Parameter count (the tied head counted once); ``non_embedding`` drops the position
        embedding, as nanoGPT reports it."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding and self.wpe is not None else n

    def forward(
        self,
        idx: Tensor,
        *,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        past_key_values: KVCache | None = None,
        use_cache: bool = False,
        last_only: bool = False,
        value_only: bool = False,
    ) -> GPTOutput:
        """Run ``idx`` (B, T) token ids after the cached positions ``past_key_values``.

        ``attention_mask`` (B, S) marks real key positions (past and new) with 1 and padding
        with 0; ``position_ids`` (B, T) are the positions of the new tokens (default: the
        continuation of the cache, ``past .. past + T - 1``). ``use_cache`` returns the
        extended cache; ``last_only`` computes logits for the last position only, which is all
        that sampling needs; ``value_only`` skips the language-model head (``logits`` is then
        an empty (B, T, 0) tensor), which is all that reading values needs.
        """
        B, T = idx.shape
        past_len = 0 if past_key_values is None else past_key_values[0][0].size(2)
        S = past_len + T
        if position_ids is None:
            position_ids = torch.arange(past_len, S, device=idx.device).expand(B, T)  # (B, T)
        if T and int(position_ids.max()) >= self.config.block_size:
            raise ConfigError(
                f"sequence position {int(position_ids.max())} is past the model's block_size "
                f"{self.config.block_size}: shorten the prompt or the continuation"
            )
        mask = None
        if attention_mask is not None or (past_key_values is not None and T > 1):
            mask = self._attention_bias(B, T, past_len, attention_mask, idx.device)  # (B, 1, T, S)

        x, presents = self._trunk(idx, position_ids, mask, past_key_values)  # (B, T, C)
        if last_only:
            x = x[:, -1:, :]  # (B, 1, C)
        logits = x.new_zeros((*x.shape[:2], 0)) if value_only else self.lm_head(x)  # (B, T, V)
        value_logits = self.value_head(x).squeeze(-1)  # (B, T)
        return GPTOutput(logits, value_logits, tuple(presents) if use_cache else None)

    def hidden_states(self, idx: Tensor) -> Tensor:
        """The final (B, T, C) hidden states of a plain causal pass over ``idx`` (no cache, no
        padding mask), before either head: training applies ``lm_head`` and ``value_head`` to
        the positions it needs only (see :func:`qstar.training.sft.loss_fn`)."""
        length = idx.size(1)
        if length > self.config.block_size:
            raise ConfigError(
                f"sequence of {length} tokens is longer than block_size {self.config.block_size}"
            )
        positions = torch.arange(length, device=idx.device).expand_as(idx)
        return self._trunk(idx, positions, None, None)[0]

    def _trunk(
        self, idx: Tensor, position_ids: Tensor, mask: Tensor | None, past_key_values: KVCache | None
    ) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
        x = self.wte(idx)  # (B, T, C)
        rotary = None
        if self.wpe is not None:
            x = x + self.wpe(position_ids)
        else:
            angles = position_ids[:, None, :, None].to(self.inv_freq.dtype) * self.inv_freq  # (B, 1, T, hs/2)
            rotary = rotary_tables(angles, self.config.n_embd // self.config.n_head, x.dtype)
        x = self.drop(x)
        presents = []
        for i, block in enumerate(self.blocks):
            past = None if past_key_values is None else past_key_values[i]
            x, present = block(x, mask, past, rotary)  # (B, T, C)
            presents.append(present)
        return self.ln_f(x), presents  # (B, T, C)

    @staticmethod
    def _attention_bias(
        B: int, T: int, past_len: int, attention_mask: Tensor | None, device: torch.device
    ) -> Tensor:
        """Boolean (B, 1, T, S) mask, True where a query may attend: causal, minus padding keys.

        Every query may always attend to itself. For a padding query that is its only key, which
        keeps its softmax finite (a fully masked row would be NaN); padding outputs are unused.
        """
        S = past_len + T
        query_pos = torch.arange(past_len, S, device=device)[:, None]  # (T, 1)
        key_pos = torch.arange(S, device=device)[None, :]  # (1, S)
        allowed = (key_pos <= query_pos)[None, None]  # (1, 1, T, S)
        if attention_mask is not None:
            if attention_mask.shape != (B, S):
                raise ConfigError(
                    f"attention_mask must have shape {(B, S)}, got {tuple(attention_mask.shape)}"
                )
            allowed = allowed & attention_mask.bool()[:, None, None, :]  # (B, 1, T, S)
            allowed = allowed | (key_pos == query_pos)[None, None]  # (B, 1, T, S)
        return allowed


def expand_cache(cache: KVCache, index: Tensor) -> KVCache:
    """Rows ``index`` (R,) of every layer's keys and values: (B, nh, S, hs) -> (R, nh, S, hs).

    This is how one prompt's cache is shared by its samples or candidate continuations, and how
    finished rows are dropped from a running generation.
    """
    return tuple((k.index_select(0, index), v.index_select(0, index)) for k, v in cache)


def with_block_size(model: GPT, block_size: int) -> GPT:
    """A copy of ``model`` that reads ``block_size`` positions (for longer outputs, such as the
    search traces of :mod:`qstar.search.stream`). Every weight is copied; when the block grows,
    each new position embedding starts as the last learned one, so the copy computes exactly
    what ``model`` did on sequences that fit the old block, and fine-tuning teaches the rest.
    Shrinking keeps the first ``block_size`` positions."""
    old = model.config.block_size
    bigger = GPT(replace(model.config, block_size=block_size))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    if "wpe.weight" in state:  # rotary positions have no table to grow
        wpe = state["wpe.weight"]
        if block_size > old:
            wpe = torch.cat([wpe, wpe[-1:].expand(block_size - old, -1)], dim=0)
        state["wpe.weight"] = wpe[:block_size].clone()
    bigger.load_state_dict(state)
    return bigger.to(model.wte.weight.device)


def with_extra_layers(model: GPT, extra: int, *, seed: int = 0) -> GPT:
    """A copy of ``model`` with ``extra`` more transformer blocks on top of its own, each
    starting as the identity: its inner weights are freshly initialised (from ``seed``) and its
    two residual projections (attention and MLP ``c_proj``) are zero, so the deeper copy
    computes exactly what ``model`` did, and fine-tuning grows the new blocks from there (the
    function-preserving growth of Net2Net, Chen et al. 2016, "Net2Net: Accelerating Learning via
    Knowledge Transfer", arXiv 1511.05641, with zero-initialised residual branches as in Goyal
    et al. 2017). ``extra`` = 0 returns a plain copy."""
    if isinstance(extra, bool) or not isinstance(extra, int) or extra < 0:
        raise ConfigError(f"with_extra_layers: extra must be an integer >= 0, got {extra!r}")
    deeper = GPT(replace(model.config, n_layer=model.config.n_layer + extra), seed=seed)
    state = deeper.state_dict()
    state.update({k: v.clone() for k, v in model.state_dict().items()})
    for index in range(model.config.n_layer, deeper.config.n_layer):
        for branch in ("attn", "mlp"):
            state[f"blocks.{index}.{branch}.c_proj.weight"].zero_()
            state[f"blocks.{index}.{branch}.c_proj.bias"].zero_()
    deeper.load_state_dict(state)
    return deeper.to(model.wte.weight.device)
