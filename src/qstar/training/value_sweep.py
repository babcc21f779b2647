"""A value sweep: one full-width Bellman backup over the states a step below the train problems.

The value head a search-trained model ends with judges states near the answer well (the
last-but-one states of Game of 24, two numbers left: AUC about 0.97 on val) and states
further up much worse (three numbers left: about 0.82), because the loop's searches settle few
of them. A sweep fixes the upper level from the lower one without any label: for every state
``depth`` steps below a train problem (all of them, or ``states_per_problem`` drawn at random),
it expands the state fully with the task's rules and sets its target to

    discount * max over children c of ( verifier outcome of c if c is final, else V(c) )

with ``V`` the model's own value head, then fine-tunes the value head on those targets. That
is one sweep of fitted value iteration (Munos & Szepesvari 2008; the full-width one-step
backup of TD-Gammon and of Q*'s deliberation, Wang et al. 2024 "Q*: Improving Multi-step
Reasoning for LLMs with Deliberative Planning"); it is the loop's ``"lookahead"`` value target
(:mod:`qstar.training.targets`) applied to every state at that depth rather than only the
states a sampler happened to expand. No oracle and no test or val problem is used.

``anchor_fraction`` of the children's own values are trained on as targets too, so that the
lower level's judgement, which the targets come from, stays where it was; and the value head
shares its trunk with the policy, so ``lm_anchor`` keeps the policy's next-token distributions
on the swept prompts close to the initial model's (a KL penalty; without it a sweep of
Game of 24 left the policy's greedy answers at 0%).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from qstar.errors import ConfigError
from qstar.policy.tinygpt.checkpoint import load_checkpoint, save_checkpoint
from qstar.policy.tinygpt.model import GPT
from qstar.policy.tinygpt.tokenizer import Tokenizer
from qstar.rewards.lookahead import LookaheadScorer
from qstar.rewards.value_head import ValueHeadScorer
from qstar.search.checks import check_float, check_int
from qstar.tasks.base import State, Task
from qstar.tasks.registry import get_task
from qstar.training.loop_data import check_not_held_out, derive_seed, held_out_texts
from qstar.training.precision import autocast, check_precision
from qstar.training.sft import (
    SFTConfig,
    ValueBatch,
    ValueExample,
    encode_value_example,
    lr_at,
    make_value_batch,
)
from qstar.training.workers import Job, Workers, load_policy, records_cost, unpack_job
from qstar.types import Cost, Problem

__all__ = ["SweepConfig", "states_at_depth", "sweep_job", "sweep_examples", "fit_values", "value_sweep"]


@dataclass(frozen=True, kw_only=True)
class SweepConfig:
    """``depth``: the swept states are this many steps below each problem. ``states_per_problem``:
    at most this many of them per problem, drawn with the seed (0: all). ``discount``: the
    loop's value discount (its ``--value-discount``, 0.9 by default), so the targets match the
    scale the value head was trained on. ``anchor_fraction``: share of the children whose own
    value is kept as a target. ``steps``, ``batch_size``, ``lr``: the value head's fine-tuning,
    in ``precision`` "fp32" or "bf16" (mixed, :mod:`qstar.training.precision`).
    ``workers``: processes computing targets (results do not depend on it)."""

    depth: int = 1
    states_per_problem: int = 0
    discount: float = 0.9
    anchor_fraction: float = 0.02
    lm_anchor: float = 1.0
    steps: int = 600
    batch_size: int = 64
    lr: float = 5e-4
    seed: int = 0
    workers: int = 1
    precision: str = "fp32"

    def __post_init__(self) -> None:
        check_precision("sweep", self.precision)
        check_int("sweep", "depth", self.depth)
        check_int("sweep", "states_per_problem", self.states_per_problem, minimum=0)
        check_float("sweep", "discount", self.discount, low=0.0, low_open=True, high=1.0)
        check_float("sweep", "anchor_fraction", self.anchor_fraction, low=0.0, high=1.0)
        check_float("sweep", "lm_anchor", self.lm_anchor, low=0.0)
        for name in ("steps", "batch_size", "workers"):
            check_int("sweep", name, getattr(self, name))
        check_float("sweep", "lr", self.lr, low=0.0, low_open=True)


def states_at_depth(task: Task, problem: Problem, depth: int) -> list[State]:
    """The distinct non-final states ``depth`` legal steps below ``problem`` (distinct by their
    rendering, the text the value head reads), in the order the rules list them."""
    frontier = [task.initial_state(problem)]
    for _ in range(depth):
        seen: dict[str, State] = {}
        for state in frontier:
            if task.is_terminal(state):
                continue
            for step in task.legal_steps(state) or []:
                child = task.apply(state, step)
                seen.setdefault(task.render(child), child)
        frontier = list(seen.values())
    return [s for s in frontier if not task.is_terminal(s)]


def sweep_job(job: Job) -> list[dict[str, Any]]:
    """Targets of the swept states of each problem of ``job`` (``job.knobs`` = the
    :class:`SweepConfig` fields): ``targets`` and ``anchors`` as ``[prompt, value]`` pairs,
    and the value calls' ``cost`` (pure: same job, same records)."""
    start = time.process_time()
    task, problems, seeds = unpack_job(job)
    config = SweepConfig(**job.knobs)
    policy = load_policy(job.checkpoint)
    out = []
    for problem, seed in zip(problems, seeds, strict=True):
        rng = np.random.default_rng(seed)
        states = states_at_depth(task, problem, config.depth)
        if config.states_per_problem and len(states) > config.states_per_problem:
            keep = sorted(rng.choice(len(states), size=config.states_per_problem, replace=False))
            states = [states[i] for i in keep]
        before = policy.usage.snapshot()
        targets, anchors = _backups(task, policy, states, config, rng)
        # Value calls read prompts and write nothing: as everywhere in qstar, prompt tokens are
        # not counted in ``Cost.tokens``; they are reported apart (``prompt_tokens``).
        cost = Cost(model_calls=policy.usage.model_calls - before.model_calls, expansions=len(states))
        read = policy.usage.tokens_prompt - before.tokens_prompt
        out.append(
            {
                "id": problem.id,
                "text": problem.text,
                "targets": targets,
                "anchors": anchors,
                "cost": cost.to_json(),
                "prompt_tokens": read,
            }
        )
    if out:
        out[-1]["cpu_seconds"] = time.process_time() - start
    return out


