"""Automatic process rewards (issue 5): PRM vs ORM vs majority vote, label cost vs quality, Q*.

    python -m benchmarks.rewards --make-arith-policy runs/arith-easy-policy   # once, ~12 CPU-min
    python -m benchmarks.rewards --arith-model runs/arith-easy-policy [--only bon,cost,qstar]
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
import random
import time
from collections import Counter
from typing import Any

import numpy as np
import torch

from benchmarks.common import RESULTS, progress, write_json
from qstar.errors import ConfigError
from qstar.policy.loading import load_policy
from qstar.policy.tinygpt.checkpoint import save_checkpoint
from qstar.policy.tinygpt.model import GPT, GPTConfig
from qstar.policy.tinygpt.policy import TinyGPTPolicy
from qstar.policy.tinygpt.tokenizer import Tokenizer
from qstar.rewards.labels import LabelRecord
from qstar.rewards.prm import PRMScorer, aggregate_scores, auc
from qstar.rewards.qvalue import QValueScorer
from qstar.rewards.rollout import complete
from qstar.rewards.value_head import ValueHeadScorer
from qstar.search.registry import run_search
from qstar.tasks.arith import BinOp, format_expression, solution_steps, value_of
from qstar.tasks.registry import get_task
from qstar.training.prm_train import (
    ValueTrainConfig,
    examples_from_labels,
    fitted_q_iteration,
    split_by_problem,
    train_values,
)
from qstar.training.sft import LMExample, SFTConfig, train_sft
from qstar.types import Budget, Problem

NS = (1, 2, 4, 8, 16, 32, 64)
COST_NS = (1, 4, 16, 64)


_BAR: list[Any] = []  # the progress bar of main(), if any


def log(msg: str, *, done: int = 0) -> None:
    """A timestamped result line; ``done`` units of work finished (advances the bar)."""
    line = f"[{time.strftime('%H:%M:%S')}] {msg}"
    if _BAR:
        _BAR[0].print(line)
        _BAR[0].advance(done)
    else:
        print(line, flush=True)


def work_units(args) -> int:
    """What main() reports progress in: sampling, labelling, each reward model trained, each
    (task, Q variant) learned and each (task, search method) evaluated."""
    arith = bool(args.only & {"bon", "cost"})
    searched = 8 * len(args.search_problems) * ("qstar" in args.only)
    return 2 * arith + 3 * ("bon" in args.only) + 4 * ("cost" in args.only) + searched


# -- arith data --------------------------------------------------------------------------------
def sample_paths(task, policy, problems, n, args, seed):
    """n completions of each problem's root, 8 problems per batched call."""
    out = []
    for i in range(0, len(problems), 8):
        roots = [task.initial_state(p) for p in problems[i : i + 8]]
        out += complete(task, policy, roots, num_samples=n, temperature=args.temperature, seed=seed + i)
    return out


def easy_arith(task, n: int, seed: int, exclude: set[str] = frozenset()) -> list:
    """``n`` distinct expressions of 2-4 operations on operands 1-9 (seeded): short enough for a
    1M-parameter GPT to learn the step format in minutes, while it still slips on arithmetic."""
    rng, out = random.Random(seed), {}

    def tree(k: int):
        if k == 0:
            return rng.randint(1, 9)
        left = rng.randrange(k)
        return BinOp(rng.choice("++--*"), tree(left), tree(k - 1 - left))

    while len(out) < n:
        text = format_expression(tree(rng.randint(2, 4)))
        if text not in exclude and text not in out:
            out[text] = task.parse_problem(text)
    return [Problem(p.task, p.text, p.data, f"easy-{seed}/{i}") for i, p in enumerate(out.values())]


def arith_problems(task, args) -> tuple[list, list]:
    if args.arith_problems == "split":  # the end of train is unseen by the shipped SFT model
        return task.problems("train")[-args.train_problems :], task.problems("test")[: args.test_problems]
    test = easy_arith(task, args.test_problems, 1003)
    return easy_arith(task, args.train_problems, 1001 + args.seed, {p.text for p in test}), test


