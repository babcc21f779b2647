"""Supervised fine-tuning of the tiny GPT: next-token loss on completions plus a value loss.

Two kinds of data train the two heads of :class:`~qstar.policy.tinygpt.model.GPT`:

* :class:`LMExample` ``(prompt, completion, weight)``: cross-entropy on the completion tokens
  only (the prompt is context, masked out of the loss), each token weighted by ``weight``;
* :class:`ValueExample` ``(prompt, target)``: binary cross-entropy between the value head at the
  last prompt token and ``target`` in [0, 1] (a verifier outcome, a Monte-Carlo value);
* :class:`TokenExample` ``(prompt, text, target)``: binary cross-entropy between the LM head's
  probability that the next token is the first token of ``text`` and ``target``: a yes/no
  decision the model writes itself (a written search's ``back``), taught with a soft label.

Each step draws one batch of each kind present and minimises ``lm_loss + value_loss_weight *
value_loss + token_loss_weight * token_loss`` with AdamW, a linear warm-up and a cosine decay
(as in nanoGPT). The trainer is a handful of functions (encode, make a batch, loss,
step, evaluate) driven by :func:`train_sft`.

Training is deterministic given ``SFTConfig.seed``: batches come from an explicit
``torch.Generator``, and dropout (the only user of the global RNG) runs inside
``torch.random.fork_rng`` seeded with the same seed, so the caller's global RNG state is
restored afterwards. The number of torch threads is left as the caller set it.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from qstar.errors import ConfigError
from qstar.policy.tinygpt.checkpoint import save_checkpoint
from qstar.policy.tinygpt.model import GPT
from qstar.policy.tinygpt.tokenizer import Tokenizer
from qstar.training.precision import autocast, check_precision

__all__ = [
    "SFTConfig",
    "LMExample",
    "ValueExample",
    "TokenExample",
    "LMBatch",
    "ValueBatch",
    "encode_lm_example",
    "encode_value_example",
    "encode_token_example",
    "make_lm_batch",
    "make_value_batch",
    "lr_at",
    "loss_fn",
    "train_step",
    "evaluate",
    "train_sft",
]

IGNORE_INDEX = -100  # targets with this id carry no loss (prompt tokens, padding)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class SFTConfig:
    """Hyper-parameters of :func:`train_sft`. Set exactly one of ``steps`` and ``epochs``.

    ``warmup_frac`` of the steps ramp the learning rate linearly to ``lr``; a cosine then decays
    it to ``lr * min_lr_ratio``. ``grad_clip`` is the max global gradient norm (0 = off).
    ``append_eos`` ends every completion with ``<eos>`` so the model learns where to stop.
    ``eval_every`` = 0 evaluates (and checkpoints) only at the end.
    """

    steps: int | None = None
    epochs: int | None = None
    batch_size: int = 32
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_frac: float = 0.05
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    value_loss_weight: float = 1.0
    token_loss_weight: float = 1.0
    append_eos: bool = True
    #: Batch LM examples of similar length together (much less padding on mixed-task data).
    bucket_by_length: bool = False
    seed: int = 0
    log_every: int = 10
    eval_every: int = 0
    device: str = "cpu"
    #: "fp32", or "bf16" mixed precision for the training steps (qstar.training.precision).
    precision: str = "fp32"

    def __post_init__(self) -> None:
        _check(
            (self.steps is None) != (self.epochs is None),
            f"SFTConfig: set exactly one of steps and epochs (got steps={self.steps!r}, epochs={self.epochs!r})",
        )
        for name in ("steps", "epochs"):
            value = getattr(self, name)
            _check(
                value is None or (_is_int(value) and value >= 1),
                f"SFTConfig.{name} must be >= 1, got {value!r}",
            )
        _check(
            _is_int(self.batch_size) and self.batch_size >= 1,
            f"SFTConfig.batch_size must be >= 1, got {self.batch_size!r}",
        )
        _check(_is_number(self.lr) and self.lr > 0, f"SFTConfig.lr must be > 0, got {self.lr!r}")
        _check(
            _is_number(self.min_lr_ratio) and 0 <= self.min_lr_ratio <= 1,
            f"SFTConfig.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}",
        )
        _check(
            _is_number(self.warmup_frac) and 0 <= self.warmup_frac < 1,
            f"SFTConfig.warmup_frac must be in [0, 1), got {self.warmup_frac!r}",
        )
        for name in ("weight_decay", "grad_clip", "value_loss_weight", "token_loss_weight"):
            value = getattr(self, name)
            _check(_is_number(value) and value >= 0, f"SFTConfig.{name} must be >= 0, got {value!r}")
        _check(
            len(self.betas) == 2 and all(_is_number(b) and 0 <= b < 1 for b in self.betas),
            f"SFTConfig.betas must be two numbers in [0, 1), got {self.betas!r}",
        )
        _check(_is_int(self.seed), f"SFTConfig.seed must be an integer, got {self.seed!r}")
        _check(
            _is_int(self.log_every) and self.log_every >= 1,
            f"SFTConfig.log_every must be >= 1, got {self.log_every!r}",
        )
        _check(
            _is_int(self.eval_every) and self.eval_every >= 0,
            f"SFTConfig.eval_every must be >= 0, got {self.eval_every!r}",
        )
        check_precision("SFTConfig", self.precision)


@dataclass(frozen=True)
class LMExample:
    """Train the LM head to write ``completion`` after ``prompt``; ``weight`` scales its tokens.
    ``eos``: end the completion with ``<eos>`` (``None``: as ``SFTConfig.append_eos`` says)."""

    prompt: str
    completion: str
    weight: float = 1.0
    eos: bool | None = None

    def __post_init__(self) -> None:
        _check(
            _is_number(self.weight) and self.weight >= 0,
            f"LMExample weight must be >= 0, got {self.weight!r}",
        )
        _check(self.eos in (None, True, False), f"LMExample eos must be None or a bool, got {self.eos!r}")


@dataclass(frozen=True)
class ValueExample:
    """Train the value head at the last token of ``prompt`` towards ``target`` in [0, 1]."""

    prompt: str
    target: float

    def __post_init__(self) -> None:
        _check(
            _is_number(self.target) and 0 <= self.target <= 1,
            f"ValueExample target must be in [0, 1], got {self.target!r}",
        )


@dataclass(frozen=True)
class TokenExample:
    """Train the LM head's probability that the token after ``prompt`` is the first token of
    ``text`` towards ``target`` in [0, 1] (binary cross-entropy on that one probability)."""

    prompt: str
    text: str
    target: float

    def __post_init__(self) -> None:
        _check(bool(self.text), "TokenExample text must not be empty")
        _check(
            _is_number(self.target) and 0 <= self.target <= 1,
            f"TokenExample target must be in [0, 1], got {self.target!r}",
        )


# (token ids = <bos> prompt completion [<eos>], number of prompt tokens incl. <bos>, weight)
EncodedLM = tuple[list[int], int, float]
# (token ids = <bos> prompt, target[, the token whose probability is trained])
EncodedValue = tuple[list[int], float]
EncodedToken = tuple[list[int], float, int]


@dataclass
class LMBatch:
    input_ids: Tensor  # (B, T) right-padded
    targets: Tensor  # (B, T) next token, IGNORE_INDEX on prompt and padding
    weights: Tensor  # (B,)


@dataclass
class ValueBatch:
    input_ids: Tensor  # (B, T) right-padded
    last_index: Tensor  # (B,) position of the last prompt token
    targets: Tensor  # (B,)
    tokens: Tensor | None = None  # (B,) token batches: the token whose probability is trained


def encode_lm_example(
    tokenizer: Tokenizer, example: LMExample, *, block_size: int, append_eos: bool = True
) -> EncodedLM:
    """Token ids of one LM example; raises ConfigError when it does not fit the block size.
    ``example.eos``, when set, overrides ``append_eos``."""
    append_eos = append_eos if example.eos is None else example.eos
    prompt = [tokenizer.bos_id, *tokenizer.encode(example.prompt)]
    ids = prompt + tokenizer.encode(example.completion) + ([tokenizer.eos_id] if append_eos else [])
    # A sequence of block_size + 1 tokens gives block_size (input, target) pairs.
    if len(ids) > block_size + 1:
        raise ConfigError(
            f"LM example of {len(ids)} tokens does not fit block_size {block_size}: {example.prompt[:40]!r}..."
        )
    return ids, len(prompt), float(example.weight)


def encode_value_example(tokenizer: Tokenizer, example: ValueExample, *, block_size: int) -> EncodedValue:
    ids = [tokenizer.bos_id, *tokenizer.encode(example.prompt)]
    if len(ids) > block_size:
        raise ConfigError(
            f"value example of {len(ids)} tokens does not fit block_size {block_size}: {example.prompt[:40]!r}..."
        )
    return ids, float(example.target)


def encode_token_example(tokenizer: Tokenizer, example: TokenExample, *, block_size: int) -> EncodedToken:
    ids, target = encode_value_example(
        tokenizer, ValueExample(example.prompt, example.target), block_size=block_size
    )
    return ids, target, tokenizer.encode(example.text)[0]


def make_lm_batch(
    examples: Sequence[EncodedLM], *, pad_id: int, device: str | torch.device = "cpu"
) -> LMBatch:
    """Right-pad encoded LM examples into inputs and shifted targets with the prompt masked.

    Right padding needs no attention mask in training: the causal mask already hides the
    padding that follows a row's real tokens.
    """
    T = max(len(ids) for ids, _, _ in examples) - 1
    input_ids = torch.full((len(examples), T), pad_id, dtype=torch.long)
    targets = torch.full((len(examples), T), IGNORE_INDEX, dtype=torch.long)
    for b, (ids, num_prompt, _) in enumerate(examples):
        seq = torch.tensor(ids)
        input_ids[b, : len(ids) - 1] = seq[:-1]
        targets[b, : len(ids) - 1] = seq[1:]
        targets[b, : num_prompt - 1] = IGNORE_INDEX  # positions that predict prompt tokens
    weights = torch.tensor([w for _, _, w in examples], dtype=torch.float32)
    return LMBatch(input_ids.to(device), targets.to(device), weights.to(device))


def make_value_batch(
    examples: Sequence[EncodedValue] | Sequence[EncodedToken],
    *,
    pad_id: int,
    device: str | torch.device = "cpu",
) -> ValueBatch:
    """Right-pad encoded value (or token) examples; the value (the token's probability) is read
    at each row's last real token."""
    T = max(len(e[0]) for e in examples)
    input_ids = torch.full((len(examples), T), pad_id, dtype=torch.long)
    for b, e in enumerate(examples):
        input_ids[b, : len(e[0])] = torch.tensor(e[0])
    last_index = torch.tensor([len(e[0]) - 1 for e in examples])
    targets = torch.tensor([e[1] for e in examples], dtype=torch.float32)
    tokens = torch.tensor([e[2] for e in examples]).to(device) if len(examples[0]) == 3 else None
    return ValueBatch(input_ids.to(device), last_index.to(device), targets.to(device), tokens)


def lr_at(step: int, total_steps: int, config: SFTConfig) -> float:
    """Learning rate of 0-based ``step``: linear warm-up, then cosine decay to ``lr * min_lr_ratio``."""
    warmup = int(config.warmup_frac * total_steps)
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    min_lr = config.lr * config.min_lr_ratio
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))) * (config.lr - min_lr)


