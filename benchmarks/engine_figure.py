"""The engine figure of the search ladder: expansions/second of batched, prefix-sharing mcts
against the same search sending every candidate as its own model call.

    python -m benchmarks.engine_figure [--device cpu|cuda] [--batch 8] [--puzzles 20]
        [--expansions 64] [--model default] [--task game24] [--threads 1] [--out PATH]

Used by :mod:`benchmarks.search_ladder` (``--engine-puzzles``, always on CPU); run on its own it
takes ``--device`` (the figure on a GPU) and several ``--batch`` sizes (comma-separated; the
first is the headline ``speedup``). Each configuration first searches one warm-up puzzle,
untimed (CUDA context, kernel selection). Writes benchmarks/results/engine_<device>.json.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

import torch

from benchmarks.common import write_json
from qstar.policy.base import Usage
from qstar.rewards.registry import make_scorer
from qstar.search.registry import run_search
from qstar.tasks.registry import get_task
from qstar.types import Budget, Cost

__all__ = ["OneAtATimePolicy", "engine_figure", "main"]


class OneAtATimePolicy:
    """The engine figure's baseline: every (prompt, candidate) pair, every value prompt and every
    generation prompt is its own model call, so siblings share no prompt computation."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = f"one-at-a-time:{getattr(inner, 'name', 'policy')}"

    @property
    def usage(self) -> Usage:
        return self.inner.usage

    def generate(self, prompts: Sequence[str], **kwargs: Any) -> Any:
        return [self.inner.generate([p], **kwargs)[0] for p in prompts]

    def score(self, prompts: Sequence[str], continuations: Sequence[Sequence[str]]) -> list[list[float]]:
        return [
            [self.inner.score([p], [[c]])[0][0] for c in cands]
            for p, cands in zip(prompts, continuations, strict=True)
        ]

    def value(self, prompts: Sequence[str]) -> list[float]:
        return [self.inner.value([p])[0] for p in prompts]


def engine_figure(
    policy: Any,
    task_name: str,
    puzzles: int,
    expansions: int,
    batch_size: int | Sequence[int],
    seed: int,
) -> dict[str, Any]:
    """Expansions/s of batched prefix-sharing mcts vs one-state-one-candidate-at-a-time mcts.

    ``batch_size``: one size, or several (the first is the headline ``speedup``; every size
    gets a row in ``batched``)."""
    sizes = [batch_size] if isinstance(batch_size, int) else list(batch_size)
    task = get_task(task_name)
    problems = task.problems("test")[:puzzles]

    def search(pol: Any, bs: int, i: int) -> Cost:
        scorer = make_scorer("auto", task, pol)
        r = run_search(
            "mcts",
            problems[i],
            task,
            pol,
            scorer,
            Budget(max_expansions=expansions),
            seed + i,
            batch_size=bs,
            stop_on_solution=False,
        )
        return r.cost

    def measure(pol: Any, bs: int) -> dict[str, Any]:
        search(pol, bs, 0)  # warm-up, untimed
        total = Cost()
        start = time.perf_counter()
        for i in range(len(problems)):
            total.add(search(pol, bs, i))
        seconds = time.perf_counter() - start
        return {
            "batch_size": bs,
            "expansions": total.expansions,
            "model_calls": total.model_calls,
            "seconds": round(seconds, 3),
            "expansions_per_s": round(total.expansions / seconds, 1) if seconds else 0.0,
        }

    batched = [measure(policy, bs) for bs in sizes]
    fast = batched[0]
    shared_b1 = next((row for row in batched if row["batch_size"] == 1), None) or measure(policy, 1)
    naive = measure(OneAtATimePolicy(policy), 1)

    def ratio(a: dict[str, Any], b: dict[str, Any]) -> float:
        return round(a["expansions_per_s"] / b["expansions_per_s"], 2) if b["expansions_per_s"] else 0.0

    for row in batched:
        row["speedup"] = ratio(row, naive)
    return {
        "task": task_name,
        "puzzles": len(problems),
        "max_expansions": expansions,
        "device": str(getattr(policy, "device", "cpu")),
        "batched_prefix_shared": fast,
        "batched": batched,
        "batch1_prefix_shared": shared_b1,
        "batch1_one_call_per_candidate": naive,
        "speedup": ratio(fast, naive),
        "best_speedup": max(row["speedup"] for row in batched),
        "speedup_from_batching_leaves": ratio(fast, shared_b1),
        "target_speedup": 10.0,
    }


def _gpu_facts(device: str) -> dict[str, Any]:
    """The GPU's name and CUDA version when ``device`` is one (the figure's ``device`` says which)."""
    if not device.startswith("cuda"):
        return {}
    return {"gpu": torch.cuda.get_device_name(0), "cuda": torch.version.cuda}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from qstar.policy.loading import load_policy

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--task", default="game24")
    ap.add_argument("--puzzles", type=int, default=20)
    ap.add_argument("--expansions", type=int, default=64)
    ap.add_argument(
        "--batch", default="8", help="leaf batch sizes, comma-separated; the first is the headline"
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    sizes = [int(b) for b in args.batch.split(",") if b.strip()]
    if not sizes or min(sizes) < 1 or args.puzzles < 1 or args.expansions < 1:
        raise SystemExit("--batch sizes, --puzzles and --expansions must be positive")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: torch sees no CUDA device")
    torch.set_num_threads(args.threads)
    policy = load_policy(args.model, device=args.device)
    result = engine_figure(policy, args.task, args.puzzles, args.expansions, sizes, args.seed)
    for row in result["batched"]:
        print(
            f"mcts batch {row['batch_size']:3d}, shared prefixes: {row['expansions_per_s']:8.1f} exp/s ({row['speedup']}x)"
        )
    naive = result["batch1_one_call_per_candidate"]
    print(f"mcts batch   1, one call per candidate: {naive['expansions_per_s']:8.1f} exp/s")
    payload = {
        "model": args.model,
        "threads": args.threads,
        "seed": args.seed,
        **_gpu_facts(args.device),
        **result,
    }
    device = args.device.split(":")[0]
    write_json(f"engine_{device}", payload, args.out)
    return payload


if __name__ == "__main__":
    main()
