"""A toy task for reward tests: from 1, three steps of "+1" or "*3"; right when the number is the target.

With target 10 exactly one of the 8 paths wins (``*3, *3, +1``), so Monte-Carlo values under a
uniformly random policy are easy to work out by hand. :func:`uniform_generations` is a
MockPolicy script that lists every continuation of a state once: with ``num_samples`` a
multiple of that count, each continuation is drawn equally often, so a rollout estimate equals
the exact expectation under the uniform policy.
"""

from __future__ import annotations

import itertools
import re

from qstar.errors import IllegalStepError, ParseError
from qstar.tasks.base import TaskBase
from qstar.types import Problem, State, Step, Verdict

OPS = ("+1", "*3")


class ToyTask(TaskBase):
    name = "toy-rewards"
    max_steps = 3

    def __init__(self, *, verifiable: bool = True):
        self.has_test_time_verifier = verifiable

    def problem(self, target: int, id: str = "") -> Problem:
        return Problem(self.name, str(target), {"target": target}, id=id)

    def problems(self, split: str) -> list[Problem]:
        return [self.problem(t, f"{split}/{i}") for i, t in enumerate((10, 4, 12, 28, 6))]

    def parse_problem(self, text: str) -> Problem:
        return self.problem(int(text))

    def problem_from_json(self, obj, *, id: str = "") -> Problem:
        return self.problem(int(obj["target"]), id)

    def initial_state(self, problem: Problem) -> State:
        return State(problem, (), 1)

    def legal_steps(self, state: State) -> list[Step] | None:
        return [] if self.is_terminal(state) else [Step(op) for op in OPS]

    def parse_step(self, state: State, text: str) -> Step:
        if not re.fullmatch(r"[+*]\d+", text.strip()):
            raise ParseError(f"not a step: {text!r}")
        return Step(text.strip())

    def apply(self, state: State, step: Step) -> State:
        if self.is_terminal(state):
            raise IllegalStepError("the reasoning has ended")
        if step.text not in OPS:
            raise IllegalStepError(f"{step.text!r} is not one of {OPS}")
        value = state.content + 1 if step.text == "+1" else state.content * 3
        return State(state.problem, (*state.steps, step), value)

    def is_terminal(self, state: State) -> bool:
        return state.depth >= self.max_steps

    def outcome(self, state: State) -> float | None:
        if not self.is_terminal(state):
            return None
        return 1.0 if state.content == state.problem.data["target"] else 0.0

    def answer(self, state: State) -> str | None:
        return str(state.content) if self.is_terminal(state) else None

    def verify(self, problem: Problem, answer: str) -> Verdict:
        return Verdict(answer.strip() == str(problem.data["target"]))


def uniform_generations(prompt: str) -> list[str]:
    """Every continuation (to the end) of the state the prompt renders, once each."""
    depth = len(prompt.splitlines()) - 1
    return ["\n".join(seq) for seq in itertools.product(OPS, repeat=3 - depth)] or [""]


def state_of(task: ToyTask, target: int, *steps: str) -> State:
    return task.replay(task.problem(target), steps)
