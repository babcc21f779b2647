"""Game of 24: combine four numbers 1-13 with + - * / into 24 (Yao et al. 2023, "Tree of
Thoughts", arXiv 2305.10601).

Data: ToT's 1,362 puzzles from 4nums.com ranked by human solving time (vendored as
``qstar/data/24.csv`` with its MIT notice). Splits:

- ``test``: ranks 901-1000, exactly the 100 puzzles ToT reports on (first ``4 5 6 10``,
  last ``4 9 10 13``). Never train on these.
- ``val``: 100 fixed puzzles outside test (ranks drawn once with ``random.Random(24)``).
- ``train``: the other 1,162.

Arithmetic is exact over fractions, division is allowed and intermediate fractions are fine
(``1 5 5 5``: ``5 * (5 - 1 / 5)``). Steps use ToT's text format.
"""

from __future__ import annotations

import csv
import random
import re
from fractions import Fraction
from functools import cache
from importlib import resources
from typing import Any

from qstar.errors import ProblemError
from qstar.tasks.base import SPLITS
from qstar.tasks.numbers_game import NumbersGame
from qstar.types import Problem

__all__ = ["Game24Task", "load_puzzles", "TEST_RANKS", "VAL_SEED"]

TEST_RANKS = range(901, 1001)
VAL_SEED = 24
NUM_VAL = 100


@cache
def load_puzzles() -> tuple[tuple[int, tuple[int, ...]], ...]:
    """All (rank, numbers) rows of the vendored 24.csv, in rank order."""
    text = resources.files("qstar.data").joinpath("24.csv").read_text(encoding="utf-8")
    rows = []
    for row in csv.DictReader(text.splitlines()):
        rows.append((int(row["Rank"]), tuple(int(x) for x in row["Puzzles"].split())))
    return tuple(rows)


@cache
def _split_ranks() -> dict[str, tuple[int, ...]]:
    ranks = [r for r, _ in load_puzzles()]
    test = [r for r in ranks if r in TEST_RANKS]
    others = [r for r in ranks if r not in TEST_RANKS]
    val = sorted(random.Random(VAL_SEED).sample(others, NUM_VAL))
    val_set = set(val)
    train = [r for r in others if r not in val_set]
    return {"train": tuple(train), "val": tuple(val), "test": tuple(test)}


class Game24Task(NumbersGame):
    """Game of 24 (see module docstring)."""

    name = "game24"
    has_test_time_verifier = True
    max_steps = 3
    must_use_all = True
    integer_only = False

    def target_of(self, problem: Problem) -> Fraction:
        return Fraction(24)

    def problems(self, split: str) -> list[Problem]:
        if split not in SPLITS:
            raise ProblemError(f"unknown split {split!r} for game24 (choose from {', '.join(SPLITS)})")
        by_rank = dict(load_puzzles())
        return [self._make(by_rank[r], id=f"{split}/{r}") for r in _split_ranks()[split]]

    def _make(self, numbers: tuple[int, ...], *, id: str = "") -> Problem:
        numbers = tuple(sorted(numbers))
        return Problem(self.name, " ".join(map(str, numbers)), {"numbers": list(numbers)}, id=id)

    def parse_problem(self, text: str) -> Problem:
        """``"4 9 10 13"`` (commas allowed) -> a problem; a one-line :class:`ProblemError` otherwise."""
        parts = [p for p in re.split(r"[\s,]+", text.strip()) if p]
        if len(parts) != 4 or not all(re.fullmatch(r"\d{1,2}", p) and 1 <= int(p) <= 13 for p in parts):
            raise ProblemError(f"puzzle {text.strip()!r}: expected four integers 1-13, e.g. '4 9 10 13'")
        return self._make(tuple(int(p) for p in parts))

    def problem_from_json(self, obj: dict[str, Any], *, id: str = "") -> Problem:
        numbers = obj.get("numbers")
        if (
            not isinstance(numbers, list)
            or len(numbers) != 4
            or not all(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 13 for n in numbers)
        ):
            raise ProblemError(f'expected {{"numbers": [four integers 1-13]}}, got {obj!r:.80}')
        return self._make(tuple(numbers), id=id)
