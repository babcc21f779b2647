"""``qstar solve``: one problem, one search, the reasoning and the verifier's verdict."""

from __future__ import annotations

import json
from pathlib import Path

import click

from qstar.cli.options import budget_from, knobs_from, model_options, search_options, set_threads
from qstar.cli.render import print_json, print_result
from qstar.errors import NoSolutionError, ProblemError
from qstar.policy.loading import load_policy
from qstar.rewards.registry import make_scorer
from qstar.search.registry import get_search, run_search
from qstar.tasks.base import Task
from qstar.tasks.registry import get_task
from qstar.types import Problem

__all__ = ["solve_cmd", "parse_problem_arg", "check_solvable"]


def parse_problem_arg(task: Task, text: str, target: int | None) -> Problem:
    if target is not None:
        if "->" in text:
            raise ProblemError("give the target either after '->' or with --target, not both")
        parse = task.parse_problem
        try:
            return parse(text, target=target)
        except TypeError:
            raise ProblemError(f"task {task.name!r} has no target; drop --target") from None
    return task.parse_problem(text)


def check_solvable(task: Task, problem: Problem) -> None:
    """Number games: tell the user up front when no answer exists (exhaustive oracle; this is
    input validation, the search itself never sees the oracle)."""
    from qstar.tasks.numbers_game import NumbersGame
    from qstar.tasks.numbers_oracle import has_solution, solvable_from

    if isinstance(task, NumbersGame):
        found = (
            solvable_from(task, task.initial_state(problem))
            if task.integer_only
            else has_solution(task, problem)
        )
        if not found:
            raise NoSolutionError(
                f"{task.name} problem {problem.text!r}: no solution exists (checked exhaustively)"
            )


@click.command("solve")
@click.argument("problem")
@click.option(
    "--task", "task_name", default="game24", show_default=True, help="task name (see `qstar tasks`)"
)
@click.option("--target", type=int, default=None, help="target number (countdown), instead of '-> N'")
@model_options
@search_options("greedy")
@click.option(
    "--save-tree",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="write the whole search tree as JSON (qstar.tree/1 schema)",
)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def solve_cmd(
    problem: str,
    task_name: str,
    target: int | None,
    model: str,
    scorer: str,
    threads: int | None,
    seed: int,
    search: str,
    budget: float,
    max_tokens: int | None,
    max_seconds: float | None,
    save_tree: Path | None,
    as_json: bool,
    **kwargs,
) -> None:
    """Solve PROBLEM, e.g. "4 9 10 13" (game24) or "25 50 75 100 3 6 -> 952" (--task countdown-6).

    The default is System 1: greedy, one line per step, no search. `--search qstar --budget 11`
    searches instead.
    """
    knobs = knobs_from(kwargs)
    task = get_task(task_name)
    parsed = parse_problem_arg(task, problem, target)
    get_search(search)  # a wrong name fails before any model loads
    bud = budget_from(budget, max_tokens, max_seconds)
    check_solvable(task, parsed)
    set_threads(threads)
    policy = None if search == "blind" else load_policy(model)
    result = run_search(
        search, parsed, task, policy, make_scorer(scorer, task, policy), bud, seed=seed, **knobs
    )
    if save_tree is not None and result.tree is not None:
        save_tree.write_text(json.dumps(result.tree.to_json(), ensure_ascii=False), encoding="utf-8")
    if as_json:
        print_json(result.to_json())
    else:
        print_result(result)
