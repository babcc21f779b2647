"""Written lookahead ("scan"): the model judges every first step in writing, then commits.

Yao et al. 2023 ("Tree of Thoughts", arXiv 2305.10601) value each candidate thought with a
prompt ("sure / likely / impossible") and keep the best; Lehnert et al. 2024 ("Beyond A*",
arXiv 2402.14083) and Gandhi et al. 2024 ("Stream of Search", arXiv 2404.03683) train a
transformer on the traces of a search so that one decode searches by itself. A scan trace is
the first made learnt and written by the model: after the task's prompt and ``scan:`` it lists
*every* legal first step in a brief form with a verdict digit (its judgement of the state the
step leaves, ``0`` = dead .. ``9`` = sure), commits to the step with the highest verdict, and
writes the rest of the path one step per line. When that path ends on a wrong final state it
picks the next-best step::

    4+2=6: 4 6 13 ~0
    4/4=1: 1 2 13 ~7
    13+2=15: 4 4 15 ~7
    pick: 4 / 4 = 1 (left: 1 2 13)
    13 - 1 = 12 (left: 2 12)
    12 * 2 = 24 (left: 24)

Why: a policy that writes one step per line must choose among ~30 first steps in one forward
pass, and that choice does not generalise from the Game-of-24 train split, while the value
head's judgement of one given state does (``benchmarks/system1_anatomy.py``,
``benchmarks/system1_ceiling.py``). A scan moves the per-state judgement into the model's own
output, one state per line, and leaves the model only an argmax over digits it wrote.

- :func:`scan_teacher` writes traces from the rules and a scorer (the model's value head): the
  legal first steps in the task's order, verdicts ``floor(value * levels)``, picks in verdict
  order (ties: listing order), and below each pick a depth-first search ordered by value, at most
  ``finish_budget`` expansions, whose first verified answer ends the trace; a pick it cannot
  finish gets the path that search tried first. The teacher needs no policy.
- :func:`scan` is the student: one greedy decode, read back by :func:`parse_scan`. Its answer is
  the path of its last ``pick:``, so it must stop on a solution by itself; the verifier is never
  consulted while it writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from qstar.errors import ConfigError
from qstar.policy.base import Policy
from qstar.rewards.base import Scorer
from qstar.search.checks import check_int
from qstar.search.expand import ExpandStats
from qstar.search.grow import expand_nodes, value_nodes
from qstar.search.meter import Meter, charge_usage
from qstar.search.stream import accepts_answer, enter_line, token_limit
from qstar.search.tree import Tree, find_child, make_result, new_tree
from qstar.tasks.base import Task
from qstar.types import Budget, Problem, SearchResult, Step

__all__ = [
    "SCAN_HEADER",
    "PICK",
    "ScanConfig",
    "ScanTeacherConfig",
    "brief",
    "parse_scan",
    "scan",
    "scan_prompt",
    "scan_teacher",
]

SCAN_HEADER = "scan:\n"
PICK = "pick: "
_VERDICT = " ~"
# "a op b = c (left: x y z)" (the numbers games' step line) -> "a op b = c: x y z" unspaced.
_STEP_LINE = re.compile(r"^(\S+) (\S) (\S+) = (\S+) \(left: (.*)\)$")


def scan_prompt(task: Task, problem: Problem) -> str:
    """The prompt after which a model writes a scan: the task's prompt, then ``scan:``."""
    return task.render(task.initial_state(problem)) + SCAN_HEADER


def brief(text: str) -> str:
    """A step line in the short form a scan lists: ``10 - 4 = 6 (left: 5 6 6)`` becomes
    ``10-4=6: 5 6 6`` (a third of the tokens); other tasks' lines are kept as they are."""
    m = _STEP_LINE.match(text)
    if m is None:
        return text
    a, op, b, c, left = m.groups()
    return f"{a}{op}{b}={c}: {left}"


def _verdict(value: float, levels: int) -> int:
    return min(levels - 1, max(0, int(value * levels)))


