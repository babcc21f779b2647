"""Search algorithms by name: the one place where ``--search mcts`` becomes a function.

``get_search(name)`` gives ``(search_fn, config_class)``; ``make_config(name, **knobs)``
builds the config (an unknown knob raises :class:`~qstar.errors.ConfigError` listing the valid
ones); ``run_search`` does both and runs the search with ``rng = numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from qstar.errors import ConfigError
from qstar.policy.base import Policy
from qstar.rewards.base import Scorer
from qstar.search.astar import QStarConfig, qstar
from qstar.search.beam import BeamConfig, beam
from qstar.search.blind import BlindConfig, blind
from qstar.search.mcts import MctsConfig, mcts
from qstar.search.sampling import (
    BestOfNConfig,
    GreedyConfig,
    SelfConsistencyConfig,
    best_of_n,
    greedy,
    self_consistency,
)
from qstar.search.scan import ScanConfig, ScanTeacherConfig, scan, scan_teacher
from qstar.search.stream import StreamConfig, StreamTeacherConfig, stream, stream_teacher
from qstar.search.tot import TotBfsConfig, TotDfsConfig, tot_bfs, tot_dfs
from qstar.tasks.base import Task
from qstar.types import Budget, Problem, SearchResult

__all__ = ["SEARCHES", "ALIASES", "search_names", "get_search", "make_config", "run_search"]

SEARCHES: dict[str, tuple[Callable[..., SearchResult], type]] = {
    "greedy": (greedy, GreedyConfig),
    "self_consistency": (self_consistency, SelfConsistencyConfig),
    "best_of_n": (best_of_n, BestOfNConfig),
    "tot_bfs": (tot_bfs, TotBfsConfig),
    "tot_dfs": (tot_dfs, TotDfsConfig),
    "beam": (beam, BeamConfig),
    "mcts": (mcts, MctsConfig),
    "qstar": (qstar, QStarConfig),
    "blind": (blind, BlindConfig),
    "stream": (stream, StreamConfig),
    "stream_teacher": (stream_teacher, StreamTeacherConfig),
    "scan": (scan, ScanConfig),
    "scan_teacher": (scan_teacher, ScanTeacherConfig),
}

#: Other names people use for the same algorithms.
ALIASES = {
    "cot": "greedy",
    "sc": "self_consistency",
    "bon": "best_of_n",
    "tot": "tot_bfs",
    "astar": "qstar",
    "sos": "stream",
}


def search_names() -> list[str]:
    return list(SEARCHES)


def get_search(name: str) -> tuple[Callable[..., SearchResult], type]:
    """``(search_fn, config_class)`` of a search; accepts ``-`` for ``_`` and the aliases."""
    key = name.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in SEARCHES:
        raise ConfigError(f"unknown search {name!r}; choose from {', '.join(SEARCHES)}")
    return SEARCHES[key]


def make_config(name: str, **knobs: Any) -> Any:
    _, config_cls = get_search(name)
    valid = [f.name for f in dataclasses.fields(config_cls)]
    unknown = sorted(set(knobs) - set(valid))
    if unknown:
        raise ConfigError(
            f"search {name!r} has no knob {', '.join(map(repr, unknown))}; "
            f"its knobs are: {', '.join(valid) or '(none)'}"
        )
    return config_cls(**knobs)


def run_search(
    name: str,
    problem: Problem,
    task: Task,
    policy: Policy | None,
    scorer: Scorer | None,
    budget: Budget,
    seed: int = 0,
    **knobs: Any,
) -> SearchResult:
    """Run the search called ``name`` with its config built from ``knobs``."""
    fn, _ = get_search(name)
    config = make_config(name, **knobs)
    return fn(problem, task, policy, scorer, budget, config, np.random.default_rng(seed))
