"""A toy task for search tests: start at 1, each step applies one operator, three steps.

The state content is the number reached; the state key is (number, depth). With the default
operators ``+1`` and ``*3`` every path reaches a different number (no transpositions) and the
only way to reach 10 is ``*3, *3, +1``. The whole tree has 7 non-terminal states (7 possible
expansions) and 8 terminal ones.

``enumerable=False`` turns it into an open-ended task (``legal_steps`` is None): any
``+N``/``*N`` parses, only the task's operators are legal.
"""

from __future__ import annotations

import re

from qstar.errors import IllegalStepError, ParseError
from qstar.tasks.base import TaskBase
from qstar.types import Problem, State, Step, Verdict

_STEP = re.compile(r"^[+*]\d+$")


class ToyTask(TaskBase):
    name = "toy"
    max_steps = 3

    def __init__(
        self, ops: tuple[str, ...] = ("+1", "*3"), *, enumerable: bool = True, verifiable: bool = True
    ):
        self.ops = ops
        self.enumerable = enumerable
        self.has_test_time_verifier = verifiable

    def problem(self, target: int) -> Problem:
        return Problem(self.name, str(target), {"target": target})

    def problems(self, split: str) -> list[Problem]:
        return [self.problem(10)]

    def parse_problem(self, text: str) -> Problem:
        return self.problem(int(text))

    def problem_from_json(self, obj, *, id: str = "") -> Problem:
        return Problem(self.name, str(obj["target"]), {"target": obj["target"]}, id=id)

    def initial_state(self, problem: Problem) -> State:
        return State(problem, (), 1)

    def legal_steps(self, state: State) -> list[Step] | None:
        if not self.enumerable:
            return None
        return [] if self.is_terminal(state) else [Step(op) for op in self.ops]

    def parse_step(self, state: State, text: str) -> Step:
        if not _STEP.match(text.strip()):
            raise ParseError(f"not a step: {text!r}")
        return Step(text.strip())

    def apply(self, state: State, step: Step) -> State:
        if self.is_terminal(state):
            raise IllegalStepError("the reasoning has ended")
        if step.text not in self.ops:
            raise IllegalStepError(f"{step.text!r} is not one of {self.ops}")
        n = int(step.text[1:])
        value = state.content + n if step.text[0] == "+" else state.content * n
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

    def state_key(self, state: State):
        return (state.content, state.depth)


def content_key(state: State):
    """MockScorer key: the number reached and the depth."""
    return (state.content, state.depth)


#: Values for a scripted scorer on the default toy tree (keys: the step texts from the root): it
#: likes the "+1" branch, under which there is no solution.
TOY_VALUES = {
    ("+1",): 0.9,
    ("*3",): 0.6,
    ("+1", "+1"): 0.8,
    ("+1", "*3"): 0.7,
    ("*3", "+1"): 0.9,
    ("*3", "*3"): 0.5,
}