@dataclass(frozen=True, kw_only=True)
class ScanTeacherConfig:
    """``levels``: verdict digits (``0 .. levels-1``, at most 10 so each is one digit);
    ``max_picks``: picks before the trace stops unsolved; ``finish_budget``: expansions of the
    depth-first search below each pick; ``short_lines``: list steps in the :func:`brief` form
    (``False``: as full step lines, which the model already writes, at three times the tokens
    on Game of 24). ``num_samples``/``temperature`` are unused (the
    teacher expands with the rules) and exist for the shared expansion code."""

    levels: int = 10
    max_picks: int = 6
    finish_budget: int = 4
    short_lines: bool = True
    num_samples: int = 1
    temperature: float = 0.0

    def __post_init__(self) -> None:
        check_int("scan_teacher", "levels", self.levels)
        if not 2 <= self.levels <= 10:
            raise ConfigError(f"scan_teacher: levels must be in [2, 10], got {self.levels!r}")
        check_int("scan_teacher", "max_picks", self.max_picks)
        check_int("scan_teacher", "finish_budget", self.finish_budget)


def scan_teacher(
    problem: Problem,
    task: Task,
    policy: Policy | None,
    scorer: Scorer | None,
    budget: Budget | None = None,
    config: ScanTeacherConfig | None = None,
    rng: np.random.Generator | int | None = None,
) -> SearchResult:
    """Write one scan trace (module docstring). ``policy`` and ``rng`` are not used: steps come
    from the rules, verdicts from ``scorer``. ``info["trace"]`` holds the text after
    :data:`SCAN_HEADER`, ``info["picks"]`` the number of picks and ``info["end"]`` one of
    ``solved`` (verified), ``answered`` (no test-time verifier), ``exhausted``, ``budget``."""
    config = config or ScanTeacherConfig()
    meter, stats = Meter(budget or Budget()), ExpandStats()
    tree = new_tree(task, problem, "scan_teacher")
    if task.legal_steps(tree.state[0]) is None:
        raise ConfigError(f"scan needs a task that enumerates its steps; {task.name!r} does not")

    def grow(node: int) -> list[int]:
        kids = expand_nodes(tree, task, None, [node], config, cost=meter.cost, rng=None, stats=stats)
        value_nodes(tree, task, scorer, kids, cost=meter.cost)
        return kids

    def ranked(kids: list[int]) -> list[int]:
        return sorted(kids, key=lambda c: -(tree.value[c] or 0.0))

    def finish(node: int, spent: list[int]) -> int | None:
        """Depth-first search below ``node`` by value: the first accepted terminal node."""
        if tree.terminal[node]:
            return node if accepts_answer(tree, node, 0.5) else None
        if spent[0] >= config.finish_budget or meter.exhausted():
            return None
        spent[0] += 1
        kids = grow(node)
        for kid in [c for c in kids if tree.terminal[c] and accepts_answer(tree, c, 0.5)]:
            return kid
        for kid in ranked([c for c in kids if not tree.terminal[c]]):
            found = finish(kid, spent)
            if found is not None:
                return found
        return None

    def first_tried(node: int) -> int:
        """The path the search below a pick tried first: best-valued expanded children, then
        the first child of the last expanded state."""
        while tree.children[node]:
            inner = [c for c in tree.children[node] if not tree.terminal[c]]
            node = ranked(inner)[0] if inner else tree.children[node][0]
        return node

    found, end, picks = None, "exhausted", 0
    if not tree.terminal[0]:
        kids = grow(0)
        verdicts = {c: _verdict(tree.value[c] or 0.0, config.levels) for c in kids}
        listed = brief if config.short_lines else str
        lines = [f"{listed(tree.step[c].text)}{_VERDICT}{verdicts[c]}" for c in kids]
        for pick in sorted(kids, key=lambda c: -verdicts[c])[: config.max_picks]:
            if meter.exhausted():
                end = "budget"
                break
            picks += 1
            tree.visits[pick] += 1
            found = finish(pick, [0])
            last = found if found is not None else first_tried(pick)
            lines.append(PICK + tree.step[pick].text)
            lines += [tree.step[n].text for n in tree.path_nodes(last)[2:]]
            if found is not None:
                break
    else:
        lines = []
    if found is not None:
        end = "solved" if tree.outcome[found] is not None else "answered"
    info = {"trace": "\n".join(lines), "lines": len(lines), "picks": picks, "end": end}
    info["expand"] = stats.to_json()
    return make_result(tree, task, found if found is not None else 0, meter.tick(), info=info)


