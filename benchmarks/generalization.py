"""Does a loop model generalise, or remember its training puzzles? System 1 and 2 by split.

    python -m benchmarks.generalization --model CKPT [--model CKPT ...] [--limit 100]

For each checkpoint: System 1 (free greedy), System 1 restricted to legal steps, and System 2
(Q* at 11 expansions) on the first ``--limit`` puzzles of the Game of 24 train split (the loop
searched them), of val and of test (ToT ranks 901-1000), with the loop's own evaluation
(:func:`qstar.training.workers.evaluate`). A large train-val gap means the policy memorised the
puzzles it was trained on; a small one with low accuracy means it did not fit them either.

Writes ``benchmarks/results/generalization.json``.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from benchmarks.common import write_json
from qstar.cli.options import checkpoint_dir
from qstar.errors import ConfigError
from qstar.policy.tinygpt.policy import SHIPPED_CHECKPOINTS, shipped_checkpoint_dir
from qstar.tasks.registry import get_task
from qstar.training.loop_config import LoopConfig
from qstar.training.workers import Workers, evaluate

SPLITS = ("train", "val", "test")


def measure(checkpoint: str, limit: int, seed: int) -> dict[str, Any]:
    if checkpoint in SHIPPED_CHECKPOINTS:
        checkpoint = str(shipped_checkpoint_dir(checkpoint))
    task, config = get_task("game24"), LoopConfig(task="game24", seed=seed)
    out: dict[str, Any] = {}
    for split in SPLITS:
        got = evaluate(config, task, Workers(1), checkpoint, task.problems(split)[:limit], split)
        out[split] = {
            "system1": round(100 * got[f"system1_{split}_acc"], 1),
            "system1_legal": round(100 * got.get(f"system1_legal_{split}_acc", 0.0), 1),
            "system2_qstar_11": round(100 * got[f"system2_{split}_acc"], 1),
        }
        print(f"{checkpoint} {split}: {out[split]}", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--model", action="append", required=True, help="checkpoint dir, default or sft-oracle (repeatable)"
    )
    ap.add_argument("--limit", type=int, default=100, help="puzzles per split")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    for model in args.model:  # all checked before the first one spends minutes
        if model not in SHIPPED_CHECKPOINTS:
            try:
                checkpoint_dir(model, flag="--model")
            except ConfigError as error:
                ap.error(str(error))
    torch.set_num_threads(args.threads)
    results = {m: measure(m, args.limit, args.seed) for m in args.model}
    write_json("generalization", {"settings": vars(args), "results": results}, args.out)


if __name__ == "__main__":
    main()