def _lm_loss_sums(model: GPT, batch: LMBatch) -> tuple[Tensor, Tensor]:
    """(weighted sum of token losses, sum of token weights) of one LM batch. The LM head runs
    on the trained positions only (prompt and padding positions carry no loss)."""
    hidden = model.hidden_states(batch.input_ids)  # (B, T, C)
    trained = batch.targets != IGNORE_INDEX  # (B, T)
    logits = model.lm_head(hidden[trained])  # (N, V)
    token_loss = F.cross_entropy(logits, batch.targets[trained], reduction="none")  # (N,)
    token_weight = batch.weights[:, None].expand_as(trained)[trained]  # (N,)
    return (token_loss * token_weight).sum(), token_weight.sum()


def _last_hidden(model: GPT, batch: ValueBatch) -> Tensor:
    """The trunk's output at each row's last prompt token: (B, C)."""
    hidden = model.hidden_states(batch.input_ids)  # (B, T, C)
    return hidden[torch.arange(len(hidden)), batch.last_index]


def _value_loss_sum(model: GPT, batch: ValueBatch) -> Tensor:
    value_logits = model.value_head(_last_hidden(model, batch)).squeeze(-1)  # (B,)
    return F.binary_cross_entropy_with_logits(value_logits, batch.targets, reduction="sum")


