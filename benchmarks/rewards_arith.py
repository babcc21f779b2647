"""The arith parts of :mod:`benchmarks.rewards`: best-of-N with learned reward models vs
majority vote (``bon``), MC label cost vs quality (``cost``), and the diagnostics of why a
reward model does or does not help a reranker.

Diagnostics (``bon``), all on the finished test samples:

- ``within_problem_auc``: a reranker only ever compares samples *of one problem*, so what
  matters is how well a path score separates right from wrong answers within a problem (mean
  AUC over problems that have both). The pooled AUC also rewards knowing which problems are
  hard, which does not help a reranker at all.
- ``policy_logprob``: the generator's own summed log-probability of the path, a reranker
  that needs no labels and no training (a baseline every learned reward model should beat).
- ``--implicit``: an implicit PRM on the hard MC labels and an implicit ORM on the outcomes
  (:mod:`qstar.rewards.implicit_prm`, Yuan et al. 2024): the same comparison with the reward
  read off the LM's token log-probabilities instead of a value head.
- ``--probe``: a PRM and an ORM that keep the generator frozen and read its log-probabilities
  and hidden states (:mod:`benchmarks.rewards_probe`).
- ``--ceiling``: a PRM trained exactly like the others but on the *true* step labels (the step
  keeps the expression's value, from the answer key). A diagnostic bound on what better labels
  could buy, not a method: no test-time path uses the answer key.
"""

from __future__ import annotations

import copy
import random
import time
from typing import Any

import numpy as np

from benchmarks.rewards_selection import (
    best_of_n,
    goal_at_16,
    step_quality,
    top_pick_share,
    within_problem_auc,
)
from qstar.policy.tinygpt.checkpoint import save_checkpoint
from qstar.policy.tinygpt.model import GPT, GPTConfig
from qstar.policy.tinygpt.policy import TinyGPTPolicy
from qstar.policy.tinygpt.tokenizer import Tokenizer
from qstar.rewards.implicit_prm import ImplicitPRMScorer
from qstar.rewards.labels import LabelRecord
from qstar.rewards.prm import PRMScorer, aggregate_scores, auc
from qstar.rewards.rollout import complete
from qstar.tasks.arith import BinOp, format_expression, solution_steps, value_of
from qstar.tasks.registry import get_task
from qstar.training.implicit_prm_train import ImplicitPRMConfig, train_implicit_prm
from qstar.training.prm_train import (
    ValueTrainConfig,
    examples_from_labels,
    split_by_problem,
    train_values,
)
from qstar.training.sft import LMExample, SFTConfig, train_sft
from qstar.types import Problem

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


#: The easy arith policy imitates ``POLICY_PROBLEMS`` expressions drawn with seed ``POLICY_SEED``
#: after the first ``POLICY_HELD_OUT`` test expressions (seed 1003) are set aside.
POLICY_PROBLEMS, POLICY_SEED, POLICY_HELD_OUT = 20_000, 7, 100


def policy_problems(task) -> list:
    """The easy arith policy's imitation problems (:func:`make_arith_policy`)."""
    held_out = {p.text for p in easy_arith(task, POLICY_HELD_OUT, 1003)}
    return easy_arith(task, POLICY_PROBLEMS, POLICY_SEED, held_out)


def arith_problems(task, args) -> tuple[list, list]:
    if args.arith_problems == "split":  # the end of train is unseen by the shipped SFT model
        return task.problems("train")[-args.train_problems :], task.problems("test")[: args.test_problems]
    # Test problems skip the policy's imitation problems, so every one is unseen by the policy
    # (the first POLICY_HELD_OUT are so by construction, and stay the same).
    test = easy_arith(task, args.test_problems, 1003, {p.text for p in policy_problems(task)})
    return easy_arith(task, args.train_problems, 1001 + args.seed, {p.text for p in test}), test


