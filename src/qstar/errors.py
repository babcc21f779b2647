"""Project exceptions.

Every error a user can cause (bad puzzle text, a missing checkpoint, a bad config) is raised as
a subclass of :class:`QstarError` with a message that says what was wrong and how to fix it.
The CLI prints such errors as one line on stderr and exits with code 2.
"""

from __future__ import annotations

__all__ = [
    "QstarError",
    "ConfigError",
    "ProblemError",
    "ParseError",
    "IllegalStepError",
    "CheckpointError",
    "NoSolutionError",
    "BudgetError",
    "MissingExtraError",
    "require_extra",
]


class QstarError(Exception):
    """Base class of every error qstar raises on purpose."""


class ConfigError(QstarError, ValueError):
    """A configuration value is out of range or inconsistent."""


class ProblemError(QstarError, ValueError):
    """A problem (puzzle, expression, JSONL line) cannot be read."""


class ParseError(QstarError, ValueError):
    """Text produced by a model (or a user) is not a well-formed step or answer."""


class IllegalStepError(QstarError, ValueError):
    """A well-formed step that the task's rules do not allow in this state."""


class CheckpointError(QstarError, OSError):
    """A model checkpoint is missing, corrupt, or does not match its config."""


class NoSolutionError(QstarError):
    """The problem provably has no solution (found by the task's exhaustive oracle)."""


class BudgetError(QstarError, ValueError):
    """A search budget is not positive or not finite."""


class MissingExtraError(QstarError, ImportError):
    """An optional dependency group (``pip install qstar[extra]``) is not installed."""


def require_extra(module: str, extra: str):
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(
            f"this feature needs the optional dependency '{module}': pip install 'qstar[{extra}]'"
        ) from err
