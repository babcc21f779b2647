"""``qstar train sweep``: one full-width Bellman backup of a checkpoint's value head.

Adds the command to :data:`qstar.cli.train.train_group` (imported at the end of
:mod:`qstar.cli.train`). The library side is :mod:`qstar.training.value_sweep`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from qstar.cli.options import PRECISION_HELP, checkpoint_dir, set_threads
from qstar.cli.render import stderr, stdout
from qstar.cli.train import train_group
from qstar.errors import ConfigError
from qstar.tasks.registry import get_task
from qstar.training.precision import PRECISIONS
from qstar.training.value_sweep import SweepConfig, value_sweep

__all__ = ["sweep_cmd"]

_D = SweepConfig()


@train_group.command("sweep")
@click.option("--init", default="default", show_default=True, help="checkpoint: 'default' or a directory")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="checkpoint directory"
)
@click.option("--task", "task_name", default="game24", show_default=True)
@click.option(
    "--num-problems", type=int, default=None, help="first N train problems (default: the whole split)"
)
@click.option(
    "--depth", type=int, default=_D.depth, show_default=True, help="swept states: steps below a problem"
)
@click.option(
    "--states-per-problem",
    type=int,
    default=_D.states_per_problem,
    show_default=True,
    help="at most this many swept states per problem, drawn with --seed (0 = all)",
)
@click.option(
    "--discount",
    type=float,
    default=_D.discount,
    show_default=True,
    help="target = discount * best child value (the loop's --value-discount)",
)
@click.option(
    "--anchor-fraction",
    type=float,
    default=_D.anchor_fraction,
    show_default=True,
    help="share of the children whose own value is kept as a target",
)
@click.option(
    "--lm-anchor",
    type=float,
    default=_D.lm_anchor,
    show_default=True,
    help="weight of the KL from the --init model's next-token distributions (keeps the policy; 0 = off)",
)
@click.option("--steps", type=int, default=_D.steps, show_default=True, help="value-head fine-tuning steps")
@click.option("--batch-size", type=int, default=_D.batch_size, show_default=True)
@click.option("--lr", type=float, default=_D.lr, show_default=True, help="peak learning rate (cosine)")
@click.option("--seed", type=int, default=_D.seed, show_default=True)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default=_D.precision,
    show_default=True,
    help=PRECISION_HELP,
)
@click.option(
    "--workers", type=int, default=_D.workers, show_default=True, help="processes computing targets"
)
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: $QSTAR_THREADS or 1)")
@click.option("--quiet", is_flag=True, help="no progress bar")
def sweep_cmd(
    init: str,
    out: Path,
    task_name: str,
    num_problems: int | None,
    threads: int | None,
    quiet: bool,
    **fields: int | float | str,
) -> None:
    """Sharpen the --init model's value head with no label: every state --depth steps below a
    train problem is expanded with the rules, its target set to the discounted best value of
    its children (the verifier's verdict on final ones, the model's own value head on the
    rest), and the value head fine-tuned on those targets (fitted value iteration). Saved to
    --out, e.g. to be the teacher of `qstar train distill`."""
    task = get_task(task_name)
    if num_problems is not None and num_problems < 1:
        raise ConfigError(f"--num-problems must be >= 1, got {num_problems}")
    config = SweepConfig(**fields)  # type: ignore[arg-type]
    set_threads(threads)
    log = (lambda msg: None) if quiet else (lambda msg: stderr.print(f"[dim]{msg}[/]"))
    card = value_sweep(
        checkpoint_dir(init),
        out,
        config,
        task_name=task.name,
        problems=task.problems("train")[:num_problems],
        progress=not quiet,
        log=log,
        meta={"command": "qstar " + " ".join(sys.argv[1:])},
    )
    (out / "sweep_summary.json").write_text(json.dumps(card, indent=1, default=str) + "\n", encoding="utf-8")
    data, metrics = card["data"], card["train_metrics"]
    stdout.print(
        f"saved {out} ({data['targets']} targets, {data['anchors']} anchors, value loss "
        f"{metrics.get('value_loss', float('nan')):.3f}, {card['cpu_seconds'] / 60:.1f} CPU-min)"
    )
