"""The flagship: train the tiny GPT from random weights with its own search, against baselines.

    python -m benchmarks.flagship [--rounds 12] [--workers 1] [--quick] [--sft-oracle CKPT]

Runs, each from random weights with the same model size and seed, zero oracle solutions:

- ``game24-mcts``: expert iteration with MCTS (``qstar train loop --search mcts``);
- ``game24-qstar``: expert iteration with Q* (``--methods`` to include it);
- ``game24-rft``: the RFT / STaR baseline at equal tokens (its per-round token budget is the
  mean of the search run's rounds, or ``--rft-tokens-per-round`` to run both at once);
- ``countdown-4-mcts``: expert iteration on Countdown (4 numbers).

Each run lives in ``--runs-dir`` (default ``runs/flagship/<name>``, git-ignored); a
killed benchmark resumes every unfinished run when started again with the same flags. After the
last round each run is evaluated once on its test split (Game of 24: ToT ranks 901-1000).
``--sft-oracle CKPT`` adds the imitation reference (a checkpoint trained by ``qstar train sft``)
evaluated on the same splits.

Writes ``benchmarks/results/flagship.json`` (configs, per-round metrics, test results) and
``flagship.png``: System-1 and System-2 accuracy per round against training CPU-minutes
(search/sampling + updates; evaluation CPU is reported separately). System 1 is plotted twice:
free greedy decoding (the model writes each step) and greedy restricted to legal steps (the
step the policy scores highest). ``--report-only [--test-latest]`` summarises runs stopped
early without running anything more; ``--saved NAME=DIR`` (repeatable) adds runs whose results
were saved to the repository (``benchmarks/results/loop_*``).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import progress, write_json
from qstar.training.expert_iteration import LoopConfig, evaluate, run_loop
from qstar.training.rft import rft_config
from qstar.training.runs import RunDir

METHODS = ("game24-mcts", "game24-qstar", "game24-rft", "countdown-4-mcts")


def flagship_config(args: argparse.Namespace) -> LoopConfig:
    """The settings of ``qstar train loop`` the benchmark uses (the CLI's defaults otherwise)."""
    config = LoopConfig(
        task="game24",
        rounds=args.rounds,
        problems_per_round=args.problems_per_round,
        seed=args.seed,
        workers=args.workers,
        num_eval_problems=args.eval_problems,
        test_at_end=True,
    )
    if args.quick:
        config = replace(
            config, n_layer=1, n_head=2, n_embd=32, train_steps=5, search_budget=12, num_eval_problems=10
        )
    return config


def run(name: str, config: LoopConfig, runs_dir: Path, *, quiet: bool = False) -> dict[str, Any]:
    """Run (or resume, or just read back) one method; returns its config, history and test."""
    run_dir = runs_dir / name
    rd = RunDir(run_dir)
    resume = rd.config_file.is_file()
    test_file = run_dir / "test_eval.json"
    if resume and rd.latest_round() == config.rounds and test_file.is_file():
        history = rd.load_round(config.rounds).history
    else:
        print(f"{name}: {'resuming' if resume else 'starting'} ({config.rounds} rounds)", flush=True)
        keys = (
            "round",
            "search_solve_rate",
            "system1_val_acc",
            "system1_legal_val_acc",
            "system2_val_acc",
            "train_cpu_minutes",
        )
        with progress(config.rounds, f"{name} rounds", quiet=quiet) as bar:
            bar.advance((rd.latest_round() or 0) if resume else 0)

            def show(kind: str, data: dict[str, Any]) -> None:
                if kind == "round":
                    bar.print(f"  {name} " + " ".join(f"{k}={data.get(k)!s:.6}" for k in keys))
                    bar.advance()

            history = run_loop(config, run_dir, resume=resume, on_event=show)
    return {"config": config.to_json(), "history": history, "test": json.loads(test_file.read_text())}


def read_run(name: str, runs_dir: Path, *, test_latest: bool = False, workers: int = 1) -> dict[str, Any]:
    """What a run has done so far (committed rounds), without running it. ``test_latest``
    evaluates its latest committed checkpoint on the test split once (for a run stopped early)."""
    from qstar.tasks.registry import get_task
    from qstar.training.workers import Workers

    rd = RunDir(runs_dir / name)
    config = LoopConfig.from_json(rd.read_config())
    latest = rd.latest_round() or 0
    history = []
    for line in rd.metrics_file.read_text().splitlines() if rd.metrics_file.is_file() else []:
        try:  # the live run may be appending its next line
            history.append(json.loads(line))
        except ValueError:
            break
    test_file = rd.path / "test_eval.json"
    if test_latest and latest and not test_file.is_file():
        task = get_task(config.task)
        pool = Workers(workers)
        try:
            test = evaluate(config, task, pool, str(rd.checkpoint_dir(latest)), task.problems("test"), "test")
        finally:
            pool.close()
        test_file.write_text(json.dumps({"round": latest, "stopped_early": True, **test}, indent=1) + "\n")
    test = json.loads(test_file.read_text()) if test_file.is_file() else {}
    done = max(latest, len(history))  # a saved result directory has metrics but no run state
    return {"config": config.to_json(), "history": history, "test": test, "complete": done == config.rounds}


def sft_oracle(path: str, config: LoopConfig) -> dict[str, Any]:
    """The imitation reference: a checkpoint evaluated on the same val and test problems."""
    from qstar.policy.tinygpt.checkpoint import load_checkpoint
    from qstar.tasks.registry import get_task
    from qstar.training.workers import Workers

    task = get_task(config.task)
    workers = Workers(config.workers)
    try:
        val = evaluate(config, task, workers, path, task.problems("val")[: config.num_eval_problems], "val")
        test = evaluate(config, task, workers, path, task.problems("test"), "test")
    finally:
        workers.close()
    meta = load_checkpoint(path).meta
    minutes = (meta.get("train_seconds", 0.0) + meta.get("data_seconds", 0.0)) / 60
    return {"checkpoint": path, "train_cpu_minutes_wall_approx": minutes, "val": val, "test": test}


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, system in zip(axes, ("system1", "system2"), strict=True):
        for i, (name, res) in enumerate(results["runs"].items()):
            h = [m for m in res["history"] if f"{system}_val_acc" in m]
            color = f"C{i}"
            x = [m["train_cpu_minutes"] for m in h]
            ax.plot(
                x, [100 * m[f"{system}_val_acc"] for m in h], "o-", color=color, ms=3, label=f"{name} val"
            )
            if system == "system1" and h and "system1_legal_val_acc" in h[0]:
                legal = [100 * m["system1_legal_val_acc"] for m in h]
                ax.plot(x, legal, "s--", color=color, ms=3, alpha=0.7, label=f"{name} val, legal-step greedy")
            test = res["test"].get(f"{system}_test_acc")
            if test is not None and x:
                ax.plot([x[-1]], [100 * test], "*", color=color, ms=12, label=f"{name} test")
        if "sft-oracle" in results:
            ref = results["sft-oracle"]["test"][f"{system}_test_acc"]
            ax.axhline(100 * ref, color="gray", ls="--", label="sft-oracle test")
        budget = results["runs"] and next(iter(results["runs"].values()))["config"]["eval_budget"]
        title = (
            "System 1 (greedy, no search)"
            if system == "system1"
            else f"System 2 (search, {budget} expansions)"
        )
        ax.set_title(title)
        ax.set_xlabel("training CPU-minutes (search + updates)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%)")
    axes[1].legend(fontsize=7, loc="best")
    fig.suptitle("Learning from the rules alone: tiny GPT trained with its own search vs RFT")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--problems-per-round", type=int, default=128)
    ap.add_argument("--eval-problems", type=int, default=100)
    ap.add_argument("--countdown-rounds", type=int, default=None, help="default: --rounds")
    ap.add_argument(
        "--methods", default="game24-mcts,game24-rft,countdown-4-mcts", help=f"of {','.join(METHODS)}"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sft-oracle", default=None, help="checkpoint of the imitation reference")
    ap.add_argument(
        "--rft-tokens-per-round",
        type=int,
        default=None,
        help="RFT's token budget per round (default: the mean of the game24-mcts run's rounds)",
    )
    ap.add_argument("--quick", action="store_true", help="a tiny model and budget: checks the script")
    ap.add_argument("--report-only", action="store_true", help="summarise the runs as they are, run nothing")
    ap.add_argument(
        "--test-latest",
        action="store_true",
        help="with --report-only: test the latest checkpoint of each run",
    )
    ap.add_argument("--runs-dir", type=Path, default=Path("runs") / "flagship", help="(git-ignored)")
    ap.add_argument(
        "--saved",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="with --report-only: also a run's saved result directory (config.json, metrics.jsonl, "
        "test_eval.json), e.g. game24-rft-default=benchmarks/results/loop_rft_rules_vlookahead_r12",
    )
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/flagship.json)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar (round lines still print)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        ap.error(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    base = flagship_config(args)
    results: dict[str, Any] = {"runs": {}}
    if args.report_only:
        for name in methods:
            if RunDir(args.runs_dir / name).config_file.is_file():
                results["runs"][name] = read_run(
                    name, args.runs_dir, test_latest=args.test_latest, workers=args.workers
                )
        for item in args.saved:
            name, sep, where = item.partition("=")
            if not sep or not (Path(where) / "config.json").is_file():
                ap.error(f"--saved {item!r}: give NAME=DIR, DIR holding a run's config.json")
            results["runs"][name] = read_run(Path(where).name, Path(where).parent)
        methods = []
    if "game24-mcts" in methods or ("game24-rft" in methods and not args.rft_tokens_per_round):
        results["runs"]["game24-mcts"] = run("game24-mcts", base, args.runs_dir, quiet=args.quiet)
    if "game24-qstar" in methods:
        results["runs"]["game24-qstar"] = run(
            "game24-qstar", replace(base, search="qstar"), args.runs_dir, quiet=args.quiet
        )
    if "game24-rft" in methods:
        tokens = args.rft_tokens_per_round
        if not tokens:
            hist = results["runs"]["game24-mcts"]["history"]
            tokens = max(1, round(sum(m["tokens"] for m in hist) / len(hist)))
        rft = rft_config(base, max_tokens_per_round=tokens, problems_per_round=4 * base.problems_per_round)
        results["runs"]["game24-rft"] = run("game24-rft", rft, args.runs_dir, quiet=args.quiet)
    if "countdown-4-mcts" in methods:
        cd = replace(base, task="countdown-4", rounds=args.countdown_rounds or base.rounds)
        results["runs"]["countdown-4-mcts"] = run("countdown-4-mcts", cd, args.runs_dir, quiet=args.quiet)
    if args.sft_oracle:
        results["sft-oracle"] = sft_oracle(args.sft_oracle, base)
    results["summary"] = {
        name: {
            "rounds": len(res["history"]),
            "complete": res.get("complete", True),
            "train_cpu_minutes": round(res["history"][-1]["train_cpu_minutes"], 2),
            "eval_cpu_minutes": round(res["history"][-1]["eval_cpu_minutes"], 2),
            "tokens_total": res["history"][-1]["tokens_total"],
            **{k: v for k, v in res["test"].items() if k.endswith("_acc") or "per_problem" in k},
        }
        for name, res in results["runs"].items()
        if res["history"]
    }
    out = write_json("flagship", results, args.out)
    plot(results, out.with_suffix(".png"))


if __name__ == "__main__":
    main()
