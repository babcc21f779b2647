"""``qstar train distill``: teach a checkpoint to write its own search (Stream of Search or scan).

Adds the command to :data:`qstar.cli.train.train_group` (imported at the end of
:mod:`qstar.cli.train`). The library side is :mod:`qstar.training.distill`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from qstar.cli.options import PRECISION_HELP, checkpoint_dir, set_threads
from qstar.cli.render import stderr, stdout
from qstar.cli.train import train_group
from qstar.errors import ConfigError
from qstar.tasks.registry import get_task
from qstar.training.distill import DistillConfig, distill, evaluate_student, load_records
from qstar.training.precision import PRECISIONS

__all__ = ["distill_cmd"]

_DEFAULT = DistillConfig()
#: DistillConfig field -> help of its flag (``--traces-per-problem`` for ``traces_per_problem``).
CONFIG_HELP = {
    "format": "trace format: 'stream' (Stream of Search) or 'scan' (every first step judged in writing, then the best picked)",
    "traces_per_problem": "teacher runs per train puzzle (stream; a scan teacher is deterministic: 1)",
    "teacher_temperature": "search teacher: Gumbel noise on the prior that orders its children (more = more dead ends); "
    "self teacher: the temperature its lines are sampled at",
    "value_threshold": "the teacher enters children valued >= this",
    "explore": "probability that the teacher enters a child its value head judged dead",
    "max_lines": "most step lines in one teacher trace",
    "block_size": "the student's context length",
    "steps": "fine-tuning steps",
    "batch_size": "examples per step",
    "lr": "peak learning rate (cosine)",
    "workers": "processes for the teacher's traces",
    "seed": "seed of the teacher's orders and of training",
    "max_picks": "scan: picks before a teacher trace stops unsolved",
    "finish_budget": "scan: the teacher's expansions below each pick",
    "short_lines": "scan: list steps in brief form ('10-4=6: 5 6 6'), not as full step lines",
    "teacher": "who writes the traces: 'search' (the format's teacher search) or 'self' (stream: the --init "
    "model writes its own, legal lines sampled at --teacher-temperature; the verified ones kept, STaR)",
    "judge_weight": "stream: weight of the written-judgement loss (P(back) after every state the teacher valued -> 1 - value; 0 = off)",
    "teacher_judge": "search teacher: what values its states: 'value' (the value head) or 'lookahead' "
    "(discount x the best child's value: final children by the verifier, the rest by the value head)",
    "teacher_order": "search teacher: what orders its children before the noise: 'prior' (the policy) or 'value' "
    "(the value head's log-odds; final children by the verifier's verdict)",
    "grow_layers": "transformer blocks added on top of the --init model's before fine-tuning, each starting "
    "as the identity (a deeper student than its teacher)",
    "precision": PRECISION_HELP,
}


def _config_options(fn: Callable) -> Callable:
    for field in reversed(CONFIG_HELP):
        default = getattr(_DEFAULT, field)
        flag = f"--{field.replace('_', '-')}"
        kind = click.Choice(PRECISIONS) if field == "precision" else type(default)
        fn = click.option(
            flag, field, type=kind, default=default, show_default=True, help=CONFIG_HELP[field]
        )(fn)
    return fn


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
@_config_options
@click.option(
    "--eval-problems", type=int, default=100, show_default=True, help="val problems to evaluate on (0 = none)"
)
@click.option("--test", "with_test", is_flag=True, help="also evaluate on the whole test split")
@click.option(
    "--reuse-traces",
    type=click.Path(path_type=Path),
    default=None,
    help="train on the teacher traces an earlier run saved (its directory or teacher_traces.jsonl.gz) "
    "instead of running the teacher; --init must be that run's teacher",
)
@click.option(
    "--mix-traces",
    type=click.Path(path_type=Path),
    multiple=True,
    help="also train on the traces an earlier run saved (its directory or teacher_traces.jsonl.gz; "
    "repeatable), e.g. the first teacher's on a STaR pass",
)
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: $QSTAR_THREADS or 1)")
@click.option("--quiet", is_flag=True, help="no progress bar")
def distill_cmd(
    init: str,
    out: Path,
    task_name: str,
    num_problems: int | None,
    eval_problems: int,
    with_test: bool,
    reuse_traces: Path | None,
    mix_traces: tuple[Path, ...],
    threads: int | None,
    quiet: bool,
    **fields: Any,
) -> None:
    """Distil System 2 into System 1: the --init model searches the train split writing its
    own traces (Stream of Search, Gandhi et al. 2024; or, with --format scan, a written
    lookahead that judges every first step), is fine-tuned to write the verified ones, and is
    saved to --out; then System 1 with search in context, plain System 1 and Q* are
    evaluated."""
    task = get_task(task_name)
    if num_problems is not None and num_problems < 1:
        raise ConfigError(f"--num-problems must be >= 1, got {num_problems}")
    if eval_problems < 0:
        raise ConfigError(f"--eval-problems must be >= 0, got {eval_problems}")
    init_dir = checkpoint_dir(init)
    config = DistillConfig(**fields)
    set_threads(threads)
    problems = task.problems("train")[:num_problems]
    records = None
    if reuse_traces is not None:
        wanted = {p.text for p in problems}
        records = [r for r in load_records(reuse_traces, task) if r["text"] in wanted]
        if not records:
            raise ConfigError(f"{reuse_traces}: no teacher traces of the chosen train problems")
    mixed = [record for path in mix_traces for record in load_records(path, task)]
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
        records=records,
        mixed=mixed,
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