def _token_loss_sum(model: GPT, batch: ValueBatch) -> Tensor:
    assert batch.tokens is not None
    last = _last_hidden(model, batch)
    logp = F.log_softmax(model.lm_head(last).float(), dim=-1)[torch.arange(len(last)), batch.tokens]
    log_not = torch.log(-torch.expm1(logp.clamp(max=-1e-7)))  # log(1 - p), stable near p = 1
    return -(batch.targets * logp + (1 - batch.targets) * log_not).sum()


def loss_fn(
    model: GPT,
    lm_batch: LMBatch | None,
    value_batch: ValueBatch | None,
    *,
    value_loss_weight: float,
    token_batch: ValueBatch | None = None,
    token_loss_weight: float = 1.0,
) -> tuple[Tensor, dict[str, float]]:
    """``lm_loss + value_loss_weight * value_loss + token_loss_weight * token_loss`` and its
    parts as floats.

    ``lm_loss`` is the weight-averaged cross-entropy per completion token; ``value_loss`` the
    mean binary cross-entropy of the value head (computed from logits for stability);
    ``token_loss`` the mean binary cross-entropy of the token probabilities of ``token_batch``.
    """
    device = next(model.parameters()).device
    loss = torch.zeros((), device=device)
    metrics: dict[str, float] = {}
    if lm_batch is not None:
        total, weight = _lm_loss_sums(model, lm_batch)
        lm_loss = total / weight.clamp_min(1e-8)
        loss = loss + lm_loss
        metrics["lm_loss"] = lm_loss.item()
    if value_batch is not None:
        value_loss = _value_loss_sum(model, value_batch) / len(value_batch.targets)
        loss = loss + value_loss_weight * value_loss
        metrics["value_loss"] = value_loss.item()
    if token_batch is not None:
        token_loss = _token_loss_sum(model, token_batch) / len(token_batch.targets)
        loss = loss + token_loss_weight * token_loss
        metrics["token_loss"] = token_loss.item()
    metrics["loss"] = loss.item()
    return loss, metrics