def _backups(
    task: Task, policy: Any, states: Sequence[State], config: SweepConfig, rng: np.random.Generator
) -> tuple[list[list[Any]], list[list[Any]]]:
    """``(targets, anchors)`` of one problem's swept states (module docstring)."""
    # The targets are one-step lookahead values; the children's own values come with them.
    lookahead = LookaheadScorer(task, ValueHeadScorer(task, policy), discount=config.discount)
    targets = [[task.render(s), v] for s, v in zip(states, lookahead.value(states), strict=True)]
    values = lookahead.base_values
    open_prompts = list(values)
    count = round(config.anchor_fraction * len(open_prompts))
    picked = sorted(rng.choice(len(open_prompts), size=count, replace=False)) if count else []
    anchors = [[open_prompts[i], values[open_prompts[i]]] for i in picked]
    return targets, anchors


def sweep_examples(records: Sequence[dict[str, Any]]) -> tuple[list[ValueExample], dict[str, int]]:
    """The value examples of :func:`sweep_job` records (targets, then anchors) and their sizes."""
    targets = [ValueExample(p, min(1.0, max(0.0, v))) for r in records for p, v in r["targets"]]
    anchors = [ValueExample(p, min(1.0, max(0.0, v))) for r in records for p, v in r["anchors"]]
    return targets + anchors, {"problems": len(records), "targets": len(targets), "anchors": len(anchors)}


