"""Stream of Search: a search written out as text, so one greedy decode can search in context.

Gandhi et al. 2024, "Stream of Search (SoS): Learning to Search in Language" (arXiv
2404.03683), train a language model on linearised search traces, backtracking included; the
model then explores, notices dead ends and backtracks inside its own output, without an
external search algorithm. This is one way to "train with System 2, infer with System 1".

Trace format (after the task's prompt and the line ``search:``): every step line enters the
state it makes; ``back to: LINE`` leaves it and returns to the state that ``LINE`` made
(``back to: start`` returns to the problem), restating it so that the current state is always
on the last line::

    10 - 4 = 6 (left: 5 6 6)
    6 - 5 = 1 (left: 1 6)
    back to: 10 - 4 = 6 (left: 5 6 6)
    6 * 5 = 30 (left: 6 30)
    30 - 6 = 24 (left: 24)

Step lines are written exactly as in the one-step format, so what a model knows about writing a
step carries over. A ``back`` right after a step is a dead end judged at sight; the trace ends
with ``<eos>`` after the line the writer answers with.

- :func:`stream_teacher` writes traces: depth-first search whose children come in the order of
  the policy's prior perturbed by Gumbel noise (sampling without replacement), every child is
  written, non-terminal children valued below ``value_threshold`` by the scorer are left at once
  (a written dead end; with probability ``explore`` they are entered anyway, so traces also
  show dead ends found the hard way) and a terminal child ends the trace when the verifier
  accepts it (on tasks without a test-time verifier: when its value passes the threshold, as
  ToT-DFS ends at its first final output). It is the teacher of :mod:`qstar.training.distill`.
- :func:`stream` is the student: one greedy decode of the trace, read back into a tree. Its
  answer is the path to the *last* line the model wrote, so the model must stop by itself on a
  solution; the verifier is never consulted while the model writes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from qstar.errors import ConfigError, IllegalStepError, ParseError
from qstar.policy.base import Policy
from qstar.rewards.base import Scorer
from qstar.search.checks import as_rng, check_float, check_int
from qstar.search.expand import ExpandStats
from qstar.search.grow import expand_nodes, value_nodes
from qstar.search.meter import Meter, charge_usage
from qstar.search.tree import Tree, _node_fields, find_child, is_solution, make_result, new_tree
from qstar.tasks.base import Task
from qstar.types import Budget, Problem, SearchResult, State

__all__ = [
    "STREAM_HEADER",
    "StreamConfig",
    "StreamTeacherConfig",
    "parse_trace",
    "stream",
    "stream_prompt",
    "stream_teacher",
    "accepts_answer",
    "back_line",
    "enter_line",
    "is_back_line",
    "token_limit",
]

STREAM_HEADER = "search:\n"
_BACK = re.compile(r"^\s*back to:\s*(.*?)\s*$")
_START = "start"


def stream_prompt(task: Task, problem: Problem) -> str:
    """The prompt after which a model writes a trace: the task's prompt, then ``search:``."""
    return task.render(task.initial_state(problem)) + STREAM_HEADER


def _made_by(tree: Tree, node: int) -> str:
    """What a ``back to:`` line restates for ``node``: the step line that made it, or ``start``."""
    return _START if node == 0 else tree.step[node].text


def back_line(tree: Tree, node: int) -> str:
    """The line that returns to ``node``: ``back to:`` and the step line that made it."""
    return f"back to: {_made_by(tree, node)}"


def is_back_line(line: str) -> bool:
    """Whether a trace line is a ``back to: ...`` line (whatever it restates)."""
    return _BACK.match(line) is not None


@dataclass(frozen=True, kw_only=True)
class StreamTeacherConfig:
    """``order``: what orders the children: ``"prior"`` (the policy's log-prior) or ``"value"``
    (the scorer's log-odds of each non-final child; a final child by the verifier's verdict,
    a solution first and a wrong answer last; children without either keep their log-prior),
    so the trace tries its most promising step first; ``temperature``: of the Gumbel noise on
    that score (0 = in that order; larger = closer to a uniformly random order, more dead ends
    written);
    ``value_threshold``: a non-terminal child valued below it is written but not entered;
    ``explore``: probability of entering such a child anyway; ``max_lines``: step lines after
    which the trace stops (unsolved; ``back`` lines are not counted); ``num_samples``/
    ``temperature`` also serve the lines drawn per state on tasks without enumerable steps."""

    temperature: float = 1.0
    value_threshold: float = 0.5
    explore: float = 0.0
    max_lines: int = 16
    num_samples: int = 8
    order: str = "prior"

    def __post_init__(self) -> None:
        if self.order not in ("prior", "value"):
            raise ConfigError(f"stream_teacher: order must be 'prior' or 'value', got {self.order!r}")
        check_float("stream_teacher", "temperature", self.temperature, low=0.0)
        check_float("stream_teacher", "value_threshold", self.value_threshold, low=0.0, high=1.0)
        check_float("stream_teacher", "explore", self.explore, low=0.0, high=1.0)
        check_int("stream_teacher", "max_lines", self.max_lines)
        check_int("stream_teacher", "num_samples", self.num_samples)


