"""Automatic process rewards (issue 5): PRM vs ORM vs majority vote, label cost vs quality, Q*.

    python -m benchmarks.rewards --make-arith-policy runs/arith-easy-policy   # once, ~21 CPU-min
    python -m benchmarks.rewards --make-arith-policy runs/arith-easy-policy-2200 \
        --arith-policy-init runs/arith-easy-policy --arith-policy-steps 600 --arith-policy-lr 1e-3
    python -m benchmarks.rewards --make-arith-policy runs/arith-easy-policy-4600 \
        --arith-policy-init runs/arith-easy-policy --arith-policy-steps 3000 --arith-policy-lr 1e-3
    python -m benchmarks.rewards --arith-model runs/arith-easy-policy [--only bon,cost,qstar]
        [--rm-model DIR] [--probe] [--no-finetuned] [--fresh-from K] [--headline NAME]
        [--model default] [--threads 1] [--seed 0] [--train-problems 200] [--cost-problems 60]
        [--paths 4] [--label-rollouts 16] [--test-problems 100] [--samples 64] [--temperature 1.0]
        [--epochs 5] [--search-problems game24=50,countdown-6=20] [--search-budget 50]
        [--tree-problems 80] [--tree-budget 30]

1. **bon** (``arith``: no test-time verifier, the answer key only labels training paths and
   scores results). The shipped model writes no valid arith step (imitation did not get it
   there), so the policy is a deliberately under-trained GPT of the same shape, imitating
   oracle steps on short expressions (2-4 operations on 1-9; ``--make-arith-policy``); it slips
   on arithmetic. ``--samples`` paths per test problem at ``--temperature``; best-of-N for N =
   1..64 (mean over ``--draws`` random N-subsets) picked by majority vote, an ORM (every step
   labelled with its path's outcome, Cobbe et al. 2021; scores the final state) and PRMs
   trained on Math-Shepherd labels from ``--label-rollouts`` rollouts per step (hard or soft;
   min / product / last aggregation). All reward models start from the policy checkpoint, see
   the same steps for the same number of optimizer steps and keep their best epoch on their
   own held-out labels. The +5 goal is judged on ``--headline`` (soft labels + min), chosen
   before the run because hard labels of this task suffer lucky-hit false positives (part 2).
   ``--rm-model DIR`` starts every reward model (value heads, implicit PRMs, probes) from a
   base of its own instead of the policy, as Lightman et al. 2023 do; it must share the
   policy's tokenizer. The recipe in the README: the policy is ``arith-easy-policy`` imitated
   600 steps further (``arith-easy-policy-2200``, ~17% per sample), the reward base 3000 steps
   further (``arith-easy-policy-4600``, ~80% per sample); both with ``--arith-policy-init``.
2. **cost**: MC labels with N = 1, 4, 16, 64 rollouts on the first ``--cost-problems`` train
   problems (the first N of 64 samples are the N-sample run): hard-label agreement and
   soft-label AUC against the true step correctness (the expression still has the right
   value), rollout tokens per step, and a PRM trained on each (AUC on test steps, best-of-16).
3. **qstar** (game24 test = ToT ranks 901-1000, countdown-6 test; shipped model): solved within
   10/20/50 expansions by blind DFS, Q* with an untrained (randomly initialised) value head, Q*
   with the shipped value head, Q* with a Q-function learned by fitted Q-iteration on Q* trees
   of val problems, and MCTS with the shipped value head. All are anytime with a first-solution
   stop, so one run at the largest budget gives every smaller one.

Writes benchmarks/results/rewards.json and rewards.png.
"""

from __future__ import annotations

import argparse
import copy
import time
from typing import Any

import numpy as np
import torch

