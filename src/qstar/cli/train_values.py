"""``qstar train prm`` and ``qstar train q``: a PRM / Q-function from step labels or search trees.

Both train the value head (on the trunk) of a tiny GPT copy and save it as a checkpoint that
``prm:PATH`` / ``q:PATH`` scorers load. Bad label lines are listed one by one; training stops
unless ``--skip-bad-lines`` says to go on without them. Importing this module adds the two
commands to :data:`qstar.cli.train.train_group` (the last line of :mod:`qstar.cli.train`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from qstar.cli.options import checkpoint_dir, set_threads
from qstar.cli.render import stderr, stdout
from qstar.cli.train import train_group
from qstar.errors import ConfigError
from qstar.rewards.labels import read_labels
from qstar.tasks.registry import get_task
from qstar.training.prm_train import (
    ValueTrainConfig,
    examples_from_labels,
    fitted_q_iteration,
    load_trees,
    split_by_problem,
    train_values,
)

__all__ = ["register"]


def _common(fn: Callable) -> Callable:
    options = [
        click.option(
            "--labels", "labels_path", type=click.Path(dir_okay=False, path_type=Path), default=None
        ),
        click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True),
        click.option(
            "--init",
            default="default",
            show_default=True,
            help="start from 'default' (shipped model), a checkpoint directory, or 'fresh' (random)",
        ),
        click.option("--epochs", type=int, default=20, show_default=True),
        click.option("--batch-size", type=int, default=64, show_default=True),
        click.option("--lr", type=float, default=1e-3, show_default=True),
        click.option("--val-frac", type=float, default=0.1, show_default=True, help="problems held out"),
        click.option("--patience", type=int, default=3, show_default=True, help="early-stopping epochs"),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--skip-bad-lines", is_flag=True, help="train without the bad lines (still listed)"),
        click.option(
            "--threads", type=int, default=None, help="torch CPU threads (default: $QSTAR_THREADS or 1)"
        ),
        click.option("--quiet", is_flag=True, help="no per-epoch lines"),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _init_model(spec: str, seed: int):
    from qstar.policy.tinygpt.checkpoint import load_checkpoint
    from qstar.policy.tinygpt.model import GPT, GPTConfig
    from qstar.policy.tinygpt.tokenizer import Tokenizer

    if spec == "fresh":
        tokenizer = Tokenizer()
        return GPT(GPTConfig(vocab_size=tokenizer.vocab_size), seed=seed), tokenizer
    ckpt = load_checkpoint(checkpoint_dir(spec, must_exist=False))
    return ckpt.model, ckpt.tokenizer


def _read(labels_path: Path, skip_bad: bool):
    report = read_labels(labels_path)
    for lineno, reason in report.errors:
        stderr.print(f"[red]bad line[/] {labels_path}:{lineno}: {reason}")
    if report.errors and not skip_bad:
        raise ConfigError(
            f"{len(report.errors)} bad line(s) in {labels_path} (listed above); fix them or pass --skip-bad-lines"
        )
    if report.errors:
        stderr.print(f"[yellow]warning[/]: training without {len(report.errors)} bad line(s)")
    if not report.records:
        raise ConfigError(f"no labelled paths in {labels_path}")
    return report.records


def _epoch_line(quiet: bool) -> Callable[[dict[str, Any]], None]:
    def show(r: dict[str, Any]) -> None:
        if quiet:
            return
        parts = [f"epoch {r['epoch']:>2}", f"train {r['train_loss']:.4f}"]
        for key in ("val_loss", "accuracy", "auc", "ece", "mc_agreement"):
            if r.get(key) is not None:
                parts.append(f"{key} {r[key]:.3f}")
        stderr.print(("[green]* [/]" if r["best"] else "  ") + "  ".join(parts))

    return show


def _finish(out: Path, summary: dict[str, Any], kind: str) -> None:
    (out / "train_summary.json").write_text(
        json.dumps(summary, indent=1, default=str) + "\n", encoding="utf-8"
    )
    best = summary["best"]
    shown = ", ".join(
        f"{k} {best[k]:.3f}" for k in ("val_loss", "accuracy", "auc") if best.get(k) is not None
    )
    stdout.print(
        f"saved {kind} checkpoint {out} (best epoch {summary['best_epoch']}, {summary['num_train']} train / "
        f"{summary['num_val']} val steps{', ' + shown if shown else ''})"
    )


def _config(epochs, batch_size, lr, val_frac, patience, seed) -> ValueTrainConfig:
    return ValueTrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, val_frac=val_frac, patience=patience, seed=seed
    )


def register(train_group: click.Group) -> None:
    """Add ``prm`` and ``q`` to ``qstar train``."""

    @train_group.command("prm")
    @_common
    @click.option(
        "--target",
        type=click.Choice(["hard", "soft"]),
        default="hard",
        show_default=True,
        help="Math-Shepherd hard labels (bool) or soft values (share of successful rollouts)",
    )
    @click.option(
        "--probe",
        is_flag=True,
        help="fit a logistic probe on the frozen --init model (qstar.rewards.probe) instead of its value head",
    )
    def prm_cmd(
        labels_path,
        out,
        init,
        epochs,
        batch_size,
        lr,
        val_frac,
        patience,
        seed,
        skip_bad_lines,
        threads,
        quiet,
        target,
        probe,
    ):
        """Train a process reward model on step labels (`qstar label`)."""
        if labels_path is None:
            raise ConfigError("train prm needs --labels FILE (written by `qstar label`)")
        records = _read(labels_path, skip_bad_lines)
        config = _config(epochs, batch_size, lr, val_frac, patience, seed)
        set_threads(threads)
        if probe:
            _fit_probe(records, out, init, target, val_frac, seed, labels_path)
            return
        train, val = split_by_problem(examples_from_labels(records, target), val_frac, seed)
        model, tokenizer = _init_model(init, seed)
        meta = {"trainer": "prm", "target": target, "labels": str(labels_path), "init": init}
        summary = train_values(
            model, tokenizer, train, val, config, checkpoint_dir=out, meta=meta, on_epoch=_epoch_line(quiet)
        )
        _finish(out, summary, "PRM")

    @train_group.command("q")
    @_common
    @click.option(
        "--target",
        type=click.Choice(["mc", "best", "bellman"]),
        default="mc",
        show_default=True,
        help="MC return, Q*'s best-rollout estimate, or Bellman targets over --trees (fitted Q-iteration)",
    )
    @click.option("--trees", "trees_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
    @click.option("--gamma", type=float, default=1.0, show_default=True, help="discount (bellman)")
    @click.option(
        "--iterations", type=int, default=2, show_default=True, help="fitted Q-iterations (bellman)"
    )
    def q_cmd(
        labels_path,
        out,
        init,
        epochs,
        batch_size,
        lr,
        val_frac,
        patience,
        seed,
        skip_bad_lines,
        threads,
        quiet,
        target,
        trees_path,
        gamma,
        iterations,
    ):
        """Train a step Q-function Q(s, a) on MC / best-rollout labels or Bellman targets."""
        config = _config(epochs, batch_size, lr, val_frac, patience, seed)
        set_threads(threads)
        model, tokenizer = _init_model(init, seed)
        meta = {"trainer": "q", "target": target, "labels": str(labels_path), "init": init, "gamma": gamma}
        records = _read(labels_path, skip_bad_lines) if labels_path is not None else []
        if target != "bellman":
            if labels_path is None:
                raise ConfigError(f"train q --target {target} needs --labels FILE (written by `qstar label`)")
            train, val = split_by_problem(examples_from_labels(records, target), val_frac, seed)
            summary = train_values(
                model,
                tokenizer,
                train,
                val,
                config,
                checkpoint_dir=out,
                meta=meta,
                on_epoch=_epoch_line(quiet),
            )
            _finish(out, summary, "Q")
            return
        if trees_path is None:
            raise ConfigError("train q --target bellman needs --trees FILE (`qstar label --trees-out`)")
        if iterations < 1:
            raise ConfigError(f"--iterations must be >= 1, got {iterations}")
        task = get_task(_tree_task(trees_path))
        trees, errors = load_trees(trees_path, task)
        for lineno, reason in errors:
            stderr.print(f"[red]bad line[/] {trees_path}:{lineno}: {reason}")
        if errors and not skip_bad_lines:
            raise ConfigError(
                f"{len(errors)} bad line(s) in {trees_path} (listed above); fix them or pass --skip-bad-lines"
            )
        extra = examples_from_labels(records, "mc") if records else []

        def reward(tree, node):  # ground truth where no test-time verifier recorded one: training only
            state = tree.state[node]
            return task.outcome(state) if state is not None and task.is_terminal(state) else None

        rounds = fitted_q_iteration(
            model,
            tokenizer,
            task,
            trees,
            config,
            num_iterations=iterations,
            gamma=gamma,
            extra=extra,
            reward_fn=reward,
            checkpoint_dir=out,
            meta=meta,
            on_epoch=_epoch_line(quiet),
        )
        _finish(out, {**rounds[-1], "rounds": rounds}, "Q")


def _fit_probe(
    records, out: Path, init: str, target: str, val_frac: float, seed: int, labels_path: Path
) -> None:
    """``train prm --probe``: a probe PRM on the frozen ``init`` checkpoint, saved for
    ``--scorer probe:OUT``."""
    from qstar.policy.tinygpt.policy import TinyGPTPolicy
    from qstar.training.probe_train import fit_probe_on_labels

    if init == "fresh":
        raise ConfigError("train prm --probe reads a trained model: give --init default or a checkpoint")
    base_dir = checkpoint_dir(init, must_exist=False).resolve()
    fitted, metrics = fit_probe_on_labels(
        TinyGPTPolicy.load(base_dir), records, target=target, val_frac=val_frac, seed=seed
    )
    meta = {"trainer": "probe", "base": str(base_dir), "target": target, "labels": str(labels_path)}
    fitted.save(out, meta={**meta, "metrics": metrics})
    shown = ", ".join(f"{k} {metrics[k]:.3f}" for k in ("accuracy", "auc") if metrics.get(k) is not None)
    stdout.print(
        f"saved probe PRM {out} ({metrics['num_train']} train / {metrics['num_val']} val steps"
        f"{', ' + shown if shown else ''}); use it with --scorer probe:{out}"
    )


def _tree_task(path: Path) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    obj = json.loads(line)
                    return str(obj.get("tree", obj)["task"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"cannot read the task of the trees in {path}: {err}") from err
    raise ConfigError(f"no trees in {path}")


register(train_group)
