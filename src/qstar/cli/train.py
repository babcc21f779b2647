"""``qstar train``: train the built-in tiny GPT (``sft``: imitation of oracle solutions)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import click

from qstar.cli.options import set_threads
from qstar.cli.render import stderr, stdout
from qstar.errors import ConfigError
from qstar.tasks.registry import get_task
from qstar.training.sft import SFTConfig
from qstar.training.sft_run import DEFAULT_DATA, OracleDataSpec, run_oracle_sft

__all__ = ["train_group"]


@click.group("train")
def train_group() -> None:
    """Train models: `sft` (imitation of oracle solutions, the sft-oracle baseline)."""


@train_group.command("sft")
@click.option(
    "--task",
    "tasks",
    multiple=True,
    help="task(s) to train on (repeat the flag); default: game24, countdown-4, countdown-6, arith",
)
@click.option(
    "--data",
    type=click.Choice(["oracle"]),
    default="oracle",
    show_default=True,
    help="where the solutions come from (oracle = exhaustive solver; the imitation baseline)",
)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="checkpoint directory"
)
@click.option(
    "--num-problems", type=int, default=None, help="train problems per task (default: per-task preset)"
)
@click.option("--steps", type=int, default=1200, show_default=True)
@click.option("--batch-size", type=int, default=48, show_default=True)
@click.option(
    "--checkpoint-every",
    type=int,
    default=200,
    show_default=True,
    help="also save the checkpoint every N steps (0 = only at the end)",
)
@click.option("--lr", type=float, default=2e-3, show_default=True)
@click.option("--n-layer", type=int, default=4, show_default=True)
@click.option("--n-head", type=int, default=4, show_default=True)
@click.option("--n-embd", type=int, default=128, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: $QSTAR_THREADS or 1)")
@click.option("--quiet", is_flag=True, help="no progress bar")
def sft_cmd(
    tasks: tuple[str, ...],
    data: str,
    out: Path,
    num_problems: int | None,
    steps: int,
    batch_size: int,
    checkpoint_every: int,
    lr: float,
    n_layer: int,
    n_head: int,
    n_embd: int,
    seed: int,
    threads: int | None,
    quiet: bool,
) -> None:
    """Train a fresh tiny GPT on oracle solutions of the train splits and save it to --out."""
    presets = {s.task: s for s in DEFAULT_DATA}
    names = tasks or tuple(presets)
    specs = []
    for name in names:
        get_task(name)  # unknown names fail here, listing the valid ones
        spec = presets.get(name, OracleDataSpec(name))
        if num_problems is not None:
            spec = replace(spec, num_problems=num_problems)
        specs.append(spec)
    if steps < 1 or batch_size < 1 or checkpoint_every < 0:
        raise ConfigError("--steps and --batch-size must be >= 1, --checkpoint-every >= 0")
    set_threads(threads)
    config = SFTConfig(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        log_every=max(1, steps // 20),
        bucket_by_length=True,
    )
    log = (lambda msg: None) if quiet else (lambda msg: stderr.print(f"[dim]{msg}[/]"))
    meta = run_oracle_sft(
        out,
        specs=specs,
        sft_config=config,
        model_config={"n_layer": n_layer, "n_head": n_head, "n_embd": n_embd},
        checkpoint_every=checkpoint_every,
        progress=not quiet,
        log=log,
    )
    m = meta["metrics"]
    stdout.print(
        f"saved {out} ({meta['num_params']:,} parameters, {m.get('step', steps)} steps, "
        f"loss {m.get('loss', float('nan')):.3f}, {meta['train_seconds']:.0f} s)"
    )
    (out / "train_summary.json").write_text(json.dumps(meta, indent=1, default=str), encoding="utf-8")


from qstar.cli import train_values  # noqa: E402, F401 - adds `train prm` and `train q`
from qstar.cli.train_loop import register as _register_loop  # noqa: E402 - `train loop`, `train rft`

_register_loop(train_group)
from qstar.cli import train_distill, train_sweep  # noqa: E402, F401 - `train distill`, `train sweep`
