"""Helpers shared by the benchmark scripts: machine facts, JSON output, a progress bar."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
    }


def write_json(name: str, payload: dict[str, Any], out: str | None = None) -> Path:
    path = Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return path


class Bar:
    """One rich progress bar (on stderr, with ETA) and a console to print result lines above it."""

    def __init__(self, progress: Any, task_id: Any) -> None:
        self._progress, self._task = progress, task_id

    def advance(self, n: float = 1, description: str | None = None) -> None:
        kwargs = {} if description is None else {"description": description}
        self._progress.update(self._task, advance=n, **kwargs)

    def print(self, text: str) -> None:
        """A result line: above the bar, or plain stdout when the bar is off."""
        if self._progress.disable:
            print(text, flush=True)
        else:
            self._progress.console.print(text, markup=False, highlight=False)


@contextmanager
def progress(total: float, description: str, *, quiet: bool = False) -> Iterator[Bar]:
    """``with progress(n, "ladder") as bar: ... bar.advance()``; ``quiet`` hides the bar (the
    result lines still print)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), disable=quiet) as bar:
        yield Bar(bar, bar.add_task(description, total=total))
