"""Monte-Carlo values of states: let the policy finish the reasoning N times and count successes.

Math-Shepherd (Wang et al. 2024, "Math-Shepherd: Verify and Reinforce LLMs Step-by-step without
Human Annotations", arXiv 2312.08935, Section 3.3) labels a step by decoding ``N`` completions
from the state after it and checking their final answers:

- **hard estimation** (HE): ``1`` if any completion reaches the right answer, else ``0``;
- **soft estimation** (SE): the share of completions that do, ``#successes / N``.

The soft value is the Monte-Carlo estimate of ``V^pi(s)``, the policy's chance of finishing
right from ``s``. :attr:`RolloutLabel.best` is the Q* paper's "best rollout" estimate (Wang et
al. 2024, arXiv 2406.14283, Section 4.2): ``max_i gamma^k_i * R_i`` over the completions, with
``k_i`` the steps completion ``i`` took and ``R_i`` its 0/1 outcome; with ``gamma = 1`` it is
the hard label.

Batching (:func:`complete`): in ``generate`` mode all N completions of all asked states come
from ONE ``policy.generate`` call with ``num_samples = N``; each completion is the whole rest of
the reasoning (up to ``max_new_tokens``), read line by line with
``task.parse_step``/``task.legal``/``task.apply`` until a terminal state. A line that does not
parse or breaks the rules, or text that ends before a terminal state, is a failed completion
(outcome 0); lines after the terminal state are ignored. In ``enumerate`` mode (tasks with
enumerable steps) the completions walk the legal steps in lockstep, one batched
``policy.score`` call per depth. Equal states are rolled out once.

Ground truth: the outcome comes from ``task.outcome``. On a task without a test-time verifier
(``arith``) that is the held-out answer key, fine for making training labels on the train
split (as Math-Shepherd does with gold answers) but not for scoring at test time, so the
scorer refuses such a task unless ``allow_ground_truth=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qstar.errors import ConfigError, IllegalStepError, ParseError
from qstar.policy.base import Policy, Usage
from qstar.search.checks import check_choice, check_float, check_int
from qstar.tasks.base import Task
from qstar.types import Cost, State, Step

__all__ = ["Completion", "RolloutLabel", "complete", "RolloutScorer", "account"]


@dataclass(frozen=True)
class Completion:
    """One sampled continuation read as steps: where it ended and why.

    ``end`` is ``"terminal"`` (a terminal state was reached), ``"invalid_step"`` (a line did
    not parse or was illegal; ``state`` is the last good state) or ``"unfinished"``.
    ``num_tokens`` is what the policy generated for it.
    """

    steps: tuple[Step, ...]
    state: State
    end: str
    num_tokens: int


def account(usage: Usage, cost: Cost, before: Usage, after: Usage) -> None:
    """Add what a model did between two snapshots of its usage to a scorer's ``usage`` (which
    searches charge, see :mod:`qstar.rewards.base`) and to ``cost`` (for callers outside a search)."""
    fields = ("model_calls", "tokens_generated", "tokens_scored", "tokens_prompt")
    delta = {f: getattr(after, f) - getattr(before, f) for f in fields}
    for f in fields:
        setattr(usage, f, getattr(usage, f) + delta[f])
    cost.add(Cost(delta["model_calls"], delta["tokens_generated"], delta["tokens_scored"]))


def _read_completion(task: Task, start: State, text: str, num_tokens: int, max_steps: int) -> Completion:
    state, steps = start, []
    for line in text.split("\n"):
        if task.is_terminal(state) or state.depth >= max_steps:
            break
        if not line.strip():
            continue
        try:
            step = task.parse_step(state, line.strip())
            if not task.legal(state, step):
                raise IllegalStepError("illegal")
            state = task.apply(state, step)
        except (ParseError, IllegalStepError):
            return Completion(tuple(steps), state, "invalid_step", num_tokens)
        steps.append(step)
    end = "terminal" if task.is_terminal(state) else "unfinished"
    return Completion(tuple(steps), state, end, num_tokens)


def complete(
    task: Task,
    policy: Policy,
    states: Sequence[State],
    *,
    num_samples: int,
    temperature: float = 1.0,
    max_new_tokens: int = 128,
    stop: Sequence[str] = (),
    seed: int | None = 0,
    mode: str = "auto",
) -> list[list[Completion]]:
    """``num_samples`` completions of each state, batched over all states.

    ``mode="generate"``: free text from ONE ``generate`` call, read line by line (module
    docstring). ``mode="enumerate"`` (tasks whose ``legal_steps`` are enumerable, e.g. the
    number games): the completions advance in lockstep, one step per batched ``policy.score``
    call over the legal steps of their distinct states, each drawing its step from the policy's
    distribution restricted to legal steps, ``softmax(logprob / temperature)`` (AlphaZero's
    masking of illegal moves), so a model that cannot yet write a legal line still yields
    informative rollouts; ``num_tokens`` is 0 there (the scored tokens are in ``policy.usage``).
    ``"auto"`` enumerates when the first state's steps are enumerable.

    Sampling a path from the root is the same operation, so this is also how sampled paths
    are drawn. With ``seed`` fixed the result is reproducible; in generate mode the completions
    of a state depend only on its text, and (for the tiny GPT) the first ``n`` of ``N``
    samples are the samples of an ``n``-sample call.
    """
    check_int("rollout", "num_samples", num_samples)
    check_choice("rollout", "mode", mode, ("auto", "generate", "enumerate"))
    if not states:
        return []
    if mode == "auto":
        mode = "enumerate" if task.legal_steps(states[0]) is not None else "generate"
    if mode == "enumerate":
        return _complete_enumerated(task, policy, states, num_samples, temperature, seed)
    gens = policy.generate(
        [task.render(s) for s in states],
        num_samples=num_samples,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        stop=tuple(stop),
        seed=seed,
    )
    return [
        [_read_completion(task, s, g.text, g.num_tokens, task.max_steps) for g in row]
        for s, row in zip(states, gens, strict=True)
    ]


def _complete_enumerated(
    task: Task, policy: Policy, states: Sequence[State], n: int, temperature: float, seed: int | None
) -> list[list[Completion]]:
    rng = np.random.default_rng(seed)
    current = [[s] * n for s in states]
    steps: list[list[list[Step]]] = [[[] for _ in range(n)] for _ in states]
    ends: list[list[str | None]] = [[None] * n for _ in states]
    while True:
        live = []
        for i, row in enumerate(current):
            for j, s in enumerate(row):
                if ends[i][j] is None:
                    if task.is_terminal(s) or s.depth >= task.max_steps:
                        ends[i][j] = "terminal" if task.is_terminal(s) else "unfinished"
                    else:
                        live.append((i, j))
        if not live:
            break
        distinct = {task.render(current[i][j]): current[i][j] for i, j in live}
        legal = {text: task.legal_steps(s) or [] for text, s in distinct.items()}
        asked = [text for text in distinct if legal[text]]
        logprobs = policy.score(asked, [[st.text + "\n" for st in legal[t]] for t in asked]) if asked else []
        probs = {}
        for text, lps in zip(asked, logprobs, strict=True):
            z = np.asarray(lps, dtype=float) / max(temperature, 1e-6)
            z = np.exp(z - z.max())
            probs[text] = z / z.sum()
        for i, j in live:
            text = task.render(current[i][j])
            if text not in probs:  # no legal step: a dead end
                ends[i][j] = "invalid_step"
                continue
            step = legal[text][int(rng.choice(len(probs[text]), p=probs[text]))]
            current[i][j] = task.apply(current[i][j], step)
            steps[i][j].append(step)
    return [
        [Completion(tuple(steps[i][j]), current[i][j], ends[i][j] or "unfinished", 0) for j in range(n)]
        for i in range(len(states))
    ]


@dataclass(frozen=True)
class RolloutLabel:
    """Math-Shepherd labels of one state: ``hard`` (HE), ``soft`` (SE), Q*'s ``best``, counts."""

    hard: bool
    soft: float
    best: float
    num_success: int
    num_rollouts: int
    num_tokens: int


