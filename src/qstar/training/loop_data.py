"""The data side of the training loop: which problems a round searches, and the replay store.

- Problems come from the task's train split as a stream of seeded, shuffled epochs, or are
  generated from the task's rules alone (:func:`generate_problems`: random number sets, no
  solvability filter; a generated problem only yields a solution if search + verifier find
  one). Test and val problems never enter: :func:`check_not_held_out` (on problems) and the
  :class:`Replay` (on every prompt it stores) raise ``AssertionError`` the moment one would.
- :class:`Replay` keeps the training targets by prompt across rounds.

Every random choice comes from :func:`derive_seed` (the run's seed plus a purpose and a round),
so a resumed run draws exactly what an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qstar.errors import ConfigError, ProblemError
from qstar.tasks.base import Task
from qstar.types import Problem

__all__ = [
    "SOURCES",
    "derive_seed",
    "held_out_texts",
    "held_out_headers",
    "check_not_held_out",
    "generate_problems",
    "round_problems",
    "rule_steps",
    "split_choice",
    "Replay",
]

SOURCES = ("train", "generated", "train+generated")


def derive_seed(seed: int, *parts: Any) -> int:
    """A seed for one purpose of one round (``derive_seed(0, "train", 3)``), so every random
    choice is a function of the run's seed and position, never of what ran before it."""
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % (2**31 - 1)


# -- problems -------------------------------------------------------------------------------------
def held_out_texts(task: Task) -> frozenset[str]:
    """Problem texts of the test and val splits (for Game of 24 the sorted number multiset)."""
    return frozenset(p.text for split in ("test", "val") for p in task.problems(split))


def check_not_held_out(problems: Sequence[Problem], held_out: frozenset[str]) -> None:
    """Stop the run if a test or val problem is about to be searched or trained on."""
    bad = [p.text for p in problems if p.text in held_out]
    if bad:
        raise AssertionError(f"held-out (test/val) problems reached training: {bad[:5]}")


def generate_problems(
    task: Task, num: int, rng: random.Random, exclude: frozenset[str], prefix: str
) -> list[Problem]:
    """``num`` problems drawn from the task's rules alone (no solvability filter: a problem
    counts as solved only if the search and the verifier solve it), none of them in ``exclude``.

    Game of 24: four numbers uniform in 1-13. Countdown: numbers uniform in the spec's range (or
    drawn from the deck), target uniform in its range."""
    out: list[Problem] = []
    spec = getattr(task, "spec", None)
    for _ in range(num * 100):
        if len(out) == num:
            break
        if task.name == "game24":
            data: dict[str, Any] = {"numbers": [rng.randint(1, 13) for _ in range(4)]}
        elif spec is not None and hasattr(spec, "target_range"):
            if spec.number_range is None:
                deck = list(range(1, 11)) * 2 + [25, 50, 75, 100]
                numbers = rng.sample(deck, spec.num_numbers)
            else:
                numbers = [rng.randint(*spec.number_range) for _ in range(spec.num_numbers)]
            data = {"numbers": numbers, "target": rng.randint(*spec.target_range)}
        else:
            raise ConfigError(
                f"task {task.name!r} has no rule-based problem generator; use problem_source 'train'"
            )
        try:
            problem = task.problem_from_json(data, id=f"{prefix}/{len(out)}")
        except ProblemError:  # e.g. a Countdown target that is already one of the numbers
            continue
        if problem.text not in exclude:
            out.append(problem)
    return out


_PERMS: dict[tuple[str, int, int, int], list[int]] = {}


def _epoch_perm(task: Task, seed: int, epoch: int, n: int) -> list[int]:
    key = (task.name, seed, epoch, n)
    if key not in _PERMS:
        perm = list(range(n))
        random.Random(derive_seed(seed, "epoch", epoch)).shuffle(perm)
        _PERMS[key] = perm
    return _PERMS[key]