def make_arith_policy(path: str, args) -> None:
    """A deliberately under-trained arith policy: imitation of oracle steps on easy problems."""
    task, tok = get_task("arith"), Tokenizer()
    exclude = {p.text for p in easy_arith(task, args.test_problems, 1003)}
    problems = easy_arith(task, 20_000, 7, exclude)
    lm = [
        LMExample(task.render(task.initial_state(p)), "".join(s + "\n" for s in solution_steps(p)))
        for p in problems
    ]
    model = GPT(GPTConfig(vocab_size=tok.vocab_size), seed=args.seed)
    config = SFTConfig(steps=args.arith_policy_steps, batch_size=64, lr=2e-3, log_every=100)
    metrics = train_sft(
        model, tok, lm, config=config, progress=False, on_log=lambda m: log(f"policy sft {m}")
    )
    meta = {"trainer": "benchmarks.rewards arith policy", "problems": len(lm), "metrics": metrics}
    save_checkpoint(path, model, tok, meta=meta)
    log(f"saved {path}")


def truth(task, state) -> bool:
    return value_of(state.content) == value_of(state.problem.text)


def labelled_paths(task, policy, problems, args, rollouts_for):
    """Train paths with the per-rollout outcomes of every step (rollouts_for(i) per step)."""
    paths = sample_paths(task, policy, problems, args.paths, args, args.seed)
    data, tokens, num_rollouts = [], 0, 0
    for i, (problem, comps) in enumerate(zip(problems, paths, strict=True)):
        uniq = {tuple(s.text for s in c.steps): c for c in comps if c.steps}
        prefixes = {}
        for steps in uniq:
            for t in range(1, len(steps) + 1):
                if steps[:t] not in prefixes:
                    prefixes[steps[:t]] = task.replay(problem, steps[:t])
        todo = [s for s in prefixes.values() if not task.is_terminal(s)]
        rows = complete(task, policy, todo, num_samples=rollouts_for(i), seed=args.seed + 7919 * i)
        outcomes = {}
        for s, row in zip(todo, rows, strict=True):
            outcomes[s.steps] = [c.end == "terminal" and task.outcome(c.state) == 1.0 for c in row]
            tokens += sum(c.num_tokens for c in row)
            num_rollouts += len(row)
        for steps, comp in uniq.items():
            prefixes = [task.replay(problem, steps[:t]) for t in range(1, len(steps) + 1)]
            final_ok = comp.end == "terminal" and task.outcome(comp.state) == 1.0
            data.append(
                {
                    "problem": problem,
                    "steps": steps,
                    "outcome": final_ok,
                    "truth": [truth(task, s) for s in prefixes],
                    "mc": [outcomes.get(s.steps, [task.outcome(s) == 1.0]) for s in prefixes],
                }
            )
    return data, {"rollout_tokens": tokens, "rollouts": num_rollouts}


def records(task, data, kind: str, n: int = 0) -> list[LabelRecord]:
    """Label records: ``prm`` from the first ``n`` rollouts (hard: any success, soft: share),
    ``orm`` with every step labelled by its path's outcome."""
    out = []
    for d in data:
        if kind == "orm":
            labels = (bool(d["outcome"]),) * len(d["steps"])
            values = tuple(float(y) for y in labels)
        else:
            labels = tuple(any(o[:n]) for o in d["mc"])
            values = tuple(float(np.mean(o[:n])) for o in d["mc"])
        meta = {"problem_id": d["problem"].id, "method": "mc" if kind == "prm" else "outcome"}
        root = task.render(task.initial_state(d["problem"]))
        out.append(LabelRecord(root, d["steps"], labels, values, (), meta))
    return out


def train_scorer(base: GPT, tok, recs, args, target: str = "hard") -> tuple[GPT, dict]:
    model = copy.deepcopy(base)
    train, val = split_by_problem(examples_from_labels(recs, target), 0.1, args.seed)
    config = ValueTrainConfig(
        epochs=args.epochs, batch_size=64, lr=5e-4, patience=args.epochs, seed=args.seed
    )
    summary = train_values(model, tok, train, val, config)
    keep = ("best_epoch", "num_train", "num_val", "seconds")
    return model, {
        **{k: summary[k] for k in keep},
        "val": {k: summary["best"].get(k) for k in ("accuracy", "auc")},
    }


