"""Expert iteration: train the tiny GPT with its own search, from random weights and the rules.

AlphaGo Zero's loop (Silver et al. 2017) and ExIt (Anthony et al. 2017) for reasoning steps;
"train with System 2, infer with System 1" in the words of the mission. Each round:

1. **collect** (:func:`qstar.training.workers.collect`, jobs over problems in a process pool):
   search (MCTS or Q*) with the current policy as prior and its value head as scorer, on
   training problems only;
2. **targets** (:mod:`qstar.training.targets`): policy targets (root visit distributions, or
   the verified paths) and value targets (verified reachability: 1 where the search found a
   verified answer below a state, 0 where it exhausted the subtree) merged into a replay store;
3. **update** (:func:`update`): the weighted next-token loss towards the policy targets (the
   cross-entropy between ``pi`` and the model's distribution over the whole step text, so the
   model learns both to write legal steps and which to prefer) plus the value loss, with the
   pieces of :mod:`qstar.training.sft`;
4. **evaluate**: System 1 (greedy decoding, no search) and System 2 (search at a fixed budget)
   on the val split; test only once, at the end.

No oracle and no human solution enters: the only judge is the task's verifier. Problems come
from the train split or are generated from the rules (:mod:`qstar.training.loop_data`); an
explicit check stops the run if a test or val problem is ever about to be searched or trained
on. The run directory and exact resume are :mod:`qstar.training.runs`. Every function a worker runs is pure (a job in, a dict out, the policy
read from a checkpoint path), so the same jobs can run in a Ray cluster.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from qstar.errors import ConfigError
from qstar.policy.tinygpt.model import GPT, GPTConfig
from qstar.policy.tinygpt.tokenizer import Tokenizer
from qstar.tasks.base import Task
from qstar.tasks.registry import get_task
from qstar.tracking import MetricsLogger, Tracker
from qstar.training.loop_config import LoopConfig, sft_config
from qstar.training.loop_data import (
    Replay,
    derive_seed,
    held_out_headers,
    held_out_texts,
    rule_steps,
    split_choice,
)
from qstar.training.runs import RunDir
from qstar.training.sft import (
    LMExample,
    ValueExample,
    _make_optimizer,
    encode_lm_example,
    encode_value_example,
    lr_at,
    make_lm_batch,
    make_value_batch,
    train_step,
)
from qstar.training.workers import Workers, collect, evaluate

__all__ = ["LoopConfig", "sft_config", "make_optimizer", "update", "run_loop"]


def update(
    model: GPT,
    optimizer: torch.optim.Optimizer,
    tokenizer: Tokenizer,
    replay: Replay,
    config: LoopConfig,
    round_index: int,
    cache: dict[Any, Any],
    *,
    task: Task | None = None,
    held_out: frozenset[str] = frozenset(),
) -> dict[str, float]:
    """``config.train_steps`` steps on batches drawn from the whole replay store.

    Policy batches: a state drawn uniformly from the store, then one of its steps drawn from
    the target ``pi`` smoothed towards uniform over the state's steps (``policy_smoothing``);
    the next-token loss on ``step + "\n"`` then estimates, without bias, the cross-entropy
    between ``pi`` and the model's probability of each whole step line, so the model learns
    both to write legal steps and which ones to prefer, at one sequence per state. Value
    batches are half positives, half negatives when ``balance_values``.

    A share ``rules_fraction`` of every policy batch (all of it while no state has a target
    yet) is :func:`~qstar.training.loop_data.rule_steps` of ``task``: uniformly drawn legal
    steps at random states generated from the rules, none from ``held_out`` problems. Their loss
    covers only what follows the choice (:func:`~qstar.training.loop_data.split_choice`: the
    result and the numbers left), so they teach the model to write legal lines for System 1
    and say nothing about which step to take."""
    sft = sft_config(config)
    block = model.config.block_size

    def enc_lm(prompt: str, step: str) -> Any:
        key = ("lm", prompt, step)
        if key not in cache:
            cache[key] = encode_lm_example(
                tokenizer, LMExample(prompt, step + "\n"), block_size=block, append_eos=False
            )
        return cache[key]

    def enc_value(prompt: str, v: float) -> Any:
        key = ("v", prompt, v)
        if key not in cache:
            cache[key] = encode_value_example(tokenizer, ValueExample(prompt, v), block_size=block)
        return cache[key]

    eps = config.policy_smoothing
    states = [
        (p, list(d), [(1 - eps) * w + eps / len(d) for w in d.values()]) for p, d in replay.policy.items()
    ]
    values = [enc_value(p, v) for p, v in replay.values.items()]
    pos = [i for i, (_, v) in enumerate(values) if v >= 0.5]
    neg = [i for i, (_, v) in enumerate(values) if v < 0.5]
    gen = torch.Generator().manual_seed(derive_seed(config.seed, "train", round_index))
    pad, bs, vbs = tokenizer.pad_id, config.batch_size, config.value_batch_size
    device = next(model.parameters()).device  # batches go where the model is (CPU or GPU)
    use_rules = config.rules_fraction > 0 and task is not None
    num_rules = (round(bs * config.rules_fraction) if states else bs) if use_rules else 0
    rules_rng = random.Random(derive_seed(config.seed, "rules", round_index))

    def draw_rules(n: int) -> list[Any]:
        return rule_examples(task, n, rules_rng, held_out, tokenizer, block) if n else []

    def draw(pool: Sequence[int], n: int) -> list[int]:
        return [pool[i] for i in torch.randint(len(pool), (n,), generator=gen).tolist()]

    def draw_lm(n: int) -> list[Any]:
        out = []
        for i, u in zip(draw(range(len(states)), n), torch.rand(n, generator=gen).tolist(), strict=True):
            prompt, steps, probs = states[i]
            k, acc = 0, probs[0]
            while u * sum(probs) >= acc and k < len(steps) - 1:  # inverse CDF
                k += 1
                acc += probs[k]
            out.append(enc_lm(prompt, steps[k]))
        return out

    sums: dict[str, float] = {}
    model.train()
    try:
        for step in range(config.train_steps):
            lm_rows = (draw_lm(bs - num_rules) if states else []) + draw_rules(num_rules)
            lm_batch = make_lm_batch(lm_rows, pad_id=pad, device=device) if lm_rows else None
            if config.balance_values and pos and neg:
                chosen = draw(pos, vbs // 2) + draw(neg, vbs - vbs // 2)
            else:
                chosen = draw(range(len(values)), vbs) if values else []
            value_batch = (
                make_value_batch([values[i] for i in chosen], pad_id=pad, device=device) if chosen else None
            )
            if lm_batch is None and value_batch is None:
                break
            global_step = (round_index - 1) * config.train_steps + step
            m = train_step(
                model,
                optimizer,
                lm_batch,
                value_batch,
                lr=lr_at(global_step, sft.steps or 1, sft),
                grad_clip=sft.grad_clip,
                value_loss_weight=sft.value_loss_weight,
                precision=sft.precision,
            )
            for k, v in m.items():
                sums[k] = sums.get(k, 0.0) + v
    finally:
        model.eval()
    n = max(1, config.train_steps)
    return {
        # None (JSON null) when there was nothing to train that head on yet.
        "lm_loss": sums["lm_loss"] / n if "lm_loss" in sums else None,
        "value_loss": sums["value_loss"] / n if "value_loss" in sums else None,
        "policy_states": len(states),
        "value_examples": len(values),
        "value_positive": len(pos),
    }


def rule_examples(
    task: Task, n: int, rng: random.Random, held_out: frozenset[str], tokenizer: Tokenizer, block: int
) -> list[Any]:
    """``n`` encoded LM examples of :func:`~qstar.training.loop_data.rule_steps`: the prompt
    plus the step's choice is context, only the rest (:func:`split_choice`) is trained."""
    out = []
    for prompt, step in rule_steps(task, n, rng, held_out):
        choice, rest = split_choice(step)
        example = LMExample(prompt + choice, rest + "\n")
        out.append(encode_lm_example(tokenizer, example, block_size=block, append_eos=False))
    return out