def train_step(
    model: GPT,
    optimizer: torch.optim.Optimizer,
    lm_batch: LMBatch | None,
    value_batch: ValueBatch | None,
    *,
    lr: float,
    grad_clip: float,
    value_loss_weight: float,
    token_batch: ValueBatch | None = None,
    token_loss_weight: float = 1.0,
    precision: str = "fp32",
) -> dict[str, float]:
    """One optimizer step at learning rate ``lr``; returns the losses and the gradient norm.
    ``precision`` "bf16" runs the forward pass under bf16 autocast (:mod:`qstar.training.precision`)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    with autocast(precision, next(model.parameters()).device):
        loss, metrics = loss_fn(
            model,
            lm_batch,
            value_batch,
            value_loss_weight=value_loss_weight,
            token_batch=token_batch,
            token_loss_weight=token_loss_weight,
        )
    loss.backward()
    if grad_clip > 0:
        metrics["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip))
    optimizer.step()
    metrics["lr"] = lr
    return metrics


def evaluate(
    model: GPT, lm_batches: Sequence[LMBatch], value_batches: Sequence[ValueBatch]
) -> dict[str, float]:
    """Held-out ``val_lm_loss`` (per completion token) and ``val_value_loss`` (per example)."""
    was_training = model.training
    model.eval()
    metrics: dict[str, float] = {}
    try:
        with torch.no_grad():
            if lm_batches:
                sums = [_lm_loss_sums(model, b) for b in lm_batches]
                total = sum(float(s) for s, _ in sums)
                weight = sum(float(w) for _, w in sums)
                metrics["val_lm_loss"] = total / max(weight, 1e-8)
            if value_batches:
                total = sum(float(_value_loss_sum(model, b)) for b in value_batches)
                metrics["val_value_loss"] = total / sum(len(b.targets) for b in value_batches)
    finally:
        model.train(was_training)
    return metrics


def _index_batches(
    n: int, batch_size: int, generator: torch.Generator, lengths: Sequence[int] | None = None
) -> Iterator[list[int]]:
    """Endless batches of indices in ``range(n)``: shuffled epochs, cut into ``batch_size``.

    With ``lengths``, each epoch's shuffled order is cut into pools of 32 batches whose members
    are sorted by length before batching (and the batches shuffled again), so a batch holds
    sequences of similar length and little padding: the usual length bucketing.
    """
    pool = batch_size * 32
    while True:
        order = torch.randperm(n, generator=generator).tolist()
        if lengths is None:
            batches = [order[i : i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]
        else:
            batches = []
            for start in range(0, n, pool):
                chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
                batches += [
                    chunk[i : i + batch_size] for i in range(0, len(chunk) - batch_size + 1, batch_size)
                ]
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        if not batches:  # fewer examples than one batch: repeat them
            batches = [(order * (batch_size // max(1, n) + 1))[:batch_size]]
        yield from batches


def _make_optimizer(model: GPT, config: SFTConfig) -> torch.optim.AdamW:
    # As in nanoGPT: decay matrices and embeddings, not biases or LayerNorm gains.
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas)


def _progress(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("sft"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[metrics]}"),
        TimeRemainingColumn(),
        disable=not enabled,
    )


def train_sft(
    model: GPT,
    tokenizer: Tokenizer,
    lm_examples: Sequence[LMExample],
    value_examples: Sequence[ValueExample] = (),
    config: SFTConfig | None = None,
    *,
    val_lm_examples: Sequence[LMExample] = (),
    val_value_examples: Sequence[ValueExample] = (),
    progress: bool = True,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    on_log: Callable[[dict[str, float]], None] | None = None,
    token_examples: Sequence[TokenExample] = (),
) -> dict[str, float]:
    """Fine-tune ``model`` in place; return the final metrics.

    With ``epochs``, an epoch is one pass over the LM examples (over the value examples when
    there are no LM examples). Every ``log_every`` steps ``on_log`` receives the mean training
    metrics since the last log (``step``, ``lr``, ``loss``, ``lm_loss``, ``value_loss``); every
    ``eval_every`` steps and at the end it receives the validation metrics, and the model is
    saved to ``checkpoint_dir`` when one is given. The returned dict holds the last training
    window's means, the final validation metrics, ``step``, ``num_tokens`` (tokens in the
    training batches, padding included) and ``seconds``.
    """
    if config is None:
        raise ConfigError("train_sft needs an SFTConfig (e.g. SFTConfig(steps=1000))")
    if not lm_examples and not value_examples and not token_examples:
        raise ConfigError("train_sft needs at least one LM, value or token example")
    if model.config.vocab_size != tokenizer.vocab_size:
        raise ConfigError(
            f"model vocab_size {model.config.vocab_size} != tokenizer vocab_size {tokenizer.vocab_size}"
        )
    block, pad, device = model.config.block_size, tokenizer.pad_id, torch.device(config.device)
    lm_data = [
        encode_lm_example(tokenizer, e, block_size=block, append_eos=config.append_eos) for e in lm_examples
    ]
    value_data = [encode_value_example(tokenizer, e, block_size=block) for e in value_examples]
    token_data = [encode_token_example(tokenizer, e, block_size=block) for e in token_examples]
    val_lm_data = [
        encode_lm_example(tokenizer, e, block_size=block, append_eos=config.append_eos)
        for e in val_lm_examples
    ]
    val_value_data = [encode_value_example(tokenizer, e, block_size=block) for e in val_value_examples]
    bs = config.batch_size
    val_lm_batches = [
        make_lm_batch(val_lm_data[i : i + bs], pad_id=pad, device=device)
        for i in range(0, len(val_lm_data), bs)
    ]
    val_value_batches = [
        make_value_batch(val_value_data[i : i + bs], pad_id=pad, device=device)
        for i in range(0, len(val_value_data), bs)
    ]
    if config.steps is not None:
        total_steps = config.steps
    else:
        assert config.epochs is not None
        total_steps = config.epochs * math.ceil(len(lm_data or value_data or token_data) / bs)

    generator = torch.Generator().manual_seed(config.seed)
    lengths = [len(ids) for ids, _, _ in lm_data] if config.bucket_by_length else None
    lm_batches = _index_batches(len(lm_data), bs, generator, lengths) if lm_data else None
    value_batches = _index_batches(len(value_data), bs, generator) if value_data else None
    token_batches = _index_batches(len(token_data), bs, generator) if token_data else None
    was_training = model.training
    model.to(device).train()
    optimizer = _make_optimizer(model, config)

    def checkpoint(step: int, metrics: dict[str, float]) -> None:
        if checkpoint_dir is not None:
            meta = {"trainer": "sft", "step": step, "sft_config": asdict(config), "metrics": metrics}
            save_checkpoint(checkpoint_dir, model, tokenizer, meta=meta)

    start = time.perf_counter()
    num_tokens = 0
    window: dict[str, list[float]] = {}
    last_window: dict[str, float] = {}
    val_metrics: dict[str, float] = {}
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=fork_devices), _progress(progress) as bar:
            torch.manual_seed(config.seed)  # dropout only; restored when fork_rng exits
            task = bar.add_task("sft", total=total_steps, metrics="")
            for step in range(total_steps):
                lm_batch = value_batch = token_batch = None
                if lm_batches is not None:
                    chosen = [lm_data[i] for i in next(lm_batches)]
                    lm_batch = make_lm_batch(chosen, pad_id=pad, device=device)
                    num_tokens += int(lm_batch.input_ids.numel())
                if value_batches is not None:
                    chosen_v = [value_data[i] for i in next(value_batches)]
                    value_batch = make_value_batch(chosen_v, pad_id=pad, device=device)
                    num_tokens += int(value_batch.input_ids.numel())
                if token_batches is not None:
                    chosen_t = [token_data[i] for i in next(token_batches)]
                    token_batch = make_value_batch(chosen_t, pad_id=pad, device=device)
                    num_tokens += int(token_batch.input_ids.numel())
                metrics = train_step(
                    model,
                    optimizer,
                    lm_batch,
                    value_batch,
                    lr=lr_at(step, total_steps, config),
                    grad_clip=config.grad_clip,
                    value_loss_weight=config.value_loss_weight,
                    token_batch=token_batch,
                    token_loss_weight=config.token_loss_weight,
                    precision=config.precision,
                )
                for key, value in metrics.items():
                    window.setdefault(key, []).append(value)
                done = step + 1
                if done % config.log_every == 0 or done == total_steps:
                    last_window = {k: sum(v) / len(v) for k, v in window.items()}
                    window = {}
                    bar.update(task, metrics=f"loss {last_window['loss']:.4f}")
                    if on_log is not None:
                        on_log({"step": done, **last_window})
                bar.update(task, advance=1)
                is_eval = config.eval_every and done % config.eval_every == 0
                if is_eval or done == total_steps:
                    val_metrics = evaluate(model, val_lm_batches, val_value_batches)
                    if val_metrics and on_log is not None:
                        on_log({"step": done, **val_metrics})
                    checkpoint(done, {**last_window, **val_metrics})
    finally:
        model.train(was_training)
    return {
        "step": total_steps,
        **last_window,
        **val_metrics,
        "num_tokens": num_tokens,
        "seconds": time.perf_counter() - start,
    }