def accepts_answer(tree: Tree, node: int, threshold: float) -> bool:
    """Whether a written search may end on the terminal ``node``: the verifier's yes, or, on
    tasks without a test-time verifier, a value that passes ``threshold`` (as ToT-DFS ends at
    its first final output)."""
    if tree.outcome[node] is not None:
        return is_solution(tree, node)
    value = tree.value[node]
    return value is None or value >= threshold


#: The verifier's verdict on a final child, as a log-odds no noise reorders; values' log-odds
#: are cut to half of it.
_SURE = 20.0


def _order_score(tree: Tree, node: int, by_value: bool) -> float:
    """What :func:`_order` sorts ``node`` by: its log-prior, or (``by_value``) its value's
    log-odds, a final child's verdict as +-``_SURE`` (the log-prior where there is neither)."""
    if by_value and tree.outcome[node] is not None:
        return _SURE if is_solution(tree, node) else -_SURE
    if by_value and tree.value[node] is not None:
        v = min(max(float(tree.value[node]), 1e-9), 1 - 1e-9)
        return float(np.clip(np.log(v / (1 - v)), -_SURE / 2, _SURE / 2))
    return float(np.log(max(tree.prior[node], 1e-12)))


def _order(
    tree: Tree, children: list[int], temperature: float, rng: np.random.Generator, *, by_value: bool = False
) -> list[int]:
    score = np.array([_order_score(tree, c, by_value) for c in children], dtype=float)
    if temperature > 0:
        score = score + temperature * rng.gumbel(size=len(children))
    return [children[i] for i in np.argsort(-score, kind="stable")]


def stream_teacher(
    problem: Problem,
    task: Task,
    policy: Policy,
    scorer: Scorer | None,
    budget: Budget | None = None,
    config: StreamTeacherConfig | None = None,
    rng: np.random.Generator | int | None = None,
) -> SearchResult:
    """Depth-first search that writes its own trace (module docstring). ``info["trace"]`` holds
    the text after :data:`STREAM_HEADER` (no final newline), ``info["lines"]`` its line count
    and ``info["end"]`` one of ``solved`` (verified), ``answered`` (no test-time verifier),
    ``exhausted``, ``max_lines``, ``budget``."""
    config = config or StreamTeacherConfig()
    meter, rng, stats = Meter(budget or Budget()), as_rng(rng), ExpandStats()
    tree = new_tree(task, problem, "stream_teacher")
    lines: list[str] = []
    num_steps = 0
    end = "exhausted"

    def visit(node: int) -> int | None:
        nonlocal end, num_steps
        if tree.depth(node) >= task.max_steps:
            return None  # as deep as the task's paths go: a dead end
        if meter.exhausted():
            end = "budget"
            return None
        kids = expand_nodes(tree, task, policy, [node], config, cost=meter.cost, rng=rng, stats=stats)
        # Terminal children the verifier cannot check (no test-time verifier) are valued too.
        unsure = [c for c in kids if tree.outcome[c] is None]
        if unsure and scorer is not None:
            value_nodes(tree, task, scorer, unsure, cost=meter.cost)
        for child in _order(tree, kids, config.temperature, rng, by_value=config.order == "value"):
            if num_steps >= config.max_lines:
                end = "max_lines"
                return None
            lines.append(tree.step[child].text)
            num_steps += 1
            tree.visits[child] += 1
            value = tree.value[child]
            if tree.terminal[child]:
                if accepts_answer(tree, child, config.value_threshold):
                    return child
                lines.append(back_line(tree, node))
                continue
            if value is not None and value < config.value_threshold and rng.random() >= config.explore:
                tree.flag(child, "pruned")
                lines.append(back_line(tree, node))
                continue
            found = visit(child)
            if found is not None or end in ("max_lines", "budget"):
                return found
            lines.append(back_line(tree, node))
        return None

    found = None if tree.terminal[0] else visit(0)
    if found is not None:
        end = "solved" if is_solution(tree, found) else "answered"
    info = {
        "trace": "\n".join(lines),
        "lines": len(lines),
        "steps": num_steps,
        "end": end,
        "expand": stats.to_json(),
    }
    return make_result(tree, task, found if found is not None else 0, meter.tick(), info=info)