from benchmarks.common import RESULTS, progress, write_json
from benchmarks.rewards_arith import _BAR, log, make_arith_policy, run_arith
from benchmarks.rewards_selection import best_of_n
from qstar.errors import ConfigError
from qstar.policy.loading import load_policy
from qstar.policy.tinygpt.model import GPT
from qstar.policy.tinygpt.policy import TinyGPTPolicy
from qstar.rewards.qvalue import QValueScorer
from qstar.rewards.value_head import ValueHeadScorer
from qstar.search.registry import run_search
from qstar.tasks.registry import get_task
from qstar.training.prm_train import ValueTrainConfig, fitted_q_iteration
from qstar.types import Budget

__all__ = ["main", "best_of_n"]


def work_units(args) -> int:
    """What main() reports progress in: sampling, labelling, each reward model trained, each
    (task, Q variant) learned and each (task, search method) evaluated."""
    arith = bool(args.only & {"bon", "cost"})
    searched = 8 * len(args.search_problems) * ("qstar" in args.only)
    return (
        2 * arith
        + (3 * (not args.no_finetuned) + args.ceiling + 2 * args.implicit + args.probe) * ("bon" in args.only)
        + 4 * ("cost" in args.only)
        + searched
    )


# -- Q* ----------------------------------------------------------------------------------------
def learn_q(policy, task, trees, args, *, reset_head: bool) -> tuple[QValueScorer, dict[str, Any]]:
    """Fitted Q-iteration (2 rounds) on the trees, from the shipped checkpoint; ``reset_head``
    re-initialises its value head first, so the head knows only the Bellman targets."""
    start, model = time.process_time(), copy.deepcopy(policy.model)
    if reset_head:
        gen = torch.Generator().manual_seed(args.seed)  # not the global RNG: reproducible
        torch.nn.init.normal_(model.value_head.weight, 0.0, 0.02, generator=gen)
        torch.nn.init.zeros_(model.value_head.bias)
    config = ValueTrainConfig(epochs=args.epochs, batch_size=64, lr=5e-4, patience=2, seed=args.seed)
    info: dict[str, Any] = {}
    try:
        rounds = fitted_q_iteration(model, policy.tokenizer, task, trees, config, num_iterations=2)
    except ConfigError as err:  # e.g. no tree reached a terminal state: nothing to learn
        rounds, info["error"] = [], str(err)
    info["fqi"] = [
        {k: r[k] for k in ("iteration", "best_epoch", "num_train", "num_val")}
        | {"val_auc": r["best"].get("auc")}
        for r in rounds
    ]
    info["cpu_seconds"] = round(time.process_time() - start, 1)
    return QValueScorer(task, TinyGPTPolicy(model, policy.tokenizer, name="learned-q")), info


def run_search_methods(policy, args, out: dict[str, Any]) -> None:
    tok = policy.tokenizer
    random_head = TinyGPTPolicy(GPT(policy.model.config, seed=12345), tok, name="random-value-head")
    results = {}
    for name in args.search_problems:  # the tasks named there, in that order
        task = get_task(name)
        start = time.process_time()
        value = ValueHeadScorer(task, policy)
        trees = [
            run_search("qstar", p, task, policy, value, Budget(args.tree_budget), seed=args.seed + i).tree
            # val, not train: disjoint from test like train, and countdown-6 need not generate
            # its 2,000-problem train split (minutes of exhaustive solving) for 80 problems.
            for i, p in enumerate(task.problems("val")[: args.tree_problems])
        ]
        info: dict[str, Any] = {
            "trees": len(trees),
            "tree_cpu_seconds": round(time.process_time() - start, 1),
        }
        learned = {}
        for variant in ("shipped_head", "reset_head"):
            learned[variant] = learn_q(policy, task, trees, args, reset_head=variant == "reset_head")
            log(f"{name} learned Q ({variant}): {learned[variant][1]}", done=1)
            info[variant] = learned[variant][1]
        methods = {
            "blind": ("blind", None),
            "qstar_untrained_value": ("qstar", ValueHeadScorer(task, random_head)),
            "qstar_shipped_value": ("qstar", value),
            "qstar_learned_q": ("qstar", learned["shipped_head"][0]),
            "qstar_learned_q_reset_head": ("qstar", learned["reset_head"][0]),
            "mcts_shipped_value": ("mcts", value),
        }
        table = {}
        for method, (search, scorer) in methods.items():
            start = time.process_time()
            found = []
            for i, p in enumerate(task.problems("test")[: args.search_problems[name]]):
                r = run_search(
                    search,
                    p,
                    task,
                    None if search == "blind" else policy,
                    scorer,
                    Budget(args.search_budget),
                    seed=args.seed + i,
                )
                found.append(r.cost.expansions if r.solved else None)
            budgets = [b for b in (10, 20, 50, args.search_budget) if b <= args.search_budget]
            table[method] = {
                **{
                    f"solved@{b}": round(100 * float(np.mean([f is not None and f <= b for f in found])), 1)
                    for b in dict.fromkeys(budgets)
                },
                "cpu_seconds": round(time.process_time() - start, 1),
            }
            log(f"{name} {method}: {table[method]}", done=1)
        results[name] = {
            "q_training": info,
            "methods": table,
            "n": min(args.search_problems[name], len(task.problems("test"))),
        }
    out["qstar"] = results