def value_sweep(
    init: str | Path,
    out: str | Path,
    config: SweepConfig,
    *,
    task_name: str = "game24",
    problems: Sequence[Problem] | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Sweep checkpoint ``init``'s value head over ``problems`` (default: the task's train split;
    never test or val) and save the fine-tuned copy to ``out``. Returns the checkpoint's
    ``meta``: config, data sizes, the cost of the value calls, training metrics, CPU seconds."""
    task = get_task(task_name)
    problems = list(task.problems("train") if problems is None else problems)
    if not problems:
        raise ConfigError("value sweep needs at least one training problem")
    if task.legal_steps(task.initial_state(problems[0])) is None:
        raise ConfigError(f"value sweep needs a task that enumerates its steps; {task.name!r} does not")
    check_not_held_out(problems, held_out_texts(task))
    cpu0 = time.process_time()
    records = _collect(task, problems, str(init), config, progress)
    examples, sizes = sweep_examples(records)
    cost = records_cost(records)
    sizes["prompt_tokens"] = sum(r["prompt_tokens"] for r in records)
    worker_cpu = sum(r.get("cpu_seconds", 0.0) for r in records) if config.workers > 1 else 0.0
    log(
        f"sweep: {sizes['targets']} backed-up targets and {sizes['anchors']} anchors from {len(records)} problems"
    )
    if not sizes["targets"]:
        raise ConfigError(f"no state {config.depth} step(s) below the problems is left to sweep (--depth)")
    ckpt = load_checkpoint(init)
    reference = load_checkpoint(init).model if config.lm_anchor > 0 else None
    metrics = fit_values(ckpt.model, ckpt.tokenizer, examples, config, reference=reference, progress=progress)
    card = {
        **(meta or {}),
        "trainer": "sweep",
        "init": str(init),
        "task": task.name,
        "sweep_config": asdict(config),
        "data": sizes,
        "sweep_cost": cost.to_json(),
        "train_metrics": metrics,
        "cpu_seconds": time.process_time() - cpu0 + worker_cpu,
    }
    save_checkpoint(out, ckpt.model, ckpt.tokenizer, meta=card)
    return card


def fit_values(
    model: GPT,
    tokenizer: Tokenizer,
    examples: Sequence[ValueExample],
    config: SweepConfig,
    *,
    reference: GPT | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """Fine-tune ``model``'s value head (and trunk) on ``examples`` for ``config.steps`` steps
    (AdamW, warm-up and cosine as :func:`~qstar.training.sft.train_sft`), plus, with a
    ``reference`` model, ``config.lm_anchor`` times the KL divergence of ``model``'s next-token
    distributions from the reference's at every prompt position. Returns the last 50 steps'
    mean ``value_loss`` and ``lm_kl``, ``step`` and ``seconds``."""
    from rich.progress import Progress

    sft = SFTConfig(steps=config.steps, batch_size=config.batch_size, lr=config.lr, seed=config.seed)
    data = [encode_value_example(tokenizer, e, block_size=model.config.block_size) for e in examples]
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=sft.lr, betas=sft.betas, weight_decay=sft.weight_decay
    )
    generator = torch.Generator().manual_seed(config.seed)
    history: list[tuple[float, float]] = []
    start = time.perf_counter()
    was_training = model.training
    model.train()
    try:
        with Progress(disable=not progress, transient=True) as bar:
            shown = bar.add_task("value head", total=config.steps)
            for step in range(config.steps):
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step, config.steps, sft)
                rows = torch.randint(len(data), (config.batch_size,), generator=generator).tolist()
                batch = make_value_batch([data[i] for i in rows], pad_id=tokenizer.pad_id)
                with autocast(config.precision):
                    value_loss, kl = _sweep_losses(model, reference, batch, config.lm_anchor)
                loss = value_loss + config.lm_anchor * kl
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), sft.grad_clip)
                optimizer.step()
                history.append((value_loss.item(), kl.item()))
                bar.advance(shown)
    finally:
        model.train(was_training)
    tail = history[-50:]
    return {
        "step": config.steps,
        "value_loss": sum(v for v, _ in tail) / len(tail),
        "lm_kl": sum(k for _, k in tail) / len(tail),
        "seconds": time.perf_counter() - start,
    }


def _sweep_losses(
    model: GPT, reference: GPT | None, batch: ValueBatch, lm_anchor: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The value head's mean binary cross-entropy on ``batch``, and the KL divergence of
    ``model``'s next-token distributions from ``reference``'s at its real positions (0 without
    a reference or an anchor)."""
    hidden = model.hidden_states(batch.input_ids)  # (B, T, C)
    last = hidden[torch.arange(len(hidden)), batch.last_index]
    logits = model.value_head(last).squeeze(-1)
    value_loss = F.binary_cross_entropy_with_logits(logits, batch.targets)
    kl = torch.zeros(())
    if reference is not None and lm_anchor > 0:
        real = torch.arange(hidden.shape[1])[None, :] <= batch.last_index[:, None]
        logp = F.log_softmax(model.lm_head(hidden[real]), dim=-1)
        with torch.no_grad():
            ref = F.log_softmax(reference.lm_head(reference.hidden_states(batch.input_ids)[real]), dim=-1)
        kl = F.kl_div(logp, ref, log_target=True, reduction="batchmean")
    return value_loss, kl


def _collect(
    task: Task, problems: Sequence[Problem], checkpoint: str, config: SweepConfig, progress: bool
) -> list[dict[str, Any]]:
    """Run :func:`sweep_job` over ``problems`` in jobs of 16, with ``config.workers`` processes."""
    from rich.progress import Progress

    seeds = [derive_seed(config.seed, "sweep", p.text) for p in problems]
    per_job = 16
    jobs = [
        Job(
            task.name,
            Job.pack(problems[i : i + per_job], seeds[i : i + per_job]),
            checkpoint,
            knobs=asdict(config),
        )
        for i in range(0, len(problems), per_job)
    ]
    workers = Workers(config.workers)
    records: list[dict[str, Any]] = []
    try:
        with Progress(disable=not progress, transient=True) as bar:
            shown = bar.add_task("value sweep", total=len(problems))
            wave = max(1, config.workers) * 2
            for i in range(0, len(jobs), wave):
                batch = workers.map(sweep_job, jobs[i : i + wave])
                records += batch
                bar.advance(shown, len(batch))
    finally:
        workers.close()
    return records
