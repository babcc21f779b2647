"""LLM-as-judge values: Tree of Thoughts' value prompt, "sure / likely / impossible".

ToT (Yao et al. 2023, arXiv 2305.10601, Section 4.1 and its code) values a Game-of-24 state by
asking the model, a few times, whether the numbers left can still reach 24, reading the last
line of each answer as ``sure``, ``likely`` or ``impossible`` and summing the fixed scores
``20 / 1 / 0.001`` over 3 samples; an answer without a verdict adds 0. We keep that rule and
divide by ``20 * num_samples``, so values lie in [0, 1] and order states exactly as ToT does
(:data:`TOT_VALUES`: sure 1.0, likely 0.05, impossible 0.00005). ``value_map`` swaps in other
numbers (e.g. a linear 1 / 0.5 / 0).

Two ways to ask:

- ``mode="prompt"``: any backend that writes text (a chat model behind the Hugging Face or
  OpenAI-compatible policy) gets :func:`value_prompt` (override with ``prompt_fn``);
  ``num_samples`` answers at ``temperature`` come from one batched ``generate`` call.
- ``mode="value_head"``: a model with a value head (the built-in tiny GPT, which cannot follow
  an instruction) is asked through its head instead: ``policy.value(task.render(state))``, the
  AlphaZero reading of "how good is this state".

``mode="auto"`` uses the value head unless the policy says ``has_value_head = False``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from qstar.errors import ConfigError
from qstar.policy.base import Policy, Usage
from qstar.rewards.rollout import account
from qstar.search.checks import check_choice, check_float, check_int
from qstar.tasks.base import Task
from qstar.types import Cost, State

__all__ = ["TOT_VALUES", "JudgeScorer", "value_prompt", "parse_verdict"]

TOT_VALUES: Mapping[str, float] = {"sure": 1.0, "likely": 1.0 / 20, "impossible": 0.001 / 20}

# Few-shot examples in ToT's format: the numbers left, some tries, then the verdict.
_EXAMPLES = """Evaluate if the numbers can still reach the target (sure/likely/impossible)
numbers: 8 3 -> 24
8 * 3 = 24
sure
numbers: 2 5 -> 24
2 + 5 = 7
5 * 2 = 10
5 - 2 = 3
impossible
numbers: 3 6 11 -> 24
11 - 6 = 5
3 * 6 + 11 = 29
I cannot reach it yet, but the numbers are in a reasonable range
likely
"""


def value_prompt(task: Task, state: State) -> str:
    """ToT-style value prompt: the few-shot examples, then the state as the model saw it."""
    return f"{_EXAMPLES}{task.render(state)}Evaluation:\n"


_VERDICT = re.compile(r"\b(sure|likely|impossible)\b", re.IGNORECASE)


def parse_verdict(text: str) -> str | None:
    """The verdict of an answer: the last ``sure|likely|impossible`` on its last non-empty line."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return None
    found = _VERDICT.findall(lines[-1])
    return found[-1].lower() if found else None


class JudgeScorer:
    """State values from a model's verdicts or its value head (module docstring)."""

    def __init__(
        self,
        task: Task,
        policy: Policy,
        *,
        mode: str = "auto",
        num_samples: int = 3,
        temperature: float = 0.7,
        max_new_tokens: int = 64,
        value_map: Mapping[str, float] = TOT_VALUES,
        prompt_fn: Callable[[Task, State], str] = value_prompt,
        seed: int | None = 0,
        cost: Cost | None = None,
    ) -> None:
        check_choice("judge", "mode", mode, ("auto", "prompt", "value_head"))
        check_int("judge", "num_samples", num_samples)
        check_float("judge", "temperature", temperature, low=0.0)
        check_int("judge", "max_new_tokens", max_new_tokens)
        if set(value_map) != {"sure", "likely", "impossible"}:
            raise ConfigError("judge: value_map must give a number for sure, likely and impossible")
        for verdict, v in value_map.items():
            check_float("judge", f"value_map[{verdict!r}]", v, low=0.0, high=1.0)
        if mode == "auto":
            mode = "value_head" if getattr(policy, "has_value_head", True) else "prompt"
        self.task = task
        self.policy = policy
        self.mode = mode
        self.num_samples = num_samples
        self.temperature = float(temperature)
        self.max_new_tokens = max_new_tokens
        self.value_map = dict(value_map)
        self.prompt_fn = prompt_fn
        self.seed = seed
        self.cost = Cost() if cost is None else cost
        self.name = f"judge:{mode}"
        self.usage = Usage()

    def value(self, states: Sequence[State]) -> list[float]:
        if not states:
            return []
        before = self.policy.usage.snapshot()
        if self.mode == "value_head":
            values = [float(v) for v in self.policy.value([self.task.render(s) for s in states])]
        else:
            gens = self.policy.generate(
                [self.prompt_fn(self.task, s) for s in states],
                num_samples=self.num_samples,
                temperature=self.temperature,
                max_new_tokens=self.max_new_tokens,
                stop=("\n\n",),
                seed=self.seed,
            )
            values = [self._average([g.text for g in row]) for row in gens]
        account(self.usage, self.cost, before, self.policy.usage)
        return values

    __call__ = value

    def _average(self, answers: Sequence[str]) -> float:
        # As ToT: an answer without a verdict contributes 0.
        total = sum(self.value_map.get(parse_verdict(a) or "", 0.0) for a in answers)
        return total / len(answers)
