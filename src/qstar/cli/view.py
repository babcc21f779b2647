"""``qstar view``: look at saved search trees in a local web page."""

from __future__ import annotations

import webbrowser
from pathlib import Path

import click

__all__ = ["view_cmd"]


@click.command("view")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    help="port on 127.0.0.1  [default: a free one]",
)
@click.option("--no-browser", is_flag=True, help="only print the URL; do not open a web browser")
def view_cmd(path: Path, port: int, no_browser: bool) -> None:
    """Show a saved search tree in a local web page (offline, 127.0.0.1 only).

    PATH is a tree file (`qstar solve ... --save-tree tree.json`), a run (`runs/NAME`, whose
    `trees/` are listed to pick from) or any folder of tree files. Stop with Ctrl+C.
    """
    from qstar.viewer import TreeSource, ViewerServer

    server = ViewerServer(TreeSource(path), port=port)
    # click.echo flushes, so a script reading our stdout sees the URL at once.
    click.echo(f"qstar view: {server.source.describe()}")
    click.echo(f"  {server.url}   (Ctrl+C to stop)")
    if not no_browser and not webbrowser.open(server.url):
        click.echo("  no web browser found: open the URL above yourself")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("qstar view: stopped")
    finally:
        server.close()
