"""What limits System 1 of the tiny GPT: the targets, or the network? (issue 6 diagnostic)

    python -m benchmarks.system1_ceiling [--init default] [--steps 3000] [--limit 100]
    python -m benchmarks.system1_ceiling --init scratch --n-layer 6 --n-embd 256 --device cuda

``--init scratch`` trains a fresh GPT of the given shape instead (how the bound moves with
capacity); ``--device cuda`` trains and evaluates on a GPU.

A *diagnostic bound*, not a training method: it trains on the exhaustive oracle's labels,
which the flagship loop never sees. Starting from ``--init`` (a shipped model or a checkpoint
directory), it runs the loop's own update (:func:`qstar.training.expert_iteration.update`,
with rule lines) for ``--steps`` steps on *complete* targets for every Game-of-24 train puzzle:

- policy: at every solvable state reachable from a train puzzle, uniform over the steps whose
  result is still solvable (every right step, not one solution per puzzle);
- value: every child of those states labelled 1 (solvable) or 0.

It then measures System 1 (free and legal-step greedy) and System 2 (Q* at 11 expansions) on
train, val and test with :mod:`benchmarks.generalization`. If System 1 stays low on val/test even
with perfect and complete targets, the loop's targets are not what limits it: the network does
not generalise the choice of step. Val and test puzzles never enter the targets.

Writes ``benchmarks/results/system1_ceiling.json``.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import torch

from benchmarks.common import write_json
from benchmarks.generalization import measure
from qstar.policy.tinygpt.checkpoint import load_checkpoint, save_checkpoint
from qstar.policy.tinygpt.model import GPT, GPTConfig
from qstar.policy.tinygpt.policy import SHIPPED_CHECKPOINTS, shipped_checkpoint_dir
from qstar.policy.tinygpt.tokenizer import Tokenizer
from qstar.tasks.base import Task
from qstar.tasks.numbers_oracle import solvable_from
from qstar.tasks.registry import get_task
from qstar.training.expert_iteration import make_optimizer, update
from qstar.training.loop_config import LoopConfig
from qstar.training.loop_data import Replay, held_out_headers, held_out_texts


def complete_targets(task: Task, limit: int | None = None) -> Replay:
    """Oracle policy and value targets at every solvable state of the first ``limit`` (all)
    train puzzles."""
    replay, memo = Replay(), {}

    def solvable(state) -> bool:
        key = task.state_key(state)
        if key not in memo:
            memo[key] = solvable_from(task, state)
        return memo[key]

    for problem in task.problems("train")[:limit]:
        stack = [task.initial_state(problem)]
        while stack:
            state = stack.pop()
            prompt = task.render(state)
            if prompt in replay.policy:
                continue
            good = []
            for step in task.legal_steps(state) or []:
                child = task.apply(state, step)
                ok = solvable(child)
                if not task.is_terminal(child):
                    replay.values[task.render(child)] = float(ok)
                    if ok:
                        stack.append(child)
                if ok:
                    good.append(step.text)
            if good:
                replay.policy[prompt] = {text: 1.0 / len(good) for text in good}
    return replay


def initial_model(args: argparse.Namespace) -> tuple[GPT, Tokenizer]:
    """The model to train: a fresh GPT of the asked shape (``--init scratch``) or a checkpoint."""
    if args.init == "scratch":
        tokenizer = Tokenizer()
        shape = GPTConfig(tokenizer.vocab_size, n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd)
        return GPT(shape, seed=args.seed), tokenizer
    init = str(shipped_checkpoint_dir(args.init)) if args.init in SHIPPED_CHECKPOINTS else args.init
    ckpt = load_checkpoint(init)
    return ckpt.model, ckpt.tokenizer


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--init", default="default", help="default, sft-oracle, a checkpoint dir or scratch")
    ap.add_argument("--n-layer", type=int, default=3, help="with --init scratch")
    ap.add_argument("--n-head", type=int, default=4, help="with --init scratch")
    ap.add_argument("--n-embd", type=int, default=96, help="with --init scratch")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default="cpu", help="where the model trains (cpu or cuda)")
    ap.add_argument("--eval-threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3000, help="update steps on the complete targets")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--rules-fraction", type=float, default=0.25)
    ap.add_argument("--limit", type=int, default=100, help="puzzles per split evaluated")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-limit", type=int, default=None, help="train puzzles with targets (all)")
    ap.add_argument("--save", default="runs/system1-ceiling", help="where the trained model goes")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    task = get_task("game24")
    started = time.process_time()
    replay = complete_targets(task, args.train_limit)
    headers = held_out_headers(task)  # the loop's guard: no val/test prompt may be a target
    assert not any(p.split("\n", 1)[0] in headers for p in [*replay.policy, *replay.values])
    targets_cpu = time.process_time() - started
    print(f"{len(replay.policy)} policy states, {len(replay.values)} value labels", flush=True)
    model, tokenizer = initial_model(args)
    model.to(args.device)
    config = LoopConfig(
        task="game24",
        rounds=1,
        train_steps=args.steps,
        batch_size=args.batch_size,
        rules_fraction=args.rules_fraction,
        policy_smoothing=0.0,
        lr=args.lr,
        seed=args.seed,
    )
    optimizer = make_optimizer(model, config)
    started, wall = time.process_time(), time.perf_counter()
    losses = update(
        model, optimizer, tokenizer, replay, config, 1, {}, task=task, held_out=held_out_texts(task)
    )
    train_cpu, train_wall = time.process_time() - started, time.perf_counter() - wall
    print(f"trained {args.steps} steps in {train_wall:.0f} s: {losses}", flush=True)
    save_checkpoint(args.save, model, tokenizer, meta={"trainer": "benchmarks.system1_ceiling"})
    torch.set_num_threads(args.eval_threads)
    before = os.environ.get("QSTAR_DEVICE")
    os.environ["QSTAR_DEVICE"] = args.device  # the evaluation's policy goes where training ran
    try:
        results = measure(args.save, args.limit, args.seed)
    finally:
        if before is None:
            del os.environ["QSTAR_DEVICE"]
        else:
            os.environ["QSTAR_DEVICE"] = before
    payload: dict[str, Any] = {
        "settings": vars(args),
        "parameters": model.num_params(),
        "train_wall_minutes": round(train_wall / 60, 2),
        "policy_states": len(replay.policy),
        "value_labels": len(replay.values),
        "targets_cpu_minutes": round(targets_cpu / 60, 2),
        "train_cpu_minutes": round(train_cpu / 60, 2),
        "losses": losses,
        "results": results,
    }
    write_json("system1_ceiling", payload, args.out)


if __name__ == "__main__":
    main()
