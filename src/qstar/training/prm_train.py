"""Train a PRM / Q-function: the tiny GPT's value head (and trunk) on step labels.

A PRM or Q checkpoint is a tiny GPT checkpoint whose value head at the last token of
``task.render(s')`` scores the step into ``s'`` (:mod:`qstar.rewards.prm`,
:mod:`qstar.rewards.qvalue`). Training reuses the SFT trainer's pieces
(:func:`~qstar.training.sft.encode_value_example`, :func:`~qstar.training.sft.make_value_batch`,
:func:`~qstar.training.sft.train_step`, :func:`~qstar.training.sft.lr_at`): binary cross-entropy
between the value head and the target, AdamW, cosine decay. Around them, per epoch:

- a **train/val split by problem** (a stable hash of the problem id), so the steps of one
  problem never sit on both sides;
- **metrics per epoch** on the held-out steps: loss, accuracy and AUC against the hard labels,
  reliability bins and ECE, mean absolute error against soft values, agreement with MC labels
  (:func:`~qstar.rewards.prm.step_metrics`);
- **early stopping** on the validation loss (``patience`` epochs without an improvement of
  ``min_delta``); the best weights are restored at the end;
- **atomic checkpoints**: every improvement is saved with
  :func:`~qstar.policy.tinygpt.checkpoint.save_checkpoint` (temporary files + ``os.replace``).

:func:`fitted_q_iteration` repeats training on Bellman targets recomputed from saved search
trees with the model of the previous round (:func:`~qstar.rewards.qvalue.bellman_targets`).
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from qstar.errors import ConfigError
from qstar.policy.tinygpt.checkpoint import save_checkpoint
from qstar.policy.tinygpt.model import GPT
from qstar.policy.tinygpt.policy import TinyGPTPolicy
from qstar.policy.tinygpt.tokenizer import Tokenizer
from qstar.rewards.labels import LabelRecord
from qstar.rewards.prm import step_metrics
from qstar.rewards.qvalue import QValueScorer, bellman_targets, best_rollout_targets, mc_targets
from qstar.search.tree import Tree
from qstar.tasks.base import Task
from qstar.training.sft import (
    SFTConfig,
    ValueExample,
    encode_value_example,
    evaluate,
    lr_at,
    make_value_batch,
    train_step,
)

__all__ = [
    "ValueTrainConfig",
    "StepExample",
    "TARGETS",
    "examples_from_labels",
    "examples_from_trees",
    "split_by_problem",
    "predict",
    "train_values",
    "EarlyStopping",
    "training_setup",
    "fitted_q_iteration",
    "load_trees",
]

#: ``--target`` of ``qstar train prm`` (hard / soft Math-Shepherd labels) and ``train q``.
TARGETS = ("hard", "soft", "mc", "best", "bellman")


@dataclass(frozen=True)
class ValueTrainConfig:
    """Knobs of :func:`train_values` (module docstring)."""

    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    val_frac: float = 0.1
    patience: int = 3
    min_delta: float = 1e-4
    seed: int = 0
    num_bins: int = 10
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience", "num_bins"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"ValueTrainConfig.{name} must be an integer >= 1, got {value!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"ValueTrainConfig.lr must be > 0, got {self.lr!r}")
        if not 0 <= self.val_frac < 1:
            raise ConfigError(f"ValueTrainConfig.val_frac must be in [0, 1), got {self.val_frac!r}")


@dataclass(frozen=True)
class StepExample:
    """One training step: the rendered state after it, the target in [0, 1], its hard label,
    its soft MC value and MC hard label when known, and the problem it belongs to."""

    prompt: str
    target: float
    label: bool
    group: str
    value: float | None = None
    mc_label: bool | None = None


def examples_from_labels(records: Sequence[LabelRecord], target: str) -> list[StepExample]:
    """Step examples of a label file for ``target`` ``hard``/``soft`` (PRM) or ``mc``/``best`` (Q)."""
    if target not in ("hard", "soft", "mc", "best"):
        raise ConfigError(f"target {target!r} does not come from a label file; use hard, soft, mc or best")
    out = []
    for r in records:
        if target in ("soft", "mc") and not r.values:
            raise ConfigError(f"target {target!r} needs a 'values' column (label with --method mc)")
        pairs = best_rollout_targets([r]) if target == "best" else mc_targets([r])
        is_mc = r.meta.get("method") == "mc"
        for i, (prompt, soft) in enumerate(pairs):
            y = r.labels[i]
            t = float(y) if target == "hard" else soft
            value = r.values[i] if r.values else None
            out.append(StepExample(prompt, t, y, r.problem_key, value, y if is_mc else None))
    return out


def examples_from_trees(
    trees: Sequence[Tree],
    *,
    gamma: float = 1.0,
    q_fn: Callable | None = None,
    reward_fn: Callable[[Tree, int], float | None] | None = None,
) -> list[StepExample]:
    """Bellman-target examples of every tree edge that has a target, grouped by problem id like
    :attr:`~qstar.rewards.labels.LabelRecord.problem_key`, so labels and trees split alike."""
    out = []
    for tree in trees:
        rf = None if reward_fn is None else (lambda c, t=tree: reward_fn(t, c))
        for c, y in bellman_targets(tree, gamma=gamma, q_fn=q_fn, reward_fn=rf).items():
            out.append(StepExample(tree.text[c], y, y >= 0.5, tree.problem.id or tree.problem.text))
    return out


def split_by_problem(
    examples: Sequence[StepExample], val_frac: float, seed: int = 0
) -> tuple[list[StepExample], list[StepExample]]:
    """(train, val) by a stable hash of ``(seed, group)``: deterministic across runs and machines."""
    if val_frac <= 0:
        return list(examples), []
    groups = sorted({e.group for e in examples})
    val_groups = {g for g in groups if zlib.crc32(f"{seed}:{g}".encode()) % 10_000 < val_frac * 10_000}
    if not val_groups and len(groups) > 1:
        val_groups = {groups[-1]}
    if len(val_groups) == len(groups) and len(groups) > 1:
        val_groups.discard(groups[0])
    train = [e for e in examples if e.group not in val_groups]
    val = [e for e in examples if e.group in val_groups]
    return train, val


def predict(
    model: GPT, tokenizer: Tokenizer, prompts: Sequence[str], *, batch_size: int = 256
) -> list[float]:
    """Value-head outputs for rendered states (training mode is restored afterwards)."""
    if not prompts:
        return []
    was_training = model.training
    policy = TinyGPTPolicy(
        model, tokenizer, device=next(model.parameters()).device, max_batch_size=batch_size
    )
    try:
        return policy.value(list(prompts))
    finally:
        model.train(was_training)


def _val_metrics(
    model: GPT, tokenizer: Tokenizer, val: Sequence[StepExample], val_batches: list, num_bins: int
) -> dict[str, Any]:
    if not val:
        return {}
    scores = predict(model, tokenizer, [e.prompt for e in val])
    values = [e.value for e in val]
    mc = [e.mc_label for e in val]
    metrics = step_metrics(
        scores,
        [e.label for e in val],
        values=values if all(v is not None for v in values) else None,  # type: ignore[arg-type]
        mc_labels=mc if all(m is not None for m in mc) else None,  # type: ignore[arg-type]
        num_bins=num_bins,
    )
    metrics["val_loss"] = evaluate(model, [], val_batches)["val_value_loss"]
    return metrics


def training_setup(
    model: torch.nn.Module, config: ValueTrainConfig
) -> tuple[torch.optim.Optimizer, SFTConfig, torch.Generator]:
    """AdamW, the learning-rate schedule (no warm-up, cosine to ``min_lr_ratio``, read with
    :func:`~qstar.training.sft.lr_at`) and the seeded shuffling generator of epoch training."""
    schedule = SFTConfig(
        epochs=config.epochs, lr=config.lr, min_lr_ratio=config.min_lr_ratio, warmup_frac=0.0
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return optimizer, schedule, torch.Generator().manual_seed(config.seed)


class EarlyStopping:
    """Early stopping on a validation loss; keeps a copy of the best epoch's weights.

    ``update(epoch, loss)`` returns whether the epoch improved on the best loss by more than
    ``min_delta``; ``stop`` turns true after ``patience`` epochs in a row without improvement;
    ``restore()`` loads the best weights back (the last ones when no epoch improved)."""

    def __init__(self, model: torch.nn.Module, patience: int, min_delta: float = 1e-4) -> None:
        self.model, self.patience, self.min_delta = model, patience, min_delta
        self.best_loss, self.best_epoch, self.bad_epochs = math.inf, 0, 0
        self._state: dict[str, Any] | None = None

    def update(self, epoch: int, loss: float) -> bool:
        improved = loss < self.best_loss - self.min_delta
        if improved:
            self.best_loss, self.best_epoch, self.bad_epochs = loss, epoch, 0
            self._state = copy.deepcopy(self.model.state_dict())
        else:
            self.bad_epochs += 1
        return improved

    @property
    def stop(self) -> bool:
        return self.bad_epochs >= self.patience

    def restore(self) -> None:
        if self._state is not None:
            self.model.load_state_dict(self._state)


def train_values(
    model: GPT,
    tokenizer: Tokenizer,
    train: Sequence[StepExample],
    val: Sequence[StepExample],
    config: ValueTrainConfig,
    *,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    meta: dict[str, Any] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train the value head (and trunk) of ``model`` in place; return the history and best epoch.

    Without validation examples every epoch counts as an improvement (no early stopping).
    """
    if not train:
        raise ConfigError("no training examples (is the label file empty, or all of it held out?)")
    block, pad, device = model.config.block_size, tokenizer.pad_id, torch.device(config.device)
    enc = [encode_value_example(tokenizer, ValueExample(e.prompt, e.target), block_size=block) for e in train]
    val_enc = [
        encode_value_example(tokenizer, ValueExample(e.prompt, e.target), block_size=block) for e in val
    ]
    bs = config.batch_size
    val_batches = [
        make_value_batch(val_enc[i : i + bs], pad_id=pad, device=device) for i in range(0, len(val_enc), bs)
    ]
    steps_per_epoch = math.ceil(len(enc) / bs)
    total = config.epochs * steps_per_epoch
    model.to(device)
    optimizer, schedule, generator = training_setup(model, config)
    history: list[dict[str, Any]] = []
    stopper, step = EarlyStopping(model, config.patience, config.min_delta), 0
    start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        model.train()
        losses = []
        for idx in torch.randperm(len(enc), generator=generator).split(bs):
            batch = make_value_batch([enc[i] for i in idx.tolist()], pad_id=pad, device=device)
            m = train_step(
                model,
                optimizer,
                None,
                batch,
                lr=lr_at(step, total, schedule),
                grad_clip=config.grad_clip,
                value_loss_weight=1.0,
            )
            losses.append(m["value_loss"])
            step += 1
        record: dict[str, Any] = {"epoch": epoch, "step": step, "train_loss": sum(losses) / len(losses)}
        record.update(_val_metrics(model, tokenizer, val, val_batches, config.num_bins))
        record["seconds"] = round(time.perf_counter() - start, 2)
        loss = record.get("val_loss", -epoch)  # no val set: always "improves"
        record["best"] = stopper.update(epoch, loss)
        history.append(record)
        if record["best"] and checkpoint_dir is not None:
            info = {**(meta or {}), "epoch": epoch, "metrics": record, "train_config": asdict(config)}
            save_checkpoint(checkpoint_dir, model, tokenizer, meta=info)
        if on_epoch is not None:
            on_epoch(record)
        if stopper.stop:
            break
    stopper.restore()
    model.eval()
    best_epoch = stopper.best_epoch
    best = next(r for r in history if r["epoch"] == best_epoch) if best_epoch else history[-1]
    summary = {
        "best_epoch": best_epoch,
        "best": best,
        "history": history,
        "num_train": len(train),
        "num_val": len(val),
        "seconds": time.perf_counter() - start,
    }
    if checkpoint_dir is not None:
        info = {**(meta or {}), "epoch": best_epoch, "metrics": best, "history": history}
        save_checkpoint(checkpoint_dir, model, tokenizer, meta={**info, "train_config": asdict(config)})
    return summary


