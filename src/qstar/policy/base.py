"""The ``Policy`` protocol: a language model that writes and scores reasoning text.

A policy knows nothing of tasks: it maps prompts to continuations. The bridge from a task's
states to a policy's prompts (``Task.render``) and back (``Task.parse_step``) lives in
:mod:`qstar.search.expand`, so every backend (the built-in tiny GPT, a Hugging Face model, an
OpenAI-compatible server, the scripted mock) plugs into every search the same way.

Every policy keeps a running :class:`Usage` account: searches read it before and after a call
to charge the cost of that call to their :class:`~qstar.types.Cost`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from qstar.errors import ConfigError

__all__ = ["Policy", "Generation", "Usage", "check_generate_args"]


@dataclass(frozen=True)
class Generation:
    """One sampled continuation: its text (stop string removed), summed log-probability,
    the number of tokens generated and whether it ended on a stop string / end of text."""

    text: str
    logprob: float
    num_tokens: int
    finished: bool = True


@dataclass
class Usage:
    """Running account of what a policy has been asked to do."""

    model_calls: int = 0
    tokens_generated: int = 0
    tokens_scored: int = 0
    tokens_prompt: int = 0

    def snapshot(self) -> Usage:
        return Usage(self.model_calls, self.tokens_generated, self.tokens_scored, self.tokens_prompt)

    def add_since(self, before: Usage, after: Usage) -> Usage:
        """Add to this account what another one did between its snapshots ``before`` and
        ``after`` (a scorer charging the model calls it caused); returns that difference."""
        delta = Usage(
            after.model_calls - before.model_calls,
            after.tokens_generated - before.tokens_generated,
            after.tokens_scored - before.tokens_scored,
            after.tokens_prompt - before.tokens_prompt,
        )
        self.model_calls += delta.model_calls
        self.tokens_generated += delta.tokens_generated
        self.tokens_scored += delta.tokens_scored
        self.tokens_prompt += delta.tokens_prompt
        return delta


@runtime_checkable
class Policy(Protocol):
    """A language model over text (see module docstring)."""

    name: str
    usage: Usage

    def generate(
        self,
        prompts: Sequence[str],
        *,
        num_samples: int = 1,
        temperature: float = 1.0,
        top_k: int | None = None,
        max_new_tokens: int = 64,
        stop: Sequence[str] = ("\n",),
        seed: int | None = None,
    ) -> list[list[Generation]]:
        """``num_samples`` continuations of each prompt; ``temperature=0`` is greedy."""
        ...

    def score(self, prompts: Sequence[str], continuations: Sequence[Sequence[str]]) -> list[list[float]]:
        """Summed log-probability of each continuation given its prompt.

        ``continuations[i]`` are candidates for ``prompts[i]``; the prompt is computed once and
        shared by its candidates (KV-cache prefix reuse).
        """
        ...

    def value(self, prompts: Sequence[str]) -> list[float]:
        """Value of each prompt's state in [0, 1] (a value head). Backends without one raise
        :class:`NotImplementedError`."""
        ...


def check_generate_args(
    *,
    num_samples: int,
    temperature: float,
    top_k: int | None,
    max_new_tokens: int,
    stop: str | Sequence[str],
) -> tuple[str, ...]:
    """Validate the arguments every backend's ``generate`` takes; return ``stop`` as a tuple.

    Raises :class:`~qstar.errors.ConfigError` naming the bad argument.
    """
    stop = (stop,) if isinstance(stop, str) else tuple(stop)
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ConfigError(f"num_samples must be a positive integer, got {num_samples!r}")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature >= 0):
        raise ConfigError(f"temperature must be a finite number >= 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ConfigError(f"top_k must be None or a positive integer, got {top_k!r}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ConfigError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if any(not isinstance(x, str) or not x for x in stop):
        raise ConfigError(f"stop strings must be non-empty strings, got {stop!r}")
    return stop