def rules_warmup(
    model: GPT,
    tokenizer: Tokenizer,
    task: Task,
    held_out: frozenset[str],
    config: LoopConfig,
) -> dict[str, float]:
    """``config.rules_warmup_steps`` LM steps on rule lines only (:func:`rule_examples`), before
    the first round: the random model learns to write legal lines (results and numbers left)
    without any preference between steps. Its own optimizer and schedule (warm-up, cosine);
    deterministic from the run's seed."""
    steps = config.rules_warmup_steps
    sft = replace(sft_config(config), steps=steps)
    optimizer = _make_optimizer(model, sft)
    rng = random.Random(derive_seed(config.seed, "rules-warmup"))
    block, loss = model.config.block_size, 0.0
    model.train()
    try:
        for step in range(steps):
            batch = make_lm_batch(
                rule_examples(task, config.batch_size, rng, held_out, tokenizer, block),
                pad_id=tokenizer.pad_id,
            )
            m = train_step(
                model,
                optimizer,
                batch,
                None,
                lr=lr_at(step, steps, sft),
                grad_clip=sft.grad_clip,
                value_loss_weight=0.0,
                precision=sft.precision,
            )
            loss = m["lm_loss"]
    finally:
        model.eval()
    return {"rules_warmup_steps": steps, "rules_warmup_final_lm_loss": loss}


