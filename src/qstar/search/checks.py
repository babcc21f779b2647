"""Validation of search configs and seeds, at the boundary where a bad knob enters.

Every search config is a frozen, keyword-only dataclass whose ``__post_init__`` calls these
helpers, so ``MctsConfig(batch_size=0)`` fails at once with a message naming the knob.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from qstar.errors import ConfigError

__all__ = ["check_int", "check_float", "check_choice", "as_rng", "draw_seed"]


def check_int(owner: str, name: str, value: object, *, minimum: int = 1, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        extra = " or None" if allow_none else ""
        raise ConfigError(f"{owner}: {name} must be an integer >= {minimum}{extra}, got {value!r}")


def check_float(
    owner: str,
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.floating)) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        lo = "" if low is None else (f" > {low}" if low_open else f" >= {low}")
        hi = "" if high is None else f" <= {high}"
        raise ConfigError(
            f"{owner}: {name} must be a finite number{lo}{' and' if lo and hi else ''}{hi}, got {value!r}"
        )


def check_choice(owner: str, name: str, value: object, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{owner}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A generator from a generator, an integer seed, or ``None`` (= seed 0: searches are
    deterministic unless asked otherwise)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng(0)
    if isinstance(rng, bool) or not isinstance(rng, (int, np.integer)):
        raise ConfigError(f"rng must be a numpy Generator or an integer seed, got {rng!r}")
    return np.random.default_rng(int(rng))


def draw_seed(rng: np.random.Generator) -> int:
    """A fresh seed for one policy call, so sampling is reproducible from the search's seed."""
    return int(rng.integers(0, 2**31 - 1))
