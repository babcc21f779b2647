"""``qstar label``: automatic step labels (Math-Shepherd MC, outcome, judge) as TRL-ready JSONL.

For each problem, paths come from sampling (``--num-paths`` full completions at
``--temperature``) or from a search (``--search NAME --budget N``: the paths to the leaves of its
tree); every step of every path is then labelled by ``--method``. Output: the
stepwise-supervision JSONL of :mod:`qstar.rewards.labels`; ``--trees-out`` also saves each
problem's tree (JSONL, ``{"index", "tree"}``) for Bellman targets (``qstar train q --target
bellman``). An interrupted run continues where it stopped (``--restart`` starts over).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import numpy as np

from qstar.cli.options import set_threads
from qstar.cli.render import stderr, stdout
from qstar.errors import ConfigError, ProblemError
from qstar.policy.loading import load_policy
from qstar.rewards.judge import JudgeScorer
from qstar.rewards.labels import LABEL_METHODS, LabelWriter, label_tree, paths_tree, tree_paths
from qstar.rewards.registry import make_scorer
from qstar.rewards.rollout import RolloutScorer, complete
from qstar.search.registry import get_search, run_search
from qstar.tasks.base import load_problems_jsonl
from qstar.tasks.registry import get_task
from qstar.types import Budget

__all__ = ["label_cmd"]


def _keep_trees(path: Path, next_index: int) -> None:
    """Cut a trees file back to the problems the label file holds (resume)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        try:
            if line.endswith("\n") and int(json.loads(line)["index"]) < next_index:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            break
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(kept), encoding="utf-8")
    os.replace(tmp, path)