def make_optimizer(model: GPT, config: LoopConfig) -> torch.optim.Optimizer:
    return _make_optimizer(model, sft_config(config))


# -- the loop ---------------------------------------------------------------------------------------
#: Fields that may differ when a run is resumed (they decide speed and reporting, not numbers).
RESUMABLE_CHANGES = ("workers", "num_saved_trees", "test_at_end")


def _fresh_counters() -> dict[str, Any]:
    return {
        "train_seen": 0,
        "tokens": 0,
        "train_cpu_seconds": 0.0,
        "eval_cpu_seconds": 0.0,
        "wall_seconds": 0.0,
    }


def _initial_model(config: LoopConfig) -> tuple[GPT, Tokenizer]:
    """Random weights from ``config.seed``, or the checkpoint ``config.init`` (same shape)."""
    if config.init is None:
        tokenizer = Tokenizer()
        gpt = GPTConfig(
            tokenizer.vocab_size,
            config.block_size,
            config.n_layer,
            config.n_head,
            config.n_embd,
            position=config.position,
        )
        return GPT(gpt, seed=config.seed).eval(), tokenizer
    from qstar.policy.tinygpt.checkpoint import load_checkpoint

    ckpt = load_checkpoint(config.init)
    shape = {
        k: getattr(ckpt.model.config, k) for k in ("n_layer", "n_head", "n_embd", "block_size", "position")
    }
    wanted = {k: getattr(config, k) for k in shape}
    if shape != wanted:
        raise ConfigError(f"init checkpoint {config.init} has shape {shape}; the loop config says {wanted}")
    return ckpt.model.eval(), ckpt.tokenizer


def _open_run(
    config: LoopConfig, rd: RunDir, resume: bool, task: Task, held_out: frozenset[str]
) -> tuple[GPT, Tokenizer, Any, Replay, dict, list]:
    if resume:
        saved = rd.read_config()
        now = config.to_json()
        # A field newer than the saved run (e.g. ``precision``) had its default then.
        saved = {**LoopConfig().to_json(), **saved}
        diff = sorted(k for k in now if k not in RESUMABLE_CHANGES and saved.get(k) != now[k])
        if diff:
            raise ConfigError(f"cannot resume {rd.path} with other settings: {', '.join(diff)} differ")
    else:
        rd.create(config.to_json())
    latest = rd.latest_round() if resume else None
    if latest is None:
        model, tokenizer = _initial_model(config)
        replay, counters, history = Replay(), _fresh_counters(), []
        if config.rules_warmup_steps:
            cpu = time.process_time()
            counters["rules_warmup"] = rules_warmup(model, tokenizer, task, held_out, config)
            counters["train_cpu_seconds"] += time.process_time() - cpu
        optimizer = make_optimizer(model, config)
        rd.save_checkpoint(0, model, tokenizer, meta={"trainer": f"loop-{config.method}", "round": 0})
        rd.commit_round(0, optimizer=optimizer, replay=replay.to_json(), counters=counters, history=history)
        return model, tokenizer, optimizer, replay, counters, history
    state = rd.load_round(latest)
    optimizer = make_optimizer(state.model, config)
    if state.optimizer_state is not None:
        optimizer.load_state_dict(state.optimizer_state)
    rd.rewrite_metrics(state.history)
    return (
        state.model,
        state.tokenizer,
        optimizer,
        Replay.from_json(state.replay),
        state.counters,
        state.history,
    )