def _outcome(task: Task, completion: Completion) -> float:
    if completion.end != "terminal":
        return 0.0
    return float(task.outcome(completion.state) or 0.0)


class RolloutScorer:
    """Monte-Carlo value of a state (module docstring). ``value`` returns the soft label."""

    def __init__(
        self,
        task: Task,
        policy: Policy,
        *,
        num_rollouts: int = 16,
        temperature: float = 1.0,
        max_new_tokens: int = 128,
        gamma: float = 1.0,
        seed: int | None = 0,
        mode: str = "auto",
        allow_ground_truth: bool = False,
        cost: Cost | None = None,
    ) -> None:
        if not task.has_test_time_verifier and not allow_ground_truth:
            raise ConfigError(
                f"task {task.name!r} has no test-time verifier: rollouts would read its answer key. "
                "Use rollouts only to make training labels (allow_ground_truth=True, `qstar label`), "
                "and a learned scorer (prm:PATH, q:PATH) at test time"
            )
        check_int("rollout", "num_rollouts", num_rollouts)
        check_float("rollout", "temperature", temperature, low=0.0, low_open=True)
        check_int("rollout", "max_new_tokens", max_new_tokens)
        check_float("rollout", "gamma", gamma, low=0.0, high=1.0)
        check_choice("rollout", "mode", mode, ("auto", "generate", "enumerate"))
        self.task = task
        self.policy = policy
        self.num_rollouts = num_rollouts
        self.temperature = float(temperature)
        self.max_new_tokens = max_new_tokens
        self.gamma = float(gamma)
        self.seed = seed
        self.mode = mode
        self.cost = Cost() if cost is None else cost
        self.name = f"rollout:{num_rollouts}"
        self.usage = Usage()

    def labels(self, states: Sequence[State]) -> list[RolloutLabel]:
        """Math-Shepherd labels of each state; a terminal state is labelled by its outcome."""
        out: list[RolloutLabel | None] = [None] * len(states)
        todo: dict[str, list[int]] = {}
        for i, s in enumerate(states):
            if self.task.is_terminal(s):
                r = float(self.task.outcome(s) or 0.0)
                out[i] = RolloutLabel(r >= 1.0, r, r, int(r >= 1.0), 0, 0)
            else:
                todo.setdefault(self.task.render(s), []).append(i)
        if todo:
            firsts = [states[idx[0]] for idx in todo.values()]
            before = self.policy.usage.snapshot()
            rows = complete(
                self.task,
                self.policy,
                firsts,
                num_samples=self.num_rollouts,
                temperature=self.temperature,
                max_new_tokens=self.max_new_tokens,
                seed=self.seed,
                mode=self.mode,
            )
            account(self.usage, self.cost, before, self.policy.usage)
            for idx, row in zip(todo.values(), rows, strict=True):
                rewards = [_outcome(self.task, c) for c in row]
                wins = sum(1 for r in rewards if r >= 1.0)
                best = max(
                    (r * self.gamma ** len(c.steps) for r, c in zip(rewards, row, strict=True)), default=0
                )
                label = RolloutLabel(
                    wins > 0,
                    sum(rewards) / len(row),
                    float(best),
                    wins,
                    len(row),
                    sum(c.num_tokens for c in row),
                )
                for i in idx:
                    out[i] = label
        return out  # type: ignore[return-value]

    def value(self, states: Sequence[State]) -> list[float]:
        return [label.soft for label in self.labels(states)]

    __call__ = value  # usable as Q*'s ``q_fn``