def fitted_q_iteration(
    model: GPT,
    tokenizer: Tokenizer,
    task: Task,
    trees: Sequence[Tree],
    config: ValueTrainConfig,
    *,
    num_iterations: int = 2,
    gamma: float = 1.0,
    extra: Sequence[StepExample] = (),
    reward_fn: Callable[[Tree, int], float | None] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    meta: dict[str, Any] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Fitted Q-iteration: round 0 trains on the exact in-tree backup of the outcomes; round
    ``k > 0`` on ``r + gamma * max_a' Q_{k-1}(s', a')`` with ``Q_{k-1}`` the model after round
    ``k - 1`` (trees must hold states: read them with a task). ``extra`` examples (e.g. MC
    labels) join every round."""
    rounds = []
    for k in range(num_iterations):
        q_fn = None if k == 0 else QValueScorer(task, TinyGPTPolicy(model, tokenizer))
        examples = examples_from_trees(trees, gamma=gamma, q_fn=q_fn, reward_fn=reward_fn) + list(extra)
        train, val = split_by_problem(examples, config.val_frac, config.seed)
        info = {**(meta or {}), "fqi_iteration": k}
        summary = train_values(
            model, tokenizer, train, val, config, checkpoint_dir=checkpoint_dir, meta=info, on_epoch=on_epoch
        )
        rounds.append({"iteration": k, **summary})
    return rounds


def load_trees(path: str | os.PathLike[str], task: Task | None) -> tuple[list[Tree], list[tuple[int, str]]]:
    """Trees from a JSONL file: one ``Tree.to_json()`` object a line, or a search result with a
    ``"tree"`` field. Bad lines come back as (line number, reason); states are rebuilt when a
    task is given."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ConfigError(f"cannot read trees file {str(p)!r}: {err.strerror or err}") from err
    trees, errors = [], []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            obj = obj.get("tree", obj) if isinstance(obj, dict) else obj
            if not isinstance(obj, dict):
                raise ValueError("expected a JSON object")
            trees.append(Tree.from_json(obj, task))
        except (ValueError, KeyError, TypeError) as err:
            errors.append((lineno, str(err) or type(err).__name__))
    return trees, errors
