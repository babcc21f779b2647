"""Train an implicit PRM (:mod:`qstar.rewards.implicit_prm`) on a label file.

Yuan et al. 2024, "Free Process Rewards without Process Labels" (arXiv 2412.01981): the reward
model ``pi_theta`` starts as a copy of the reference policy ``pi_ref`` and is trained with
binary cross-entropy on ``sigmoid(q_t)``, ``q_t = beta * sum_{i <= t} log pi_theta / pi_ref`` of
step ``i``:

- ``target="hard"`` / ``"soft"``: every step's Math-Shepherd label (a PRM on automatic labels);
- ``target="outcome"``: the last step's label only, the path's outcome (Yuan et al.'s implicit
  ORM, trained on outcome labels alone).

One path is one training sequence (``<bos>`` + prompt + every step), so an epoch runs each path
once, not once per prefix as value-head training does. The reference log-probabilities are
computed once, before training. Train/val split by problem, early stopping on the val loss, the
best epoch's weights kept.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from qstar.errors import ConfigError
from qstar.policy.tinygpt.model import GPT
from qstar.policy.tinygpt.tokenizer import Tokenizer
from qstar.rewards.labels import LabelRecord
from qstar.rewards.prm import auc
from qstar.training.prm_train import EarlyStopping, ValueTrainConfig, split_by_problem, training_setup
from qstar.training.sft import lr_at

__all__ = ["ImplicitPRMConfig", "IMPLICIT_TARGETS", "encode_path", "train_implicit_prm"]

IMPLICIT_TARGETS = ("hard", "soft", "outcome")


@dataclass(frozen=True)
class ImplicitPRMConfig(ValueTrainConfig):
    """Knobs of :func:`train_implicit_prm`: those of value training (epochs, batch size, lr,
    patience, validation share, seed; ``num_bins`` and ``device`` unused) plus ``beta`` and
    ``target`` (module docstring)."""

    beta: float = 0.5
    target: str = "soft"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.target not in IMPLICIT_TARGETS:
            raise ConfigError(f"ImplicitPRMConfig.target must be one of {', '.join(IMPLICIT_TARGETS)}")
        if not (isinstance(self.beta, (int, float)) and math.isfinite(self.beta) and self.beta > 0):
            raise ConfigError(f"ImplicitPRMConfig.beta must be > 0, got {self.beta!r}")


@dataclass(frozen=True)
class _Path:
    ids: list[int]  # <bos> prompt step_1 ... step_T
    step_of: list[int]  # per token: 0 for <bos> and prompt, i for a token of step i (1-based)
    targets: list[float]  # one per step
    group: str


def encode_path(tokenizer: Tokenizer, record: LabelRecord, block_size: int) -> tuple[list[int], list[int]]:
    """Token ids and per-token step numbers of a record, tokenised as ``Policy.score`` does
    (prompt, then each ``step + "\\n"`` on its own)."""
    ids = [tokenizer.bos_id, *tokenizer.encode(record.prompt)]
    step_of = [0] * len(ids)
    for i, step in enumerate(record.completions, start=1):
        piece = tokenizer.encode(step + "\n")
        ids += piece
        step_of += [i] * len(piece)
    if len(ids) > block_size + 1:
        raise ConfigError(
            f"label record of problem {record.problem_key!r} is {len(ids)} tokens, more than the "
            f"model's block_size + 1 = {block_size + 1}"
        )
    return ids, step_of


def _targets(record: LabelRecord, target: str) -> list[float]:
    if target == "soft":
        if not record.values:
            raise ConfigError("target 'soft' needs a 'values' column (label with --method mc)")
        return [float(v) for v in record.values]
    labels = [float(y) for y in record.labels]
    if target == "outcome":  # only the last step carries a target
        return [math.nan] * (len(labels) - 1) + labels[-1:]
    return labels


def _batch(paths: Sequence[_Path], pad: int) -> tuple[torch.Tensor, ...]:
    T = max(len(p.ids) for p in paths)
    K = max(len(p.targets) for p in paths)
    ids = torch.full((len(paths), T), pad, dtype=torch.long)
    step_of = torch.zeros((len(paths), T), dtype=torch.long)
    mask = torch.zeros((len(paths), T), dtype=torch.long)
    targets = torch.full((len(paths), K), math.nan)
    for r, p in enumerate(paths):
        ids[r, : len(p.ids)] = torch.tensor(p.ids)
        step_of[r, : len(p.ids)] = torch.tensor(p.step_of)
        mask[r, : len(p.ids)] = 1
        targets[r, : len(p.targets)] = torch.tensor(p.targets)
    return ids, step_of, mask, targets


def _token_logp(model: GPT, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T-1) log-probability of each next token."""
    logits = model(ids[:, :-1], attention_mask=mask[:, :-1]).logits.float()  # (B, T-1, V)
    return torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)


