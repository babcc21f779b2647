"""How results look in a terminal (rich) and as JSON lines."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape

from qstar.types import SearchResult

__all__ = ["print_result", "print_json", "stdout", "stderr"]

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(obj: Any) -> None:
    # Plain print: rich would wrap long lines and break the JSON.
    print(json.dumps(obj, ensure_ascii=False))


def verdict_text(result: SearchResult) -> str:
    if result.info.get("verified") is False:
        truth = {True: "correct", False: "wrong", None: "unfinished"}[result.solved]
        return f"[yellow]no test-time verifier[/]; exact check (metrics only): {truth}"
    if result.solved:
        return "[green]verifier: correct[/]"
    return "[red]verifier: not solved[/]"


def print_result(result: SearchResult, *, title: str | None = None) -> None:
    c = result.cost
    stdout.print(title or f"[bold]{result.problem.task}[/]: {result.problem.text}  [dim]({result.method})[/]")
    trace = result.info.get("trace") if result.method == "stream" else None
    if trace:
        # The search the model wrote: dead ends dimmed by "back to:", then the path it answers with.
        stdout.print("  [dim]search written by the model:[/]")
        for line in trace.splitlines():
            style = "dim" if line.startswith("back to:") else "cyan"
            stdout.print(f"    [{style}]{escape(line)}[/]")
        stdout.print("  [dim]its answer path:[/]")
    for i, step in enumerate(result.steps, start=1):
        stdout.print(f"  {i}. {step.text}")
    rejected = result.info.get("expand", {}).get("rejected") or []
    if rejected and result.method == "greedy":
        # System 1 stops at its first bad line: show what the model wrote and why it failed.
        text, reason = rejected[-1]
        stdout.print(f"  {len(result.steps) + 1}. [red]{text}[/]  [dim]<- rejected: {reason}[/]")
    elif not result.steps:
        stdout.print("  [dim](no steps)[/]")
    stdout.print(f"  answer: {result.answer if result.answer is not None else '[dim](none)[/]'}")
    stdout.print(f"  {verdict_text(result)}")
    stdout.print(
        f"  [dim]cost: {c.model_calls} model calls, {c.tokens} tokens, {c.expansions} expansions, "
        f"{c.seconds:.2f} s[/]"
    )
