"""The ``qstar`` command. Every error a user can cause is one line on stderr and exit code 2."""

from __future__ import annotations

import sys

import click

from qstar import __version__
from qstar.cli.demo import demo_cmd
from qstar.cli.eval_cmd import eval_cmd
from qstar.cli.label import label_cmd
from qstar.cli.plot import plot_cmd
from qstar.cli.render import stdout
from qstar.cli.serve import serve_cmd
from qstar.cli.solve import solve_cmd
from qstar.cli.train import train_group
from qstar.cli.view import view_cmd
from qstar.errors import QstarError
from qstar.tasks.registry import task_summaries

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="qstar")
def cli() -> None:
    """qstar: search over reasoning steps (ToT, MCTS, Q*), learned step values, training with search."""


@cli.command("tasks")
def tasks_cmd() -> None:
    """List the registered tasks."""
    for info in task_summaries():
        stdout.print(f"[bold]{info.name:<12}[/] {info.summary}")


cli.add_command(solve_cmd)
cli.add_command(eval_cmd)
cli.add_command(train_group)
cli.add_command(demo_cmd)
cli.add_command(serve_cmd)
cli.add_command(label_cmd)
cli.add_command(view_cmd)
cli.add_command(plot_cmd)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning expected errors into one line and exit code 2."""
    try:
        cli.main(args=argv, prog_name="qstar", standalone_mode=False)
    except QstarError as err:
        print(f"qstar: error: {err}", file=sys.stderr)
        return 2
    except click.exceptions.Abort:
        print("qstar: aborted", file=sys.stderr)
        return 130
    except click.exceptions.ClickException as err:
        hint = f" (see 'qstar {err.ctx.info_name} --help')" if getattr(err, "ctx", None) and err.ctx else ""
        print(f"qstar: error: {err.format_message()}{hint}", file=sys.stderr)
        return err.exit_code
    except click.exceptions.Exit as err:
        return err.exit_code
    except KeyboardInterrupt:
        print("qstar: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
