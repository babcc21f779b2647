"""``qstar plot``: PNG plots of a training run or a benchmark result."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["plot_cmd"]


@click.command("plot")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PNG to write  [default: runs/NAME/plots/curves.png, or the JSON's name with .png]",
)
def plot_cmd(path: Path, out: Path | None) -> None:
    """Draw PATH as a PNG and print where it went.

    PATH is a training run (`runs/NAME` or its `metrics.jsonl`: accuracy, solve rate, losses
    and cost per round) or a search-ladder result (`benchmarks/results/search_ladder.json`:
    success against expansion budget for every search). Needs matplotlib (`qstar[track]`).
    """
    from qstar.plots import plot_path

    click.echo(str(plot_path(path, out)))
