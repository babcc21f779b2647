"""``qstar demo``: the shipped model on a few ToT test puzzles, System 2 (Q*) beside System 1."""

from __future__ import annotations

import click

from qstar.cli.options import budget_from, set_threads
from qstar.cli.render import print_result, stdout
from qstar.policy.loading import load_policy
from qstar.rewards.registry import make_scorer
from qstar.search.registry import run_search
from qstar.tasks.registry import get_task

__all__ = ["demo_cmd"]

#: What the shipped checkpoints are (their model cards sit next to the weights).
ABOUT = {
    "default": "learned Game of 24 from random weights, the rules and the verifier alone "
    "(RFT loop with lookahead value targets and rotary positions, 11 rounds, one value sweep, "
    "then its own search distilled into its output and taught twice more by its own search; "
    "bf16 training, 54.0 CPU-min, no oracle solution)",
    "sft-oracle": "imitation baseline, trained on oracle solutions",
}


@click.command("demo")
@click.option("--num-problems", "-n", type=int, default=5, show_default=True, help="how many test puzzles")
@click.option("--search", default="qstar", show_default=True, help="System-2 search")
@click.option(
    "--budget",
    type=float,
    default=11,
    show_default=True,
    help="expansions per puzzle (11 = ToT's b=5 budget)",
)
@click.option("--model", default="default", show_default=True)
@click.option(
    "--stream/--no-stream",
    default=None,
    help="also show System 1 writing its own search (default: when the model was trained for it)",
)
@click.option("--threads", type=int, default=None)
def demo_cmd(
    num_problems: int, search: str, budget: float, model: str, stream: bool | None, threads: int | None
) -> None:
    """Solve the first Game-of-24 test puzzles (ToT ranks 901+) with search and without."""
    task = get_task("game24")
    bud = budget_from(budget, None, None)
    set_threads(threads)
    policy = load_policy(model)
    scorer = make_scorer("auto", task, policy)
    stdout.print(f"[dim]model {model}: {ABOUT.get(model, repr(policy))}[/]")
    meta = getattr(policy, "meta", {})
    if stream is None:
        stream = meta.get("trainer") == "distill"
    # A student taught to write a scan (a written lookahead) writes one; others a stream.
    scan = meta.get("distill_config", {}).get("format") == "scan"
    solved = {"system2": 0, "system1": 0, "stream": 0}
    problems = task.problems("test")[: max(1, num_problems)]
    for problem in problems:
        s2 = run_search(search, problem, task, policy, scorer, bud)
        s1 = run_search("greedy", problem, task, policy, scorer, budget_from(10, None, None))
        solved["system2"] += bool(s2.solved)
        solved["system1"] += bool(s1.solved)
        stdout.rule(f"{problem.text}  [dim](ToT rank {problem.id.split('/')[-1]})[/]")
        print_result(s2, title=f"[bold]System 2[/] ({search}, budget {bud.max_expansions}):")
        print_result(s1, title="[bold]System 1[/] (greedy, no search):")
        if stream and scan:
            s1s = run_search("scan", problem, task, policy, None, bud)
            solved["stream"] += bool(s1s.solved)
            print_result(s1s, title="[bold]System 1 judging every first step in writing[/] (scan):")
        elif stream:
            s1s = run_search("stream", problem, task, policy, None, bud, lines="legal")
            solved["stream"] += bool(s1s.solved)
            print_result(s1s, title="[bold]System 1 searching in its own output[/] (stream, legal lines):")
    n = len(problems)
    stdout.rule()
    extra = f";  System 1 writing its own search: {solved['stream']}/{n}" if stream else ""
    stdout.print(
        f"System 2 ({search}): {solved['system2']}/{n} solved;  System 1 (greedy): {solved['system1']}/{n}"
        + extra
    )