def score_test(task, model, tok, test) -> list[list[list[float]]]:
    """Step scores of every sampled test path (one batched value call over all prefixes)."""
    prm = PRMScorer(task, TinyGPTPolicy(model, tok))
    paths = [c for comps in test for c in comps]
    flat = [
        row if c.steps else []
        for c, row in zip(paths, prm.step_scores([c.state for c in paths]), strict=True)
    ]
    return [flat[i * len(test[0]) : (i + 1) * len(test[0])] for i in range(len(test))]


def best_of_n(answers, correct, scores: dict[str, list], rng, draws: int) -> dict[str, dict[int, float]]:
    """Accuracy of each selection rule at each N, averaged over random N-subsets of the samples.
    ``answers[i][j]`` is sample j's final answer on problem i (None: unfinished)."""
    rules = ["majority", "pass@n", *scores]
    acc: dict[str, dict[int, float]] = {r: {} for r in rules}
    n_total = len(answers[0])
    for n in (x for x in NS if x <= n_total):
        reps = 1 if n == n_total else draws
        hits: Counter = Counter()
        for i in range(len(answers)):
            for _ in range(reps):
                sub = [int(j) for j in rng.choice(n_total, n, replace=False) if answers[i][j] is not None]
                if not sub:
                    continue
                votes = Counter(answers[i][j] for j in sub)
                top = max(votes.values())
                hits["majority"] += correct[i][next(j for j in sub if votes[answers[i][j]] == top)]
                hits["pass@n"] += any(correct[i][j] for j in sub)
                for rule, per in scores.items():
                    hits[rule] += correct[i][max(sub, key=lambda j, per=per: (per[i][j], -j))]
        for r in rules:
            acc[r][n] = round(100 * hits[r] / (reps * len(answers)), 2)
    return acc


def path_scores(step_scores, how):
    return [[aggregate_scores(r, how) if r else -1.0 for r in rows] for rows in step_scores]


def step_quality(scores, truth_labels) -> dict[str, float]:
    preds = [s >= 0.5 for s in scores]
    return {
        "step_accuracy": round(
            100 * sum(p == t for p, t in zip(preds, truth_labels, strict=True)) / len(preds), 2
        ),
        "step_auc": round(auc(scores, truth_labels) or 0.0, 4),
    }


