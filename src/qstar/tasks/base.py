"""The ``Task`` protocol: what a state is, which steps are legal, whether an answer is right.

A task is a *world model* in the sense of llm-reasoners (Hao et al. 2023): it knows the rules
and the verifier, nothing about models or search. Implement this protocol (subclassing
:class:`TaskBase` saves some boilerplate) and register it with
:func:`qstar.tasks.registry.register_task` to plug in your own task.

Text contract with language models: ``render(state)`` is the prompt, it ends with a newline;
a step is one line of text (``Step.text`` has no newline); the model writes ``step.text + "\\n"``
after the prompt. A state is terminal when the task says so (e.g. one number left).
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from qstar.errors import IllegalStepError, ParseError, ProblemError
from qstar.types import Problem, State, Step, Verdict

__all__ = ["Task", "TaskBase", "SPLITS", "ProblemLoadReport", "load_problems_jsonl"]

SPLITS = ("train", "val", "test")


@runtime_checkable
class Task(Protocol):
    """A reasoning task with exact rules (see module docstring)."""

    name: str
    #: False when a user at test time cannot check an answer (``arith``, GSM8K): searches and
    #: scorers must then not call :meth:`outcome`; it exists for labels and metrics only.
    has_test_time_verifier: bool
    #: Upper bound on the number of steps of any path (depth of the tree).
    max_steps: int

    def problems(self, split: str) -> list[Problem]: ...
    def parse_problem(self, text: str) -> Problem: ...
    def problem_from_json(self, obj: dict[str, Any], *, id: str = "") -> Problem: ...
    def initial_state(self, problem: Problem) -> State: ...
    def legal_steps(self, state: State) -> list[Step] | None: ...
    def legal(self, state: State, step: Step) -> bool: ...
    def apply(self, state: State, step: Step) -> State: ...
    def parse_step(self, state: State, text: str) -> Step: ...
    def is_terminal(self, state: State) -> bool: ...
    def outcome(self, state: State) -> float | None: ...
    def answer(self, state: State) -> str | None: ...
    def verify(self, problem: Problem, answer: str) -> Verdict: ...
    def render(self, state: State) -> str: ...
    def state_key(self, state: State) -> Hashable: ...


class TaskBase:
    """Shared behaviour of the built-in tasks; subclasses fill in the rules."""

    name: str = ""
    has_test_time_verifier: bool = True
    max_steps: int = 8

    # -- rules, to be provided --------------------------------------------------------------
    def initial_state(self, problem: Problem) -> State:  # pragma: no cover - abstract
        raise NotImplementedError

    def parse_step(self, state: State, text: str) -> Step:  # pragma: no cover - abstract
        raise NotImplementedError

    def apply(self, state: State, step: Step) -> State:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------
    def legal_steps(self, state: State) -> list[Step] | None:
        return None

    def legal(self, state: State, step: Step) -> bool:
        if self.is_terminal(state):
            return False
        try:
            self.apply(state, step)
        except (ParseError, IllegalStepError):
            return False
        return True

    def state_key(self, state: State) -> Hashable:
        return state.content

    def prompt_header(self, problem: Problem) -> str:
        """First line of every prompt: names the task so one model can serve several."""
        return f"{self.name}: {problem.text}\n"

    def render(self, state: State) -> str:
        return self.prompt_header(state.problem) + "".join(s.text + "\n" for s in state.steps)

    def replay(self, problem: Problem, texts: Sequence[str]) -> State:
        """Apply step texts in order from the initial state; raises on the first bad one."""
        state = self.initial_state(problem)
        for i, text in enumerate(texts, start=1):
            if self.is_terminal(state):
                raise IllegalStepError(f"step {i} ({text!r}) comes after the reasoning already ended")
            state = self.apply(state, self.parse_step(state, text))
        return state

    def load_problems(self, path: str | Path) -> ProblemLoadReport:
        return load_problems_jsonl(self, path)


class ProblemLoadReport:
    """Problems read from a JSONL file plus the lines that could not be read (never dropped silently)."""

    def __init__(self, problems: list[Problem], errors: list[tuple[int, str]]):
        self.problems = problems
        self.errors = errors

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.problems)

    def __len__(self) -> int:
        return len(self.problems)


def load_problems_jsonl(task: Task, path: str | Path) -> ProblemLoadReport:
    """Read one JSON object per line (``{"numbers": [4, 9, 10, 13]}`` for game24, ...).

    A bad line is recorded with its 1-based line number and reason; the rest still load.
    Blank lines are skipped. A missing or unreadable file raises :class:`ProblemError`.
    """
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ProblemError(f"cannot read problems file {str(p)!r}: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise ProblemError(f"problems file {str(p)!r} is not UTF-8 text (byte {err.start})") from err
    problems: list[Problem] = []
    errors: list[tuple[int, str]] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as err:  # JSONDecodeError, or an integer too long to convert
            errors.append((lineno, f"not valid JSON ({getattr(err, 'msg', str(err)[:80])})"))
            continue
        if not isinstance(obj, dict):
            errors.append((lineno, "expected a JSON object"))
            continue
        try:
            problems.append(task.problem_from_json(obj, id=f"{p.name}:{lineno}"))
        except ProblemError as err:
            errors.append((lineno, str(err)))
    return ProblemLoadReport(problems, errors)