def run_loop(
    config: LoopConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    trackers: Sequence[Tracker] = (),
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run (or resume) the loop in ``run_dir``; returns one metrics dict per round.

    ``on_event(kind, data)`` hears ``"start"``, ``"collected"``, ``"updated"``, ``"round"`` (the
    round's metrics line) and ``"test"`` for progress displays; raising in it stops the run like
    a kill would."""
    emit = on_event or (lambda kind, data: None)
    task = get_task(config.task)
    held_out, headers = held_out_texts(task), held_out_headers(task)
    rd = RunDir(run_dir)
    model, tokenizer, optimizer, replay, counters, history = _open_run(config, rd, resume, task, held_out)
    eval_problems = task.problems(config.eval_split)[: config.num_eval_problems]
    workers = Workers(config.workers)
    logger = MetricsLogger(rd.metrics_file, trackers)
    cache: dict[Any, Any] = {}
    try:
        for r in range(len(history) + 1, config.rounds + 1):
            wall = time.perf_counter()
            emit("start", {"round": r})
            ckpt = str(rd.checkpoint_dir(r - 1))
            collected = rd.load_collected(r)
            if collected is None:
                collected = collect(config, task, workers, ckpt, r, counters["train_seen"], held_out)
                for rec in collected["records"]:
                    if "tree" in rec:
                        rd.save_tree(r, rec["id"], rec.pop("tree"))
                rd.save_collected(r, collected)
            records = collected["records"]
            emit("collected", {"round": r, "problems": len(records)})
            cpu = time.process_time()
            replay.merge(records, union=config.policy_target == "verified", held_out_headers=headers)
            losses = update(
                model, optimizer, tokenizer, replay, config, r, cache, task=task, held_out=held_out
            )
            rd.save_checkpoint(r, model, tokenizer, meta={"trainer": f"loop-{config.method}", "round": r})
            update_cpu = time.process_time() - cpu
            emit("updated", {"round": r, **losses})
            n = max(1, len(records))
            tokens = sum(rec["cost"]["tokens"] for rec in records)
            counters["train_seen"] += collected["train_used"]
            counters["tokens"] += tokens
            counters["train_cpu_seconds"] += collected["cpu_seconds"] + update_cpu
            metrics: dict[str, Any] = {
                "round": r,
                "method": config.method if config.method == "rft" else config.search,
                "task": config.task,
                "problem_source": config.problem_source,
                "problems_searched": len(records),
                # Share of problems whose search (or samples) found a verified answer.
                "search_solve_rate": sum(rec["found"] for rec in records) / n,
                "search_expansions": sum(rec["cost"]["expansions"] for rec in records) / n,
                "tokens": tokens,
                "tokens_total": counters["tokens"],
                **losses,
                "collect_cpu_seconds": collected["cpu_seconds"],
                "update_cpu_seconds": update_cpu,
            }
            if r % config.eval_every == 0 or r == config.rounds:
                metrics.update(
                    evaluate(
                        config, task, workers, str(rd.checkpoint_dir(r)), eval_problems, config.eval_split
                    )
                )
                counters["eval_cpu_seconds"] += metrics["eval_cpu_seconds"]
            counters["wall_seconds"] += time.perf_counter() - wall
            metrics["train_cpu_minutes"] = counters["train_cpu_seconds"] / 60
            metrics["eval_cpu_minutes"] = counters["eval_cpu_seconds"] / 60
            metrics["wall_minutes"] = counters["wall_seconds"] / 60
            history.append(metrics)
            rd.commit_round(
                r, optimizer=optimizer, replay=replay.to_json(), counters=counters, history=history
            )
            logger.log(metrics)
            emit("round", metrics)
        if config.test_at_end:
            test = evaluate(
                config, task, workers, str(rd.checkpoint_dir(config.rounds)), task.problems("test"), "test"
            )
            (rd.path / "test_eval.json").write_text(
                json.dumps({"round": config.rounds, **test}, indent=1) + "\n"
            )
            emit("test", test)
    finally:
        workers.close()
        logger.close()
    return history
