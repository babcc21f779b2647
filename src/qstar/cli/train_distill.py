"""``qstar train distill``: teach a checkpoint to write its own search (Stream of Search).

Adds the command to :data:`qstar.cli.train.train_group` (imported at the end of
:mod:`qstar.cli.train`). The library side is :mod:`qstar.training.distill`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from qstar.cli.options import set_threads
from qstar.cli.render import stderr, stdout
from qstar.cli.train import train_group
from qstar.errors import ConfigError
from qstar.tasks.registry import get_task
from qstar.training.distill import DistillConfig, distill, evaluate_student

__all__ = ["distill_cmd"]

_DEFAULT = DistillConfig()


@train_group.command("distill")
@click.option(
    "--init",
    "init",
    default="default",
    show_default=True,
    help="teacher checkpoint: 'default' or a directory",
)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="checkpoint directory"
)
@click.option("--task", "task_name", default="game24", show_default=True)
@click.option(
    "--num-problems", type=int, default=None, help="first N train problems (default: the whole split)"
)
@click.option("--traces-per-problem", type=int, default=_DEFAULT.traces_per_problem, show_default=True)
@click.option(
    "--teacher-temperature",
    type=float,
    default=_DEFAULT.teacher_temperature,
    show_default=True,
    help="Gumbel noise on the prior that orders the teacher's children (more = more dead ends)",
)
@click.option(
    "--value-threshold",
    type=float,
    default=_DEFAULT.value_threshold,
    show_default=True,
    help="the teacher enters children valued >= this",
)
@click.option(
    "--explore",
    type=float,
    default=_DEFAULT.explore,
    show_default=True,
    help="probability that the teacher enters a child its value head judged dead",
)
@click.option(
    "--max-lines",
    type=int,
    default=_DEFAULT.max_lines,
    show_default=True,
    help="most step lines in one teacher trace",
)
@click.option(
    "--block-size",
    type=int,
    default=_DEFAULT.block_size,
    show_default=True,
    help="the student's context length",
)
@click.option("--steps", type=int, default=_DEFAULT.steps, show_default=True)
@click.option("--batch-size", type=int, default=_DEFAULT.batch_size, show_default=True)
@click.option("--lr", type=float, default=_DEFAULT.lr, show_default=True)
@click.option(
    "--workers",
    type=int,
    default=_DEFAULT.workers,
    show_default=True,
    help="processes for the teacher's traces",
)
@click.option(
    "--eval-problems", type=int, default=100, show_default=True, help="val problems to evaluate on (0 = none)"
)
@click.option("--test", "with_test", is_flag=True, help="also evaluate on the whole test split")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: $QSTAR_THREADS or 1)")
@click.option("--quiet", is_flag=True, help="no progress bar")
def distill_cmd(
    init: str,
    out: Path,
    task_name: str,
    num_problems: int | None,
    traces_per_problem: int,
    teacher_temperature: float,
    value_threshold: float,
    explore: float,
    max_lines: int,
    block_size: int,
    steps: int,
    batch_size: int,
    lr: float,
    workers: int,
    eval_problems: int,
    with_test: bool,
    seed: int,
    threads: int | None,
    quiet: bool,
) -> None:
    """Distil System 2 into System 1: the --init model searches the train split writing its
    own traces (Stream of Search, Gandhi et al. 2024), is fine-tuned to write the verified ones,
    and is saved to --out; then System 1 with search in context, plain System 1 and Q* are
    evaluated."""
    from qstar.policy.tinygpt.policy import default_checkpoint_dir

    task = get_task(task_name)
    if num_problems is not None and num_problems < 1:
        raise ConfigError(f"--num-problems must be >= 1, got {num_problems}")
    if eval_problems < 0:
        raise ConfigError(f"--eval-problems must be >= 0, got {eval_problems}")
    init_dir = Path(default_checkpoint_dir() if init == "default" else init)
    if not (init_dir / "config.json").is_file():
        raise ConfigError(f"--init {init!r}: no checkpoint there (expected {init_dir / 'config.json'})")
    config = DistillConfig(
        traces_per_problem=traces_per_problem,
        teacher_temperature=teacher_temperature,
        value_threshold=value_threshold,
        explore=explore,
        max_lines=max_lines,
        block_size=block_size,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        workers=workers,
        seed=seed,
    )
    set_threads(threads)
    problems = task.problems("train")[:num_problems]
    log = (lambda msg: None) if quiet else (lambda msg: stderr.print(f"[dim]{msg}[/]"))
    command = "qstar " + " ".join(sys.argv[1:])
    card = distill(
        init_dir,
        out,
        config,
        task_name=task.name,
        problems=problems,
        progress=not quiet,
        log=log,
        meta={"command": command},
    )
    summary = {"distill": card, "eval": {}}
    splits = ([("val", task.problems("val")[:eval_problems])] if eval_problems else []) + (
        [("test", task.problems("test"))] if with_test else []
    )
    for split, chosen in splits:
        summary["eval"][split] = evaluate_student(out, chosen, task_name=task.name)
        for mode, m in summary["eval"][split].items():
            stdout.print(
                f"{split} {mode:>6}: {m['accuracy']:.0%} of {m['n']}  "
                f"({m['tokens_per_problem']:.0f} tokens, {m['expansions_per_problem']:.1f} expansions per problem)"
            )
    (out / "distill_summary.json").write_text(
        json.dumps(summary, indent=1, default=str) + "\n", encoding="utf-8"
    )
    stdout.print(
        f"saved {out} ({card['data']['traces_solved']} solved traces, {card['cpu_seconds'] / 60:.1f} CPU-min)"
    )