# -- plot --------------------------------------------------------------------------------------
PLOTTED_RULES = (
    "majority",
    "pass@n",
    "orm",
    "prm_soft_min",
    "prm_hard_min",
    "probe_prm_product",
    "probe_orm",
    "probe_orm_min",
    "policy_logprob",
    "rm_logprob",
)


def plot(out: dict[str, Any], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = [k for k in ("bon", "cost", "qstar") if k in out] or ["bon"]
    fig, row = plt.subplots(1, len(parts), figsize=(5.4 * len(parts), 4.5), squeeze=False)
    by_part = dict(zip(parts, row[0], strict=True))  # one panel per part run
    axes = [by_part.get("bon"), by_part.get("cost"), by_part.get("qstar")]
    if "bon" in out:
        for rule, acc in out["bon"]["accuracy"].items():
            if rule not in PLOTTED_RULES:
                continue
            acc = {int(n): v for n, v in acc.items()}  # JSON keys are strings
            ns = sorted(acc)
            axes[0].plot(ns, [acc[n] for n in ns], marker="o", label=rule)
        axes[0].set(xscale="log", xlabel="N (samples)", ylabel="accuracy %", title="arith best-of-N")
        axes[0].legend(fontsize=8)
    if "cost" in out:
        rows = out["cost"]
        xs = [r["rollout_tokens_per_step"] for r in rows]
        curves = {
            "hard label = truth %": [r["label_agreement_with_truth"] for r in rows],
            "soft label AUC x100": [100 * r["soft_label_auc_vs_truth"] for r in rows],
            "PRM step AUC x100 (test)": [100 * r["prm"]["step_auc"] for r in rows],
            "PRM best-of-16 %": [r["prm"]["bon16_accuracy"] or 0 for r in rows],
        }
        for label, ys in curves.items():
            axes[1].plot(xs, ys, marker="o", label=label)
        for r, x in zip(rows, xs, strict=True):
            axes[1].annotate(f"N={r['n']}", (x, curves["soft label AUC x100"][rows.index(r)]), fontsize=8)
        axes[1].set(xscale="log", xlabel="rollout tokens per labelled step", title="MC label cost vs quality")
        axes[1].legend(fontsize=7)
    if "qstar" in out:
        width = 0.15
        budget = 0
        for k, res in enumerate(out["qstar"].values()):
            for m, (method, row) in enumerate(res["methods"].items()):
                budget = min(int(c.split("@")[1]) for c in row if c.startswith("solved@"))
                axes[2].bar(k + m * width, row[f"solved@{budget}"], width, label=method if k == 0 else None)
        tasks = list(out["qstar"])
        axes[2].set_xticks([k + 0.375 for k in range(len(tasks))], tasks)
        axes[2].set(ylabel=f"% solved within {budget} expansions", title="search at equal expansions")
        axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="bon,cost,qstar")
    ap.add_argument("--arith-model", default=None, help="arith policy (default: --model)")
    ap.add_argument("--arith-problems", choices=["easy", "split"], default="easy")
    ap.add_argument("--rm-model", default=None, help="base of every arith reward model (default: the policy)")
    ap.add_argument("--make-arith-policy", default=None, metavar="DIR", help="train one, save, exit")
    ap.add_argument("--arith-policy-steps", type=int, default=1600)
    ap.add_argument("--arith-policy-lr", type=float, default=2e-3)
    ap.add_argument("--arith-policy-init", default=None, metavar="DIR", help="continue from this policy")
    ap.add_argument("--train-problems", type=int, default=200)
    ap.add_argument("--cost-problems", type=int, default=60)
    ap.add_argument("--paths", type=int, default=4)
    ap.add_argument("--label-rollouts", type=int, default=16)
    ap.add_argument("--test-problems", type=int, default=100)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--draws", type=int, default=16)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--headline", default="prm_soft_min", help="the PRM variant the +5 goal is judged on")
    ap.add_argument("--headline-orm", default="orm", help="the ORM the --headline PRM is compared with")
    ap.add_argument(
        "--no-finetuned",
        action="store_true",
        help="skip the fine-tuned value-head reward models (use --probe)",
    )
    ap.add_argument(
        "--fresh-from",
        type=int,
        default=0,
        metavar="K",
        help="also report best-of-N on test problems K.. alone",
    )
    ap.add_argument(
        "--ceiling", action="store_true", help="also a PRM on the answer key's step labels (diagnostic)"
    )
    ap.add_argument("--implicit", action="store_true", help="also an implicit PRM and ORM (Yuan et al.)")
    ap.add_argument(
        "--probe", action="store_true", help="also a PRM and ORM probing the frozen generator's features"
    )
    ap.add_argument("--implicit-beta", type=float, default=0.5)
    ap.add_argument("--cost-target", choices=["hard", "soft"], default="soft")
    ap.add_argument(
        "--search-problems",
        default="game24=50,countdown-6=20",
        help="tasks searched and test problems of each",
    )
    ap.add_argument("--search-budget", type=int, default=50)
    ap.add_argument("--tree-problems", type=int, default=80)
    ap.add_argument("--tree-budget", type=int, default=30)
    ap.add_argument("--out", default=None)
    ap.add_argument("--quiet", action="store_true", help="no progress bar (result lines still print)")
    args = ap.parse_args(argv)
    args.only = set(args.only.split(","))
    if args.no_finetuned and not args.probe:
        raise SystemExit("--no-finetuned leaves no reward model to compare: add --probe")
    if not 0 <= args.fresh_from < args.test_problems:
        raise SystemExit(f"--fresh-from must be in [0, --test-problems={args.test_problems})")
    args.search_problems = {k: int(v) for k, v in (kv.split("=") for kv in args.search_problems.split(","))}
    torch.set_num_threads(args.threads)
    if args.make_arith_policy:
        make_arith_policy(args.make_arith_policy, args)
        return
    policy = load_policy(args.model)
    out: dict[str, Any] = {
        "settings": {k: sorted(v) if isinstance(v, set) else v for k, v in vars(args).items()}
    }
    start = time.process_time()
    with progress(work_units(args), "rewards benchmark", quiet=args.quiet) as bar:
        _BAR.append(bar)
        try:
            if args.only & {"bon", "cost"}:
                arith_policy = load_policy(args.arith_model) if args.arith_model else policy
                rm = load_policy(args.rm_model) if args.rm_model else None
                run_arith(arith_policy, args, out, rm)
            if "qstar" in args.only:
                run_search_methods(policy, args, out)
        finally:
            _BAR.clear()
    out["cpu_seconds"] = round(time.process_time() - start, 1)
    path = write_json("rewards", out, args.out)
    plot(out, path.with_suffix(".png") if args.out else RESULTS / "rewards.png")


if __name__ == "__main__":
    main()