def round_problems(
    task: Task,
    *,
    source: str,
    count: int,
    seed: int,
    round_index: int,
    start: int,
    held_out: frozenset[str],
) -> list[Problem]:
    """The ``count`` problems of one round, train problems first. Train problems are the
    positions ``start, start + 1, ...`` of a stream of seeded shuffled epochs of the train
    split; generated ones (all of them, or half with ``"train+generated"``) come from the
    round's own seed."""
    if source not in SOURCES:
        raise ConfigError(f"problem source {source!r}: choose from {', '.join(SOURCES)}")
    num_gen = {"train": 0, "generated": count, "train+generated": count // 2}[source]
    train = task.problems("train") if num_gen < count else []
    out = [
        train[_epoch_perm(task, seed, pos // len(train), len(train))[pos % len(train)]]
        for pos in range(start, start + count - num_gen)
    ]
    rng = random.Random(derive_seed(seed, "generate", round_index))
    out += generate_problems(task, num_gen, rng, held_out, f"gen/{round_index}")
    check_not_held_out(out, held_out)
    return out


def rule_steps(task: Task, num: int, rng: random.Random, exclude: frozenset[str]) -> list[tuple[str, str]]:
    """``num`` (prompt, step) pairs written from the rules alone, to teach the policy to
    *write* legal steps (the arithmetic and the ``(left: ...)`` bookkeeping).

    Each pair: a problem from :func:`generate_problems` (never one in ``exclude``), a random
    walk of legal steps from it, one of the walk's non-terminal states drawn uniformly, and one
    of that state's legal steps drawn uniformly. The steps are uniform over what the rules
    allow, so they carry no preference between steps and no knowledge of solutions; that comes
    from search and the verifier only."""
    out: list[tuple[str, str]] = []
    for problem in generate_problems(task, num, rng, exclude, "rules"):
        state = task.initial_state(problem)
        states = [state]
        while steps := task.legal_steps(state):
            state = task.apply(state, rng.choice(steps))
            if task.is_terminal(state):
                break
            states.append(state)
        state = rng.choice(states)
        steps = task.legal_steps(state)
        if not steps:
            raise ConfigError(f"task {task.name!r} lists no legal step for {task.render(state)!r}")
        out.append((task.render(state), rng.choice(steps).text))
    return out


def split_choice(step: str) -> tuple[str, str]:
    """``("10 - 4", " = 6 (left: 5 6 6)")``: a step cut before its first ``" = "`` into the
    choice (operands and operation) and what the rules then determine; ``("", step)`` when
    there is no ``" = "``. Training on the second part only teaches how to write a step without
    teaching which one to take."""
    i = step.find(" = ")
    return (step[:i], step[i:]) if i > 0 else ("", step)


# -- replay store -----------------------------------------------------------------------------------
@dataclass
class Replay:
    """Training targets by prompt. Verified facts (reachability labels, verified steps) are
    kept for the whole run; targets that depend on the searching policy (visit counts, Q) are
    replaced by the latest search of the same state."""

    policy: dict[str, dict[str, float]] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)

    def merge(
        self, records: Sequence[dict[str, Any]], *, union: bool, held_out_headers: frozenset[str]
    ) -> None:
        for record in records:
            for prompt, dist in record.get("policy", ()):
                _check_prompt(prompt, held_out_headers)
                if union and prompt in self.policy:
                    old = self.policy[prompt]
                    steps = {**old, **dist}
                    good = [step for step in steps if old.get(step, 0.0) > 0 or dist.get(step, 0.0) > 0]
                    dist = {step: (1.0 / len(good) if step in good else 0.0) for step in steps}
                self.policy[prompt] = dict(dist)
            for prompt, value in record.get("values", ()):
                _check_prompt(prompt, held_out_headers)
                self.values[prompt] = float(value)

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy, "values": self.values}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Replay:
        return cls(dict(obj.get("policy", {})), dict(obj.get("values", {})))


def _check_prompt(prompt: str, held_out_headers: frozenset[str]) -> None:
    if prompt.split("\n", 1)[0] in held_out_headers:
        raise AssertionError(f"a held-out (test/val) problem reached the training data: {prompt[:60]!r}")


def held_out_headers(task: Task) -> frozenset[str]:
    """First prompt lines (``"game24: 4 5 6 10"``) of the test and val problems."""
    return frozenset(
        task.render(task.initial_state(p)).split("\n", 1)[0]
        for s in ("test", "val")
        for p in task.problems(s)
    )