@dataclass(frozen=True, kw_only=True)
class ScanConfig:
    """``max_new_tokens``: the trace's token limit (``None``: up to the model's block size,
    when the policy has one, else 1024)."""

    max_new_tokens: int | None = None

    def __post_init__(self) -> None:
        check_int("scan", "max_new_tokens", self.max_new_tokens, allow_none=True)


def _listable(task: Task, tree: Tree) -> dict[str, Step]:
    """The root's legal steps by the two ways a list line may write them, brief and full."""
    steps = task.legal_steps(tree.state[0]) or []
    return {**{brief(s.text): s for s in steps}, **{s.text: s for s in steps}}


def parse_scan(task: Task, problem: Problem, text: str, *, method: str = "scan") -> tuple[Tree, dict]:
    """Read a scan back into a tree: the root's children are the listed steps (their verdict in
    ``tree.extra[node]["verdict"]``), then each pick's path.

    Returns the tree and a report: ``listed`` (list lines), ``bad_list`` (list lines that are not
    a legal first step with a verdict digit, or repeat one), ``picks``, ``bad_lines`` (pick and
    path lines that are malformed or illegal), ``pick_is_best`` (whether the first pick has
    the highest verdict the model wrote) and ``answer_node`` (the end of the last pick's path
    when every line of it is a legal step, else ``None``)."""
    tree = new_tree(task, problem, method)
    by_text = _listable(task, tree)
    written = [ln.strip() for ln in text.split("\n") if ln.strip()]
    listed = bad_list = bad = picks = 0
    current: int | None = None  # the node the last pick's path has reached; None after a bad line
    first_pick: int | None = None
    for line in written:
        if line.startswith(PICK):
            picks += 1
            current = enter_line(tree, task, 0, line[len(PICK) :])
            bad += current is None
            if picks == 1:
                first_pick = current
            continue
        if picks == 0:
            listed += 1
            head, sep, digit = line.rpartition(_VERDICT)
            step = by_text.get(head) if sep else None
            if step is None or not digit.isdigit() or find_child(tree, 0, step.text) is not None:
                bad_list += 1
                continue
            node = enter_line(tree, task, 0, step.text)
            assert node is not None
            tree.extra[node]["verdict"] = int(digit)
            continue
        if current is None:
            bad += 1
            continue
        current = enter_line(tree, task, current, line)
        bad += current is None
    verdicts = {c: tree.extra[c].get("verdict") for c in tree.children[0]}
    known = [v for v in verdicts.values() if v is not None]
    best = first_pick is not None and bool(known) and verdicts.get(first_pick) == max(known)
    report = {
        "lines": len(written),
        "listed": listed,
        "bad_list": bad_list,
        "picks": picks,
        "bad_lines": bad,
        "pick_is_best": best,
        "answer_node": current if picks else None,
        "expanded": len(tree.expansion_order),
    }
    return tree, report


def scan(
    problem: Problem,
    task: Task,
    policy: Policy,
    scorer: Scorer | None = None,
    budget: Budget | None = None,
    config: ScanConfig | None = None,
    rng: np.random.Generator | int | None = None,
) -> SearchResult:
    """System 1 with a written lookahead: one greedy decode of a scan (module docstring).

    ``scorer``, ``budget`` and ``rng`` are not used: the decode is a single model call. The
    cost counts that call and its tokens; ``expansions`` is the number of distinct states the
    scan gave children to."""
    config = config or ScanConfig()
    meter = Meter(Budget())
    prompt = scan_prompt(task, problem)
    limit = token_limit(policy, prompt, config.max_new_tokens, 1024)
    before = policy.usage.snapshot()
    gen = policy.generate([prompt], num_samples=1, temperature=0.0, max_new_tokens=limit, stop=())[0][0]
    charge_usage(meter.cost, before, policy.usage)
    tree, report = parse_scan(task, problem, gen.text)
    meter.cost.expansions += report["expanded"]
    node = report["answer_node"]
    end = "unfinished" if not gen.finished else ("answered" if node is not None else "no_answer")
    info = {"trace": gen.text, "end": end, **{k: v for k, v in report.items() if k != "answer_node"}}
    return make_result(tree, task, node if node is not None and gen.finished else 0, meter.tick(), info=info)