@click.command("label")
@click.option(
    "--task", "task_name", default="game24", show_default=True, help="task name (see `qstar tasks`)"
)
@click.option("--split", default="train", show_default=True, type=click.Choice(["train", "val", "test"]))
@click.option(
    "--problems",
    "problems_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSONL file of problems instead of a split (one object a line)",
)
@click.option("--limit", type=int, default=None, help="only the first N problems")
@click.option("--model", default="default", show_default=True, help="'default' or a checkpoint directory")
@click.option(
    "--method",
    type=click.Choice(LABEL_METHODS),
    default="mc",
    show_default=True,
    help="mc: Monte-Carlo rollouts (Math-Shepherd); outcome: the path's outcome on every step; "
    "judge: ToT value prompt / value head",
)
@click.option("--num-rollouts", type=int, default=16, show_default=True, help="rollouts per step (mc)")
@click.option("--num-paths", type=int, default=4, show_default=True, help="paths labelled per problem")
@click.option("--temperature", type=float, default=1.0, show_default=True, help="path sampling temperature")
@click.option("--rollout-temperature", type=float, default=1.0, show_default=True)
@click.option(
    "--rollout-mode",
    type=click.Choice(["auto", "generate", "enumerate"]),
    default="auto",
    show_default=True,
    help="paths and rollouts as free text (generate) or drawn from the legal steps by the "
    "policy's prior (enumerate; auto = where the task enumerates its steps)",
)
@click.option("--max-tokens", type=int, default=128, show_default=True, help="max new tokens per completion")
@click.option(
    "--gamma", type=float, default=1.0, show_default=True, help="discount of Q*'s best-rollout value"
)
@click.option("--search", default=None, help="label the paths of this search's tree instead of samples")
@click.option("--budget", type=int, default=50, show_default=True, help="expansions per problem (--search)")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="labels JSONL")
@click.option("--trees-out", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--restart", is_flag=True, help="overwrite --out instead of resuming it")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: $QSTAR_THREADS or 1)")
@click.option("--quiet", is_flag=True, help="no progress lines")
def label_cmd(
    task_name: str,
    split: str,
    problems_file: Path | None,
    limit: int | None,
    model: str,
    method: str,
    num_rollouts: int,
    num_paths: int,
    temperature: float,
    rollout_temperature: float,
    rollout_mode: str,
    max_tokens: int,
    gamma: float,
    search: str | None,
    budget: int,
    out: Path,
    trees_out: Path | None,
    restart: bool,
    seed: int,
    threads: int | None,
    quiet: bool,
) -> None:
    """Label every step of sampled or searched paths and write TRL stepwise-supervision JSONL."""
    task = get_task(task_name)
    for name, value in (("--num-paths", num_paths), ("--num-rollouts", num_rollouts), ("--budget", budget)):
        if value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")
    if limit is not None and limit < 1:
        raise ProblemError(f"--limit must be >= 1, got {limit}")
    if search is not None:
        get_search(search)
    if problems_file is not None:
        report = load_problems_jsonl(task, problems_file)
        for lineno, reason in report.errors:
            stderr.print(f"[yellow]warning[/]: {problems_file}:{lineno}: {reason} (line skipped)")
        problems, source = report.problems, str(problems_file)
    else:
        problems, source = task.problems(split), f"{task.name}/{split}"
    problems = problems[:limit] if limit else problems
    if not problems:
        raise ProblemError(f"no problems to label in {source}")
    set_threads(threads)
    policy = load_policy(model)
    if policy is None:
        raise ConfigError("labelling needs a model (got --model none)")
    settings = {
        "task": task.name,
        "source": source,
        "model": model,
        "method": method,
        "num_rollouts": num_rollouts if method == "mc" else None,
        "num_paths": num_paths,
        "temperature": temperature,
        "rollout_temperature": rollout_temperature,
        "rollout_mode": rollout_mode,
        "max_tokens": max_tokens,
        "gamma": gamma,
        "search": search,
        "budget": budget if search else None,
        "seed": seed,
    }
    judge = JudgeScorer(task, policy) if method == "judge" else None
    with LabelWriter(out, settings, resume=not restart) as writer:
        if writer.next_index and not quiet:
            stderr.print(f"resuming {out}: {writer.next_index} problems already labelled")
        if trees_out is not None:
            if restart:
                trees_out.write_text("", encoding="utf-8")
            else:
                _keep_trees(trees_out, writer.next_index)
        for index in range(writer.next_index, len(problems)):
            problem, problem_seed = problems[index], seed + index
            rollout = None
            if method == "mc":
                rollout = RolloutScorer(
                    task,
                    policy,
                    num_rollouts=num_rollouts,
                    temperature=rollout_temperature,
                    max_new_tokens=max_tokens,
                    gamma=gamma,
                    seed=problem_seed,
                    mode=rollout_mode,
                    allow_ground_truth=True,
                )
            if search is None:
                root = task.initial_state(problem)
                (paths,) = complete(
                    task,
                    policy,
                    [root],
                    num_samples=num_paths,
                    temperature=temperature,
                    max_new_tokens=max_tokens,
                    seed=problem_seed,
                    mode=rollout_mode,
                )
                tree = paths_tree(task, problem, paths)
                ends = list(dict.fromkeys(tree_paths(tree)))
            else:
                scorer = make_scorer("auto", task, policy)
                result = run_search(search, problem, task, policy, scorer, Budget(budget), seed=problem_seed)
                tree = result.tree
                ends = tree_paths(tree, num_paths)
            records = label_tree(task, tree, ends, method=method, rollout=rollout, judge=judge)
            if trees_out is not None:
                with open(trees_out, "a", encoding="utf-8") as f:
                    f.write(
                        json.dumps({"index": index, "tree": tree.to_json()}, default=_json_default) + "\n"
                    )
            writer.write_problem(index, records)
            if not quiet:
                stderr.print(f"[dim]{index + 1}/{len(problems)} {problem.text}: {len(records)} paths[/]")
    stdout.print(f"wrote {out}: {writer.num_lines} labelled paths from {len(problems)} problems ({source})")


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")