@dataclass(frozen=True, kw_only=True)
class StreamConfig:
    """``max_new_tokens``: the trace's token limit (``None``: up to the model's block size,
    when the policy has one, else 512). ``lines``: ``"free"`` decodes token by token;
    ``"legal"`` (tasks that enumerate their steps) writes one line at a time, the line the model
    scores highest among the legal steps of the current state and the ``back`` line, and ends
    where the model's next token after a final state is ``<eos>``: the trace's choices stay the
    model's, its arithmetic cannot slip (the System 1 "legal steps only" of the loop's
    reports). ``back`` (legal lines only) is how going back competes with the step lines:
    ``"line"``, the ``back`` line against each step line, the highest wins; ``"mass"``, against
    all legal step lines together (back when the model would rather go back than write any
    step, the teacher's rule when ``P(back)`` was taught as ``1 - value``; then the best step).
    ``temperature``: 0 decodes greedily (the student's System 1); above 0 the trace is sampled
    (free lines: token by token; legal lines: each line drawn from the softmax of the model's
    line scores over the temperature, ``back`` among them, so ``back`` is drawn with its share
    of the mass and the ``back`` rule does not apply; stopping after a final state stays
    greedy), seeded by the search's ``rng``; the self-taught teacher of
    :mod:`qstar.training.distill` (STaR on written searches)."""

    max_new_tokens: int | None = None
    lines: str = "free"
    back: str = "line"
    temperature: float = 0.0

    def __post_init__(self) -> None:
        check_int("stream", "max_new_tokens", self.max_new_tokens, allow_none=True)
        if self.lines not in ("free", "legal"):
            raise ConfigError(f"stream: lines must be 'free' or 'legal', got {self.lines!r}")
        if self.back not in ("line", "mass"):
            raise ConfigError(f"stream: back must be 'line' or 'mass', got {self.back!r}")
        check_float("stream", "temperature", self.temperature, low=0.0)


def enter_line(tree: Tree, task: Task, parent: int, text: str) -> int | None:
    """The node the step line ``text`` makes from ``parent`` in a written search (added when new,
    flagged ``repeated`` when written before; one more visit either way), or ``None`` when the
    line is malformed or illegal there."""
    state = tree.state[parent]
    try:
        step = task.parse_step(state, text.strip())
        child = task.apply(state, step)
    except (ParseError, IllegalStepError):
        return None
    node = find_child(tree, parent, step.text)
    if node is None:
        node = tree.add_node(parent, step, child, **_node_fields(task, child))
        if not tree.expanded[parent]:
            tree.expanded[parent] = True
            tree.expansion_order.append(parent)
    else:
        tree.flag(node, "repeated")
    tree.visits[node] += 1
    return node


def token_limit(policy: Policy, prompt: str, configured: int | None, fallback: int) -> int:
    """New tokens a written search may decode: ``configured``, else what the policy's block
    leaves after ``prompt`` and ``<bos>``, else (a policy without a block) ``fallback``."""
    if configured is not None:
        return configured
    block, tokenizer = getattr(policy, "block_size", None), getattr(policy, "tokenizer", None)
    if block is None or tokenizer is None:
        return fallback
    return max(0, block - len(tokenizer.encode(prompt)) - 1)


def parse_trace(task: Task, problem: Problem, text: str, *, method: str = "stream") -> tuple[Tree, dict]:
    """Read a trace back into a tree: one node per legal step line (a repeated line reuses its
    node).

    Returns the tree and a report: ``lines`` (written), ``bad_lines`` (malformed or illegal
    steps, and ``back`` lines that leave the problem itself or restate the wrong line; such a
    ``back`` still returns one level), ``answer_node`` (the node of the last line when that
    line is a good step, else ``None``) and ``expanded`` (distinct states given children)."""
    tree = new_tree(task, problem, method)
    stack = [0]  # the states entered and not left; the current one last
    answer: int | None = None
    bad = 0
    written = [ln for ln in text.split("\n") if ln.strip()]
    for raw in written:
        answer = None
        back = _BACK.match(raw)
        if back is not None:
            if len(stack) == 1:
                bad += 1
                continue
            stack.pop()
            if back.group(1) != _made_by(tree, stack[-1]):
                bad += 1
            continue
        node = enter_line(tree, task, stack[-1], raw)
        if node is None:
            bad += 1
            continue
        stack.append(node)
        answer = node
    report = {
        "lines": len(written),
        "bad_lines": bad,
        "answer_node": answer,
        "expanded": len(tree.expansion_order),
    }
    return tree, report


