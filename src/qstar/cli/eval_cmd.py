"""``qstar eval``: accuracy and cost of one search over a split or a problems file."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from qstar.cli.options import budget_from, knobs_from, model_options, search_options, set_threads
from qstar.cli.render import print_json, stderr, stdout
from qstar.errors import ProblemError
from qstar.evaluation import evaluate
from qstar.policy.loading import load_policy
from qstar.rewards.registry import make_scorer
from qstar.search.registry import get_search
from qstar.tasks.base import load_problems_jsonl
from qstar.tasks.registry import get_task

__all__ = ["eval_cmd"]


@click.command("eval")
@click.option(
    "--task", "task_name", default="game24", show_default=True, help="task name (see `qstar tasks`)"
)
@click.option("--split", default="test", show_default=True, type=click.Choice(["train", "val", "test"]))
@click.option(
    "--problems",
    "problems_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSONL file of problems instead of a split (one object a line)",
)
@click.option("--limit", type=int, default=None, help="only the first N problems")
@model_options
@search_options("greedy")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object with per-problem results")
@click.option("--quiet", is_flag=True, help="no progress bar")
def eval_cmd(
    task_name: str,
    split: str,
    problems_file: Path | None,
    limit: int | None,
    model: str,
    scorer: str,
    threads: int | None,
    seed: int,
    search: str,
    budget: float,
    max_tokens: int | None,
    max_seconds: float | None,
    as_json: bool,
    quiet: bool,
    **kwargs,
) -> None:
    """Evaluate a search on a task's split (default: test) and print accuracy and cost."""
    knobs = knobs_from(kwargs)
    task = get_task(task_name)
    get_search(search)
    bud = budget_from(budget, max_tokens, max_seconds)
    if limit is not None and limit < 1:
        raise ProblemError(f"--limit must be >= 1, got {limit}")
    if problems_file is not None:
        report = load_problems_jsonl(task, problems_file)
        for lineno, reason in report.errors:
            stderr.print(f"[yellow]warning[/]: {problems_file}:{lineno}: {reason} (line skipped)")
        problems = report.problems
        source = str(problems_file)
    else:
        problems = task.problems(split)
        source = f"{task.name}/{split}"
    problems = problems[:limit] if limit else problems
    if not problems:
        raise ProblemError(f"no problems to evaluate in {source}")
    set_threads(threads)
    policy = None if search == "blind" else load_policy(model)
    scorer_obj = make_scorer(scorer, task, policy)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("acc {task.fields[acc]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=stderr, disable=quiet, transient=True) as bar:
        job = bar.add_task(f"{search} on {source}", total=len(problems), acc="-")
        solved = [0]

        def tick(result) -> None:
            solved[0] += bool(result.solved)
            done = bar.tasks[0].completed + 1
            bar.update(job, advance=1, acc=f"{solved[0] / done:.1%}")

        result = evaluate(
            problems,
            task,
            policy,
            scorer_obj,
            search=search,
            budget=bud,
            seed=seed,
            knobs=knobs,
            on_result=tick,
        )
    if as_json:
        print_json({"source": source, **result.to_json()})
        return
    c = result.cost
    stdout.print(f"[bold]{search}[/] on {source} (budget {bud.max_expansions} expansions)")
    stdout.print(f"  accuracy: [bold]{result.accuracy:.1%}[/] ({result.num_solved}/{result.n})")
    stdout.print(f"  cost: {c.model_calls} model calls, {c.tokens} tokens, {c.expansions} expansions")
    stdout.print(f"  time: {result.seconds:.1f} s, {result.seconds / result.n:.3f} s/problem")
