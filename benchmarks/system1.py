"""System-1 accuracy (greedy, no search) of a checkpoint, and generation throughput.

    python -m benchmarks.system1 [--model default] [--limit N] [--threads 1]

Writes benchmarks/results/system1.json: accuracy, seconds/problem and cost on game24 test (ToT
ranks 901-1000), countdown-4 test and arith test; tokens/s of greedy generation for 64 prompts
in one batched call vs the same prompts one at a time.
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.common import write_json
from qstar.evaluation import evaluate
from qstar.policy.loading import load_policy
from qstar.rewards.registry import make_scorer
from qstar.tasks.registry import get_task
from qstar.types import Budget

TASKS = ("game24", "countdown-4", "countdown-6", "arith")


def throughput(policy, prompts: list[str], *, max_new_tokens: int = 48) -> dict[str, float]:
    def run(batches: list[list[str]]) -> tuple[int, float]:
        tokens, start = 0, time.perf_counter()
        for batch in batches:
            for gens in policy.generate(
                batch, num_samples=1, temperature=0.0, max_new_tokens=max_new_tokens, stop=()
            ):
                tokens += sum(g.num_tokens for g in gens)
        return tokens, time.perf_counter() - start

    tok_b, sec_b = run([prompts])
    tok_1, sec_1 = run([[p] for p in prompts])
    return {
        "num_prompts": len(prompts),
        "max_new_tokens": max_new_tokens,
        "batched_tokens_per_s": round(tok_b / sec_b, 1),
        "batch1_tokens_per_s": round(tok_1 / sec_1, 1),
        "speedup": round((tok_b / sec_b) / (tok_1 / sec_1), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--limit", type=int, default=None, help="problems per task (default: whole test split)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    policy = load_policy(args.model)
    results = {}
    for name in TASKS:
        task = get_task(name)
        problems = task.problems("test")[: args.limit]
        report = evaluate(
            problems,
            task,
            policy,
            make_scorer("none", task, policy),
            search="greedy",
            budget=Budget(max_expansions=20),
        )
        results[name] = report.to_json(include_results=False)
        print(
            f"{name:12s} System 1: {report.accuracy:6.1%} of {report.n}  "
            f"({report.seconds / report.n:.3f} s/problem)"
        )
    prompts = [
        get_task("game24").render(get_task("game24").initial_state(p))
        for p in get_task("game24").problems("test")[:64]
    ]
    speed = throughput(policy, prompts)
    print(
        f"generation: {speed['batched_tokens_per_s']} tok/s batched vs {speed['batch1_tokens_per_s']} "
        f"tok/s batch 1 ({speed['speedup']}x)"
    )
    write_json("system1", {"model": args.model, "system1": results, "throughput": speed}, args.out)


if __name__ == "__main__":
    main()
