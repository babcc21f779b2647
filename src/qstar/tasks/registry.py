"""Task registry: names on the command line -> task objects.

Register your own task with :func:`register_task` (a zero-argument factory returning an object
that implements :class:`qstar.tasks.base.Task`); ``qstar tasks`` lists what is registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from qstar.errors import ConfigError
from qstar.tasks.base import Task

__all__ = ["register_task", "get_task", "task_names", "task_summaries", "TaskInfo"]


@dataclass(frozen=True)
class TaskInfo:
    name: str
    factory: Callable[[], Task]
    summary: str


_REGISTRY: dict[str, TaskInfo] = {}
_CACHE: dict[str, Task] = {}


def register_task(
    name: str, factory: Callable[[], Task], summary: str = "", *, replace: bool = False
) -> None:
    """Make ``name`` resolvable by :func:`get_task` and the CLI's ``--task``."""
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"task name {name!r}: use letters, digits, '-' and '_'")
    if name in _REGISTRY and not replace:
        raise ConfigError(f"task {name!r} is already registered (pass replace=True to override)")
    _REGISTRY[name] = TaskInfo(name, factory, summary)
    _CACHE.pop(name, None)


def get_task(name: str) -> Task:
    """The task registered as ``name`` (one shared instance per name)."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown task {name!r}; choose from: {', '.join(task_names())}")
    if name not in _CACHE:
        _CACHE[name] = _REGISTRY[name].factory()
    return _CACHE[name]


def task_names() -> list[str]:
    return list(_REGISTRY)


def task_summaries() -> list[TaskInfo]:
    return list(_REGISTRY.values())


def _builtin() -> None:
    from qstar.tasks.arith import ArithTask
    from qstar.tasks.countdown import COUNTDOWN_4, COUNTDOWN_6, CountdownTask
    from qstar.tasks.game24 import Game24Task
    from qstar.tasks.gsm8k import GSM8KTask

    register_task(
        "game24", Game24Task, "Game of 24: four numbers 1-13 -> 24 (ToT data; test = ranks 901-1000)"
    )
    register_task(
        "countdown-4", lambda: CountdownTask(COUNTDOWN_4), "Countdown: 4 numbers 1-99 -> target 1-100"
    )
    register_task(
        "countdown-6", lambda: CountdownTask(COUNTDOWN_6), "Countdown: 6 TV-deck numbers -> target 101-999"
    )
    register_task(
        "arith",
        lambda: ArithTask(strict=False),
        "evaluate an integer expression one operation per step (no test-time verifier)",
    )
    register_task(
        "gsm8k", GSM8KTask, "grade-school math word problems, one line per step (no test-time verifier)"
    )


_builtin()
