"""The one bridge from a task and a policy to steps, and from a task and a scorer to values.

Every search gets its children from :func:`expand` (or one line per path from
:func:`sample_steps`) and its values from :func:`evaluate`; nothing else in ``search/`` calls a
policy or a scorer. That keeps the meaning of an *expansion* and the cost accounting the same
in every algorithm:

- **Enumerable steps** (``task.legal_steps(state)`` is a list): one batched
  ``policy.score(prompts, [[step.text + "\\n", ...]])`` call for all states; the prior of a
  step is the softmax of the log-probabilities over the state's legal steps (the policy's
  distribution restricted to legal moves, as AlphaZero masks illegal moves).
- **Open-ended steps** (``legal_steps`` is ``None``): ``policy.generate`` draws ``num_samples``
  lines per state at ``temperature`` (stop ``"\\n"``, seed drawn from ``rng``); each line is
  read with ``task.parse_step``, lines that do not parse or are illegal are dropped and counted
  in :class:`ExpandStats`, duplicates (same step text) are merged; the prior is
  ``exp(logprob)`` normalised over the distinct steps.
- **No policy** (``policy=None``, the ``blind`` baseline): a uniform prior over the legal steps
  and no model call.

Cost: ``cost.expansions += len(states)`` (terminal states included if a caller passes them),
plus the policy's ``usage`` difference over the call (model calls, generated and scored
tokens). :func:`evaluate` charges the scorer's ``usage`` difference the same way; a terminal
state of a task with a test-time verifier is valued by the verifier, for free.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qstar.errors import ConfigError, IllegalStepError, ParseError
from qstar.policy.base import Policy
from qstar.rewards.base import Scorer
from qstar.search.checks import draw_seed
from qstar.search.meter import charge_usage
from qstar.tasks.base import Task
from qstar.types import Cost, State, Step

__all__ = ["ExpandStats", "expand", "sample_steps", "evaluate", "softmax"]

#: How many rejected lines :class:`ExpandStats` keeps as examples.
MAX_REJECTED_KEPT = 20


@dataclass
class ExpandStats:
    """What happened to the lines a policy generated (open-ended tasks)."""

    num_generated: int = 0
    num_unparsable: int = 0
    num_illegal: int = 0
    num_duplicates: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (line, reason), first few

    def reject(self, kind: str, text: str, reason: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.rejected) < MAX_REJECTED_KEPT:
            self.rejected.append((text, reason))

    def to_json(self) -> dict[str, Any]:
        return {
            "num_generated": self.num_generated,
            "num_unparsable": self.num_unparsable,
            "num_illegal": self.num_illegal,
            "num_duplicates": self.num_duplicates,
            "rejected": [list(r) for r in self.rejected],
        }


def softmax(logits: Sequence[float]) -> list[float]:
    """Numerically stable softmax (subtract the max before ``exp``)."""
    if not logits:
        return []
    top = max(logits)
    if top == -math.inf:
        return [1.0 / len(logits)] * len(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return [e / total for e in exps]


def _read_line(task: Task, state: State, text: str, logprob: float, stats: ExpandStats) -> Step | None:
    """Parse one generated line into a legal step, or count why not."""
    stats.num_generated += 1
    line = text.strip()
    try:
        parsed = task.parse_step(state, line)
    except (ParseError, IllegalStepError) as err:
        stats.reject("num_unparsable", line, str(err))
        return None
    if not task.legal(state, parsed):
        stats.reject("num_illegal", line, "illegal in this state")
        return None
    return Step(parsed.text, logprob)


def expand(
    task: Task,
    policy: Policy | None,
    states: Sequence[State],
    *,
    num_samples: int = 8,
    temperature: float = 1.0,
    max_new_tokens: int = 64,
    cost: Cost,
    rng: np.random.Generator | None = None,
    stats: ExpandStats | None = None,
) -> list[list[tuple[Step, float]]]:
    """Children ``(step, prior)`` of each state, from one batched policy call (module docstring)."""
    stats = ExpandStats() if stats is None else stats
    cost.expansions += len(states)
    out: list[list[tuple[Step, float]]] = [[] for _ in states]
    live = [i for i, s in enumerate(states) if not task.is_terminal(s)]
    if not live:
        return out
    legal = {i: task.legal_steps(states[i]) for i in live}
    enumerable = all(v is not None for v in legal.values())
    if policy is None:
        if not enumerable:
            raise ConfigError(
                f"task {task.name!r} has no enumerable steps; a search without a policy cannot expand it"
            )
        for i in live:
            steps = legal[i]
            out[i] = [(step, 1.0 / len(steps)) for step in steps]
        return out
    before = policy.usage.snapshot()
    if enumerable:
        asked = [i for i in live if legal[i]]
        if asked:
            logprobs = policy.score(
                [task.render(states[i]) for i in asked], [[s.text + "\n" for s in legal[i]] for i in asked]
            )
            for i, lps in zip(asked, logprobs, strict=True):
                priors = softmax([float(x) for x in lps])
                out[i] = [
                    (Step(s.text, float(lp)), p) for s, lp, p in zip(legal[i], lps, priors, strict=True)
                ]
    else:
        seed = None if rng is None else draw_seed(rng)
        gens = policy.generate(
            [task.render(states[i]) for i in live],
            num_samples=num_samples,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            stop=("\n",),
            seed=seed,
        )
        for i, row in zip(live, gens, strict=True):
            distinct: dict[str, Step] = {}
            for gen in row:
                step = _read_line(task, states[i], gen.text, float(gen.logprob), stats)
                if step is None:
                    continue
                if step.text in distinct:
                    stats.num_duplicates += 1
                    continue
                distinct[step.text] = step
            steps = list(distinct.values())
            priors = softmax([s.logprob for s in steps])
            out[i] = list(zip(steps, priors, strict=True))
    charge_usage(cost, before, policy.usage)
    return out


def sample_steps(
    task: Task,
    policy: Policy,
    states: Sequence[State],
    *,
    temperature: float,
    max_new_tokens: int = 64,
    cost: Cost,
    rng: np.random.Generator | None = None,
    stats: ExpandStats | None = None,
) -> list[Step | None]:
    """One generated step line per state (one batched ``generate`` call): the System-1 way of
    walking a path, used by greedy decoding and sampled paths. Always generates, even where the
    steps are enumerable, so that a model that writes an unparsable or illegal line is caught
    (``None`` for that state). Each state counts as one expansion."""
    stats = ExpandStats() if stats is None else stats
    cost.expansions += len(states)
    if not states:
        return []
    before = policy.usage.snapshot()
    gens = policy.generate(
        [task.render(s) for s in states],
        num_samples=1,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        stop=("\n",),
        seed=None if rng is None else draw_seed(rng),
    )
    charge_usage(cost, before, policy.usage)
    return [
        _read_line(task, s, row[0].text, float(row[0].logprob), stats)
        for s, row in zip(states, gens, strict=True)
    ]


def evaluate(task: Task, scorer: Scorer | None, states: Sequence[State], *, cost: Cost) -> list[float]:
    """Value of each state in [0, 1]: the verifier's outcome for terminal states where the task
    has a test-time verifier (free), the scorer's value (one batched call) for the others."""
    values: list[float | None] = [None] * len(states)
    asked = []
    for i, s in enumerate(states):
        if task.has_test_time_verifier and task.is_terminal(s):
            outcome = task.outcome(s)
            values[i] = 0.0 if outcome is None else float(outcome)
        else:
            asked.append(i)
    if asked:
        if scorer is None:
            raise ConfigError("this search needs a scorer to value states (e.g. VerifierScorer(task))")
        usage = getattr(scorer, "usage", None)
        before = usage.snapshot() if usage is not None else None
        got = scorer.value([states[i] for i in asked])
        if usage is not None:
            charge_usage(cost, before, usage)
        for i, v in zip(asked, got, strict=True):
            values[i] = float(v)
    return values  # type: ignore[return-value]