def make_arith_policy(path: str, args) -> None:
    """A deliberately under-trained arith policy: imitation of oracle steps on easy problems."""
    task, tok = get_task("arith"), Tokenizer()
    problems = policy_problems(task)
    lm = [
        LMExample(task.render(task.initial_state(p)), "".join(s + "\n" for s in solution_steps(p)))
        for p in problems
    ]
    if args.arith_policy_init:  # continue imitation from an earlier policy (a fresh schedule)
        model = TinyGPTPolicy.load(args.arith_policy_init).model
    else:
        model = GPT(GPTConfig(vocab_size=tok.vocab_size), seed=args.seed)
    config = SFTConfig(steps=args.arith_policy_steps, batch_size=64, lr=args.arith_policy_lr, log_every=100)
    metrics = train_sft(
        model, tok, lm, config=config, progress=False, on_log=lambda m: log(f"policy sft {m}")
    )
    meta = {
        "trainer": "benchmarks.rewards arith policy",
        "problems": len(lm),
        "init": args.arith_policy_init or "random",
        "steps": args.arith_policy_steps,
        "lr": args.arith_policy_lr,
        "metrics": metrics,
    }
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
    ``orm`` with every step labelled by its path's outcome, ``truth`` with the answer key's step
    labels (the ``--ceiling`` diagnostic only)."""
    out = []
    for d in data:
        if kind in ("orm", "truth"):
            labels = (bool(d["outcome"]),) * len(d["steps"]) if kind == "orm" else tuple(d["truth"])
            values = tuple(float(y) for y in labels)
        else:
            labels = tuple(any(o[:n]) for o in d["mc"])
            values = tuple(float(np.mean(o[:n])) for o in d["mc"])
        meta = {"problem_id": d["problem"].id, "method": {"prm": "mc", "orm": "outcome"}.get(kind, kind)}
        root = task.render(task.initial_state(d["problem"]))
        out.append(LabelRecord(root, d["steps"], labels, values, (), meta))
    return out


def train_scorer(base: GPT, tok, recs, args, target: str = "hard") -> tuple[GPT, dict]:
    """A value-head reward model (PRM or ORM) trained from the policy checkpoint ``base``."""
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


def train_implicit(base: GPT, tok, recs, args, target: str) -> tuple[GPT, dict]:
    """An implicit PRM (``target`` hard/soft MC labels) or ORM (``outcome``) from ``base``."""
    model = copy.deepcopy(base)
    config = ImplicitPRMConfig(
        beta=args.implicit_beta,
        target=target,
        epochs=args.epochs,
        batch_size=32,
        lr=5e-4,
        patience=args.epochs,
        seed=args.seed,
    )
    summary = train_implicit_prm(model, base, tok, recs, config)
    keep = ("best_epoch", "num_train", "num_val", "seconds")
    return model, {**{k: summary[k] for k in keep}, "val": {"auc": summary["best"].get("val_auc")}}


def score_test(prm, test) -> list[list[list[float]]]:
    """Step scores of every sampled test path from ``prm`` (anything with ``step_scores``: one
    batched model call over all prefixes)."""
    paths = [c for comps in test for c in comps]
    flat = [
        row if c.steps else []
        for c, row in zip(paths, prm.step_scores([c.state for c in paths]), strict=True)
    ]
    return [flat[i * len(test[0]) : (i + 1) * len(test[0])] for i in range(len(test))]


def policy_logprob(task, policy, test) -> list[list[float]]:
    """The generator's own summed log-probability of each finished sample's steps (no labels, no
    training); unfinished samples get -inf (best_of_n never picks them anyway)."""
    flat = [(i, j, c) for i, comps in enumerate(test) for j, c in enumerate(comps) if c.end == "terminal"]
    prompts = [task.render(task.initial_state(c.state.problem)) for _, _, c in flat]
    lines = [["".join(s.text + "\n" for s in c.steps)] for _, _, c in flat]
    out = [[-float("inf")] * len(comps) for comps in test]
    for (i, j, _), row in zip(flat, policy.score(prompts, lines), strict=True):
        out[i][j] = row[0]
    return out


def path_scores(step_scores, how):
    return [[aggregate_scores(r, how) if r else -1.0 for r in rows] for rows in step_scores]


def run_arith(policy, args, out: dict[str, Any], rm=None) -> None:
    """``policy`` samples and rolls out; every reward model starts from ``rm`` (default: the
    policy itself), as Lightman et al. train reward models from a base of their own."""
    rm = policy if rm is None else rm
    if rm.tokenizer != policy.tokenizer:
        raise SystemExit("--rm-model must use the arith policy's tokenizer")
    task, tok, base = get_task("arith"), rm.tokenizer, rm.model
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
        prm_recs, orm_recs = records(task, data, "prm", args.label_rollouts), records(task, data, "orm")
        models = {}
        if not args.no_finetuned:
            models = {
                "prm_hard": train_scorer(base, tok, prm_recs, args, "hard"),
                "prm_soft": train_scorer(base, tok, prm_recs, args, "soft"),
                "orm": train_scorer(base, tok, orm_recs, args, "hard"),
            }
        if args.ceiling:
            models["ceiling_truth"] = train_scorer(base, tok, records(task, data, "truth"), args, "hard")
        scorers = {name: PRMScorer(task, TinyGPTPolicy(m, tok)) for name, (m, _) in models.items()}
        if args.implicit:
            for name, recs, target in (
                ("implicit_prm_hard", prm_recs, "hard"),
                ("implicit_orm", orm_recs, "outcome"),
            ):
                models[name] = train_implicit(base, tok, recs, args, target)
                scorers[name] = ImplicitPRMScorer(
                    task, TinyGPTPolicy(models[name][0], tok), rm, beta=args.implicit_beta
                )
        scores, out["bon"] = {}, {"train": {}, "step_quality": {}}
        for name, (_, info) in models.items():
            steps = score_test(scorers[name], test)
            for how in ("min", "product", "last") if name != "orm" else ("last",):
                scores[f"{name}_{how}" if name != "orm" else "orm"] = path_scores(steps, how)
            flat = [s for rows in steps for row in rows[:8] for s in row]
            out["bon"]["train"][name] = info
            out["bon"]["step_quality"][name] = step_quality(flat, test_truth)
        scores["policy_logprob"] = policy_logprob(task, policy, test)
        if rm is not policy:  # the reward base's own likelihood: no labels, no training
            scores["rm_logprob"] = policy_logprob(task, rm, test)
        if args.probe:
            from benchmarks.rewards_probe import probe_scores

            scores.update(probe_scores(task, rm, data, test, args.label_rollouts, args.seed))
            log("probe PRM/ORM on frozen reward-base features", done=1)
        acc = best_of_n(answers, correct, scores, rng, args.draws)
        out["bon"]["accuracy"] = acc
        out["bon"]["within_problem_auc"] = {
            rule: within_problem_auc(answers, correct, per) for rule, per in scores.items()
        }
        out["bon"]["top_pick_answer_share"] = {
            "majority": top_pick_share(answers, [[sum(a == x for x in row) for a in row] for row in answers]),
            **{rule: top_pick_share(answers, per) for rule, per in scores.items()},
        }
        log(f"within-problem AUC: {out['bon']['within_problem_auc']}")
        log(f"answer share of the top pick: {out['bon']['top_pick_answer_share']}")
        if (
            args.fresh_from
        ):  # the test problems after the first fresh_from only (draws from a fresh seeded rng)
            k = args.fresh_from
            fresh = {rule: per[k:] for rule, per in scores.items()}
            out["bon"]["accuracy_fresh"] = {
                "problems": f"test[{k}:]",
                **best_of_n(answers[k:], correct[k:], fresh, np.random.default_rng(args.seed), args.draws),
            }
        out["bon"]["goal_prm_minus_orm_at_16"] = goal_at_16(out["bon"], args)
        log(f"best-of-N: {acc}", done=len(models))
    if "cost" in args.only and n_cost:
        sub = [d for d in data if d["problem"] in set(train_problems[:n_cost])]
        truths = [t for d in sub for t in d["truth"]]
        rows = []
        for n in COST_NS:
            hard = [any(o[:n]) for d in sub for o in d["mc"]]
            soft = [float(np.mean(o[:n])) for d in sub for o in d["mc"]]
            model, info = train_scorer(base, tok, records(task, sub, "prm", n), args, args.cost_target)
            steps = score_test(PRMScorer(task, TinyGPTPolicy(model, tok)), test)
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