def _step_logits(diff: torch.Tensor, step_of: torch.Tensor, K: int, beta: float) -> torch.Tensor:
    """(B, K) ``q_t``: beta times the cumulative per-step sums of the token log-ratios ``diff``."""
    sums = diff.new_zeros(diff.shape[0], K + 1).scatter_add(1, step_of[:, 1:], diff)  # (B, K + 1)
    return beta * sums[:, 1:].cumsum(1)  # step 0 (the prompt) is dropped


def train_implicit_prm(
    model: GPT,
    reference: GPT,
    tokenizer: Tokenizer,
    records: Sequence[LabelRecord],
    config: ImplicitPRMConfig,
    *,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train ``model`` (a copy of ``reference``) in place; return the history and best epoch."""
    block = model.config.block_size
    paths = []
    for r in records:
        ids, step_of = encode_path(tokenizer, r, block)
        paths.append(_Path(ids, step_of, _targets(r, config.target), r.problem_key))
    if not paths:
        raise ConfigError("no label records to train on")
    train, val = split_by_problem(paths, config.val_frac, config.seed)  # by _Path.group
    pad, bs = tokenizer.pad_id, config.batch_size
    reference.eval()
    ref_cache: dict[int, torch.Tensor] = {}
    with torch.no_grad():
        for i in range(0, len(paths), bs):
            ids, _, mask, _ = _batch(paths[i : i + bs], pad)
            lp = _token_logp(reference, ids, mask)
            for j in range(len(paths[i : i + bs])):
                ref_cache[id(paths[i + j])] = lp[j, : len(paths[i + j].ids) - 1]

    def loss_on(batch: Sequence[_Path]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ids, step_of, mask, targets = _batch(batch, pad)
        ref = torch.zeros(ids.shape[0], ids.shape[1] - 1)
        for j, p in enumerate(batch):
            ref[j, : len(p.ids) - 1] = ref_cache[id(p)]
        diff = (_token_logp(model, ids, mask) - ref) * mask[:, 1:]
        q = _step_logits(diff, step_of, targets.shape[1], config.beta)
        known = ~torch.isnan(targets)
        loss = F.binary_cross_entropy_with_logits(q[known], targets[known])
        return loss, torch.sigmoid(q[known]).detach(), targets[known]

    total = config.epochs * math.ceil(len(train) / bs)
    optimizer, schedule, generator = training_setup(model, config)
    history: list[dict[str, Any]] = []
    stopper, step = EarlyStopping(model, config.patience, config.min_delta), 0
    start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        model.train()
        losses = []
        for idx in torch.randperm(len(train), generator=generator).split(bs):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, total, schedule)
            loss, _, _ = loss_on([train[i] for i in idx.tolist()])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            losses.append(float(loss.detach()))
            step += 1
        record: dict[str, Any] = {"epoch": epoch, "train_loss": sum(losses) / len(losses)}
        if val:
            model.eval()
            with torch.no_grad():
                parts = [loss_on(val[i : i + bs]) for i in range(0, len(val), bs)]
            scores = torch.cat([s for _, s, _ in parts]).tolist()
            ys = torch.cat([t for _, _, t in parts]).tolist()
            record["val_loss"] = sum(float(l_) * len(s) for l_, s, _ in parts) / max(1, len(scores))
            record["val_auc"] = auc(scores, [y >= 0.5 for y in ys])
        record["seconds"] = round(time.perf_counter() - start, 2)
        record["best"] = stopper.update(epoch, record.get("val_loss", -epoch))  # no val: always
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if stopper.stop:
            break
    stopper.restore()
    model.eval()
    return {
        "history": history,
        "best_epoch": stopper.best_epoch,
        "best": next((h for h in history if h["epoch"] == stopper.best_epoch), {}),
        "num_train": len(train),
        "num_val": len(val),
        "seconds": round(time.perf_counter() - start, 2),
    }