def stream(
    problem: Problem,
    task: Task,
    policy: Policy,
    scorer: Scorer | None = None,
    budget: Budget | None = None,
    config: StreamConfig | None = None,
    rng: np.random.Generator | int | None = None,
) -> SearchResult:
    """System 1 with search in context: one greedy decode of a trace (module docstring), or one
    sampled trace when ``config.temperature > 0`` (seeded by ``rng``).

    ``scorer`` and ``budget`` are not used: the decode is a single written trace. The cost
    counts its model calls and tokens; ``expansions`` is the number of distinct states the
    trace gave children to, the figure a search's expansions compare with."""
    config = config or StreamConfig()
    gen = as_rng(rng) if config.temperature > 0 else None
    meter = Meter(Budget())
    prompt = stream_prompt(task, problem)
    limit = token_limit(policy, prompt, config.max_new_tokens, 512)
    before = policy.usage.snapshot()
    if config.lines == "legal":
        pick = _picker(config.temperature, gen)
        by_mass = config.back == "mass"
        text, finished = _legal_lines(task, problem, policy, prompt, limit, by_mass=by_mass, pick=pick)
    else:
        seed = None if gen is None else int(gen.integers(2**62))
        out = policy.generate(
            [prompt], num_samples=1, temperature=config.temperature, max_new_tokens=limit, stop=(), seed=seed
        )[0][0]
        text, finished = out.text, out.finished
    charge_usage(meter.cost, before, policy.usage)
    tree, report = parse_trace(task, problem, text)
    meter.cost.expansions += report["expanded"]
    node = report["answer_node"]
    end = "unfinished" if not finished else ("answered" if node is not None else "no_answer")
    info = {"trace": text, "end": end, **{k: v for k, v in report.items() if k != "answer_node"}}
    return make_result(tree, task, node if node is not None and finished else 0, meter.tick(), info=info)


def _picker(temperature: float, rng: np.random.Generator | None) -> Callable[[np.ndarray], int] | None:
    """How a sampled legal-lines trace picks a line from its choices' scores (``None``: greedy)."""
    if rng is None:
        return None

    def pick(scores: np.ndarray) -> int:
        logits = scores / temperature
        probs = np.exp(logits - logits.max())
        return int(rng.choice(len(probs), p=probs / probs.sum()))

    return pick


def _legal_lines(
    task: Task,
    problem: Problem,
    policy: Policy,
    prompt: str,
    limit: int,
    *,
    by_mass: bool = False,
    pick: Callable[[np.ndarray], int] | None = None,
) -> tuple[str, bool]:
    """The ``lines="legal"`` decode of :func:`stream`: ``(trace, finished)``. A step already
    tried from the current state is not offered again (a depth-first trace never repeats one).
    ``by_mass``: the ``back="mass"`` rule of :class:`StreamConfig`; ``pick`` (from
    :func:`_picker`) samples the line instead (whether to stop after a final state stays the
    model's greedy call)."""
    tokenizer = getattr(policy, "tokenizer", None)

    def size(text: str) -> int:
        return len(tokenizer.encode(text)) if tokenizer is not None else len(text.split())

    root = task.initial_state(problem)
    if task.legal_steps(root) is None:
        raise ConfigError(
            f"stream lines='legal' needs a task that enumerates its steps; {task.name!r} does not"
        )
    # The states entered and not left: (state, the line that made it, steps tried from it).
    path: list[tuple[State, str, set[str]]] = [(root, _START, set())]
    lines: list[str] = []
    spent = 0  # tokens of "\n".join(lines), counted line by line (a newline is one token)
    while True:
        text = "\n".join(lines)
        context = prompt + "".join(line + "\n" for line in lines)
        state, _, tried = path[-1]
        back = f"back to: {path[-2][1]}" if len(path) > 1 else None
        terminal = task.is_terminal(state)
        if terminal:
            nxt = policy.generate([context], num_samples=1, temperature=0.0, max_new_tokens=1, stop=())[0][0]
            if nxt.finished and not nxt.text:  # <eos>: the model answers with its last line
                return text, True
        steps = [] if terminal else [s.text for s in task.legal_steps(state) or []]
        choices = [c for c in steps if c not in tried] + ([back] if back is not None else [])
        if not choices:
            return text, True
        if spent + max(size(c) for c in choices) + 1 > limit:
            return text, False
        scores = np.asarray(policy.score([context], [[c + "\n" for c in choices]])[0], dtype=float)
        line = choices[int(np.argmax(scores)) if pick is None else pick(scores)]
        if pick is None and by_mass and back is not None and len(choices) > 1:
            steps_mass = np.logaddexp.reduce(scores[:-1])  # the back line is the last choice
            line = back if scores[-1] > steps_mass else choices[int(np.argmax(scores[:-1]))]
        spent += size(line) + (1 if lines else 0)
        lines.append(line)
        if line == back:
            path.pop()
        else:
            tried.add(line)
            path.append((task.apply(state, task.parse_step(state, line)), line, set()))
