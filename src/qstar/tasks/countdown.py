"""Countdown: reach a target from a few numbers with + - * /; not every number has to be used.

Two built-in settings, both generated from fixed seeds:

- ``countdown-4``: 4 numbers uniform in 1-99, target uniform in 1-100 (the Stream-of-Search
  setting, Gandhi et al. 2024, arXiv 2404.03683).
- ``countdown-6``: the TV game: 6 cards drawn from the deck 1-10 (twice each), 25, 50, 75, 100;
  target uniform in 101-999.

Every intermediate result must be a positive integer (the TV rules). Only instances with an
exact solution are kept, and none whose target is already one of the numbers. Splits are
drawn from separate seeds (test, then val, then train) and made disjoint by problem text, so
``test`` never leaks into ``train``. Steps use the ToT format of the number games, and the
reasoning ends as soon as a step produces the target (or one number is left).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from qstar.errors import ProblemError
from qstar.tasks.base import SPLITS
from qstar.tasks.numbers_game import NumbersGame
from qstar.tasks.numbers_oracle import reachable_integers  # problem generation only, never search
from qstar.types import Problem

__all__ = ["CountdownSpec", "CountdownTask", "COUNTDOWN_4", "COUNTDOWN_6"]

_DECK = tuple(list(range(1, 11)) * 2 + [25, 50, 75, 100])


@dataclass(frozen=True)
class CountdownSpec:
    """One Countdown setting: how many numbers, their range or deck, the target range, the
    split sizes and seeds."""

    name: str
    num_numbers: int
    number_range: tuple[int, int] | None  # uniform range, or None to draw from the TV deck
    target_range: tuple[int, int]
    split_sizes: tuple[tuple[str, int], ...]
    split_seeds: tuple[tuple[str, int], ...]


COUNTDOWN_4 = CountdownSpec(
    "countdown-4",
    4,
    (1, 99),
    (1, 100),
    (("test", 200), ("val", 200), ("train", 10000)),
    (("test", 4001), ("val", 4002), ("train", 4003)),
)
COUNTDOWN_6 = CountdownSpec(
    "countdown-6",
    6,
    None,
    (101, 999),
    (("test", 100), ("val", 100), ("train", 2000)),
    (("test", 6001), ("val", 6002), ("train", 6003)),
)


class CountdownTask(NumbersGame):
    """Countdown with the rules of the module docstring."""

    has_test_time_verifier = True
    must_use_all = False
    integer_only = True

    def __init__(self, spec: CountdownSpec = COUNTDOWN_4):
        self.spec = spec
        self.name = spec.name
        self.max_steps = spec.num_numbers - 1

    # -- problems -----------------------------------------------------------------------------
    def _make(self, numbers: tuple[int, ...], target: int, *, id: str = "") -> Problem:
        numbers = tuple(sorted(numbers))
        text = f"{' '.join(map(str, numbers))} -> {target}"
        return Problem(self.name, text, {"numbers": list(numbers), "target": target}, id=id)

    def _validate(self, numbers: list[Any], target: Any, shown: str) -> tuple[tuple[int, ...], int]:
        n = self.spec.num_numbers
        lo, hi = self.spec.number_range or (1, 100)
        tlo, thi = self.spec.target_range
        if (
            not isinstance(numbers, list)
            or len(numbers) != n
            or not all(isinstance(x, int) and not isinstance(x, bool) and lo <= x <= hi for x in numbers)
        ):
            raise ProblemError(f"{self.name} problem {shown!r}: expected {n} integers {lo}-{hi} and a target")
        if not isinstance(target, int) or isinstance(target, bool) or not tlo <= target <= thi:
            raise ProblemError(f"{self.name} problem {shown!r}: target must be an integer {tlo}-{thi}")
        if target in numbers:
            raise ProblemError(f"{self.name} problem {shown!r}: the target is already one of the numbers")
        return tuple(numbers), target

    def parse_problem(self, text: str, target: int | None = None) -> Problem:
        """``"25 50 75 100 3 6 -> 952"`` (or the numbers alone plus ``target``)."""
        body, _, tgt = text.partition("->")
        if not tgt.strip() and target is None:
            raise ProblemError(
                f"{self.name} problem {text.strip()!r}: give a target, e.g. '25 50 75 100 3 6 -> 952'"
            )
        parts = [p for p in re.split(r"[\s,]+", body.strip()) if p]
        try:
            numbers = [int(p) for p in parts]
            tval = int(tgt.strip()) if tgt.strip() else target
        except ValueError:
            raise ProblemError(
                f"{self.name} problem {text.strip()!r}: expected integers, e.g. '25 50 75 100 3 6 -> 952'"
            ) from None
        nums, tval = self._validate(numbers, tval, text.strip())
        return self._make(nums, tval)

    def problem_from_json(self, obj: dict[str, Any], *, id: str = "") -> Problem:
        nums, target = self._validate(obj.get("numbers"), obj.get("target"), str(obj)[:80])
        return self._make(nums, target, id=id)

    def target_of(self, problem: Problem) -> Fraction:
        return Fraction(problem.data["target"])

    def problems(self, split: str) -> list[Problem]:
        if split not in SPLITS:
            raise ProblemError(f"unknown split {split!r} for {self.name} (choose from {', '.join(SPLITS)})")
        return list(_generate_splits(self.spec, split)[split])

    def draw(self, rng: random.Random) -> Problem | None:
        """One random instance with an exact solution, or None when the draw has none."""
        if self.spec.number_range is None:
            numbers = tuple(rng.sample(_DECK, self.spec.num_numbers))
        else:
            lo, hi = self.spec.number_range
            numbers = tuple(rng.randint(lo, hi) for _ in range(self.spec.num_numbers))
        target = rng.randint(*self.spec.target_range)
        if target in numbers:
            return None
        return self._make(numbers, target) if target in reachable_integers(numbers) else None


_GENERATED: dict[str, dict[str, tuple[Problem, ...]]] = {}


def _generate_splits(spec: CountdownSpec, upto: str) -> dict[str, tuple[Problem, ...]]:
    """Generate splits in their fixed order (test, val, train) up to ``upto``; cached. Later
    splits exclude every problem text of earlier ones, so generating train never changes test."""
    out = _GENERATED.setdefault(spec.name, {})
    task = CountdownTask(spec)
    seen = {p.text for problems in out.values() for p in problems}
    seeds = dict(spec.split_seeds)
    for split, size in spec.split_sizes:
        if split not in out:
            rng = random.Random(seeds[split])
            problems: list[Problem] = []
            while len(problems) < size:
                p = task.draw(rng)
                if p is None or p.text in seen:
                    continue
                seen.add(p.text)
                problems.append(Problem(p.task, p.text, p.data, id=f"{split}/{len(problems) + 1}"))
            out[split] = tuple(problems)
        if split == upto:
            break
    return out