def run_arith(policy, args, out: dict[str, Any]) -> None:
    task, tok, base = get_task("arith"), policy.tokenizer, policy.model
    train_problems, test_problems = arith_problems(task, args)
    start = time.process_time()
    test = sample_paths(task, policy, test_problems, args.samples, args, args.seed + 10**6)
    answers = [[c.state.content if c.end == "terminal" else None for c in comps] for comps in test]
    correct = [[c.end == "terminal" and task.outcome(c.state) == 1.0 for c in comps] for comps in test]
    out["policy"] = {
        "temperature": args.temperature,
        "sample_accuracy": round(100 * float(np.mean(correct)), 2),
        "finished": round(100 * float(np.mean([[a is not None for a in row] for row in answers])), 2),
        "cpu_seconds": round(time.process_time() - start, 1),
    }
    log(f"arith policy: {out['policy']}", done=1)
    n_cost = args.cost_problems if "cost" in args.only else 0
    start = time.process_time()
    data, spent = labelled_paths(
        task, policy, train_problems, args, lambda i: 64 if i < n_cost else args.label_rollouts
    )
    out["labels"] = {"paths": len(data), "steps": sum(len(d["steps"]) for d in data), **spent}
    out["labels"]["cpu_seconds"] = round(time.process_time() - start, 1)
    log(f"arith labels: {out['labels']}", done=1)
    test_truth = [
        t
        for comps in test[: args.test_problems]
        for c in comps[:8]
        for t in (truth(task, s) for s in _prefixes(task, c))
    ]
    rng = np.random.default_rng(args.seed)
    if "bon" in args.only:
        prm_recs = records(task, data, "prm", args.label_rollouts)
        models = {
            "prm_hard": train_scorer(base, tok, prm_recs, args, "hard"),
            "prm_soft": train_scorer(base, tok, prm_recs, args, "soft"),
            "orm": train_scorer(base, tok, records(task, data, "orm"), args, "hard"),
        }
        scores, out["bon"] = {}, {"train": {}, "step_quality": {}}
        for name, (model, info) in models.items():
            steps = score_test(task, model, tok, test)
            for how in ("min", "product", "last") if name != "orm" else ("last",):
                scores[f"{name}_{how}" if name != "orm" else "orm"] = path_scores(steps, how)
            flat = [s for rows in steps for row in rows[:8] for s in row]
            out["bon"]["train"][name] = info
            out["bon"]["step_quality"][name] = step_quality(flat, test_truth)
        acc = best_of_n(answers, correct, scores, rng, args.draws)
        out["bon"]["accuracy"] = acc
        best_prm = max((k for k in acc if k.startswith("prm")), key=lambda k: acc[k].get(16, 0))
        gap = acc[args.headline].get(16, 0) - acc["orm"].get(16, 0)
        out["bon"]["goal_prm_minus_orm_at_16"] = {
            "prm": args.headline,
            "points": round(gap, 2),
            "met": gap >= 5,
            "best_prm_variant_at_16": best_prm,
        }
        log(f"best-of-N: {acc}", done=3)
    if "cost" in args.only and n_cost:
        sub = [d for d in data if d["problem"] in set(train_problems[:n_cost])]
        truths = [t for d in sub for t in d["truth"]]
        rows = []
        for n in COST_NS:
            hard = [any(o[:n]) for d in sub for o in d["mc"]]
            soft = [float(np.mean(o[:n])) for d in sub for o in d["mc"]]
            model, info = train_scorer(base, tok, records(task, sub, "prm", n), args, args.cost_target)
            steps = score_test(task, model, tok, test)
            flat = [s for rows_ in steps for row in rows_[:8] for s in row]
            bon = best_of_n(answers, correct, {"prm_min": path_scores(steps, "min")}, rng, args.draws)
            per_rollout = spent["rollout_tokens"] / max(1, spent["rollouts"])
            open_steps = np.mean([len(o) > 1 for d in sub for o in d["mc"]])
            rows.append(
                {
                    "n": n,
                    "label_agreement_with_truth": round(
                        100 * float(np.mean([h == t for h, t in zip(hard, truths, strict=True)])), 2
                    ),
                    "soft_label_auc_vs_truth": round(auc(soft, truths) or 0.0, 4),
                    "rollout_tokens_per_step": round(float(n * per_rollout * open_steps), 1),
                    "prm": {
                        **step_quality(flat, test_truth),
                        "bon16_accuracy": bon["prm_min"].get(16),
                        **info,
                    },
                }
            )
            log(f"cost N={n}: {rows[-1]}", done=1)
        out["cost"] = rows


def _prefixes(task, completion):
    s, out = task.initial_state(completion.state.problem), []
    for step in completion.steps:
        s = task.apply(s, step)
        out.append(s)
    return out


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
def plot(out: dict[str, Any], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    if "bon" in out:
        for rule, acc in out["bon"]["accuracy"].items():
            if rule not in ("majority", "pass@n", "orm", "prm_soft_min", "prm_hard_min"):
                continue
            ns = sorted(int(n) for n in acc)
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
    ap.add_argument("--make-arith-policy", default=None, metavar="DIR", help="train one, save, exit")
    ap.add_argument("--arith-policy-steps", type=int, default=1600)
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
                run_arith(load_policy(args.arith_model) if args.arith_model else policy, args, out)
            if "qstar" in args.only:
                run_search_methods(policy, args, out)
        finally:
            _BAR.clear()
    out["cpu_seconds"] = round(time.process_time() - start, 1)
    path = write_json("rewards", out, args.out)
    plot(out, path.with_suffix(".png") if args.out else RESULTS / "rewards.png")


if __name__ == "__main__":
    main()
