"""Deterministic scripted policy and scorer for tests: every answer is written down in advance.

:class:`MockPolicy` implements the :class:`~qstar.policy.base.Policy` protocol from three
scripts, each either a mapping or a function, with a default for whatever the script omits:

- ``scores``: log-probability of a continuation given a prompt. A mapping is looked up with the
  keys ``(prompt, continuation)``, then ``continuation``, each first as given and then with the
  trailing newline stripped (so ``{"+1": -0.3}`` scores ``"+1\\n"`` after any prompt). A
  function is called as ``scores(prompt, continuation)`` and may return ``None`` for "use the
  default".
- ``generations``: continuations of a prompt. A mapping from prompt to a list of items, each
  ``"text"`` or ``("text", logprob)``; a function ``generations(prompt)`` returns such a list.
  At ``temperature == 0`` every sample is the first item (greedy). At ``temperature > 0`` the
  samples of one call cycle through the list: the j-th sample drawn for a prompt in that call
  (counting repeated prompts and ``num_samples``) is item ``(seed + j) % len(list)`` with
  ``seed = 0`` when none is given. The mock is stateless, so equal calls give equal answers.
- ``values``: value of a prompt's state, a mapping from prompt or a function of the prompt.

Usage accounting (kept honest so cost tests can compute it by hand): every public call
(``generate``, ``score``, ``value``) is one model call; a token is a whitespace-separated word,
so ``tokens_generated`` adds ``len(text.split())`` of each generation (``max_new_tokens`` cuts
a generation to that many words and marks it unfinished), ``tokens_scored`` adds the words of
each scored continuation and ``tokens_prompt`` the words of each prompt.

:class:`MockScorer` is the matching scripted :class:`~qstar.rewards.base.Scorer`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TypeAlias

from qstar.policy.base import Generation, Usage
from qstar.types import State

__all__ = ["MockPolicy", "MockScorer", "path_key"]

ScriptItem: TypeAlias = str | tuple[str, float]
ScoresScript: TypeAlias = Mapping[object, float] | Callable[[str, str], float | None]
GenerationsScript: TypeAlias = Mapping[str, Sequence[ScriptItem]] | Callable[[str], Sequence[ScriptItem]]
ValuesScript: TypeAlias = Mapping[str, float] | Callable[[str], float | None]


def _words(text: str) -> int:
    return len(text.split())


class MockPolicy:
    """A scripted policy (see module docstring)."""

    def __init__(
        self,
        *,
        scores: ScoresScript | None = None,
        default_logprob: float = -1.0,
        generations: GenerationsScript | None = None,
        default_generation: str = "",
        values: ValuesScript | None = None,
        default_value: float = 0.5,
        name: str = "mock",
    ) -> None:
        self.name = name
        self.usage = Usage()
        self._scores = scores
        self._default_logprob = float(default_logprob)
        self._generations = generations
        self._default_generation = default_generation
        self._values = values
        self._default_value = float(default_value)

    # -- scripts ------------------------------------------------------------------------------
    def _logprob(self, prompt: str, continuation: str) -> float:
        if callable(self._scores):
            out = self._scores(prompt, continuation)
            return self._default_logprob if out is None else float(out)
        if self._scores is not None:
            bare = continuation.rstrip("\n")
            for key in ((prompt, continuation), (prompt, bare), continuation, bare):
                if key in self._scores:
                    return float(self._scores[key])
        return self._default_logprob

    def _script(self, prompt: str) -> list[tuple[str, float]]:
        if callable(self._generations):
            items = self._generations(prompt)
        elif self._generations is not None:
            items = self._generations.get(prompt, ())
        else:
            items = ()
        out = [
            (item, self._default_logprob) if isinstance(item, str) else (item[0], float(item[1]))
            for item in items
        ]
        return out or [(self._default_generation, self._default_logprob)]

    # -- the Policy protocol ------------------------------------------------------------------
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
        self.usage.model_calls += 1
        drawn: dict[str, int] = {}
        out: list[list[Generation]] = []
        for prompt in prompts:
            self.usage.tokens_prompt += _words(prompt)
            script = self._script(prompt)
            row = []
            for _ in range(num_samples):
                j = drawn.get(prompt, 0)
                drawn[prompt] = j + 1
                text, logprob = script[0] if temperature == 0 else script[((seed or 0) + j) % len(script)]
                for s in stop:
                    if s and s in text:
                        text = text[: text.index(s)]
                words = text.split()
                finished = len(words) <= max_new_tokens
                if not finished:
                    text = " ".join(words[:max_new_tokens])
                num_tokens = _words(text)
                self.usage.tokens_generated += num_tokens
                row.append(Generation(text, logprob, num_tokens, finished))
            out.append(row)
        return out

    def score(self, prompts: Sequence[str], continuations: Sequence[Sequence[str]]) -> list[list[float]]:
        self.usage.model_calls += 1
        out = []
        for prompt, conts in zip(prompts, continuations, strict=True):
            self.usage.tokens_prompt += _words(prompt)
            self.usage.tokens_scored += sum(_words(c) for c in conts)
            out.append([self._logprob(prompt, c) for c in conts])
        return out

    def value(self, prompts: Sequence[str]) -> list[float]:
        self.usage.model_calls += 1
        out = []
        for prompt in prompts:
            self.usage.tokens_prompt += _words(prompt)
            if callable(self._values):
                v = self._values(prompt)
            elif self._values is not None:
                v = self._values.get(prompt)
            else:
                v = None
            out.append(self._default_value if v is None else float(v))
        return out


def path_key(state: State) -> tuple[str, ...]:
    """The step texts from the root to ``state``: the default key of :class:`MockScorer`."""
    return tuple(step.text for step in state.steps)


class MockScorer:
    """A scripted scorer: ``values[key_fn(state)]`` or ``default``; ``values`` may also be a
    function of the state. Each :meth:`value` call counts as one model call (it stands in for
    a value model) and no tokens. ``calls`` records the batches it was asked to value."""

    def __init__(
        self,
        values: Mapping[Hashable, float] | Callable[[State], float] | None = None,
        *,
        default: float = 0.5,
        key_fn: Callable[[State], Hashable] = path_key,
        name: str = "mock-scorer",
    ) -> None:
        self.name = name
        self.usage = Usage()
        self.calls: list[list[Hashable]] = []
        self._values = values
        self._default = float(default)
        self._key_fn = key_fn

    def value(self, states: Sequence[State]) -> list[float]:
        self.usage.model_calls += 1
        self.calls.append([self._key_fn(s) for s in states])
        out = []
        for state in states:
            if callable(self._values):
                out.append(float(self._values(state)))
            elif self._values is not None:
                out.append(float(self._values.get(self._key_fn(state), self._default)))
            else:
                out.append(self._default)
        return out
