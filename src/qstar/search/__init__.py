"""Search algorithms over one tree, one budget, one cost account.

Every search is a function ``search(problem, task, policy, scorer, budget, config, rng) ->
SearchResult`` over a :class:`~qstar.search.tree.Tree`; :func:`run_search` picks one by name.
"""

from qstar.search.astar import QStarConfig, qstar
from qstar.search.beam import BeamConfig, beam
from qstar.search.blind import BlindConfig, blind
from qstar.search.expand import ExpandStats, evaluate, expand, sample_steps
from qstar.search.mcts import MctsConfig, mcts
from qstar.search.registry import get_search, make_config, run_search, search_names
from qstar.search.sampling import (
    BestOfNConfig,
    GreedyConfig,
    SelfConsistencyConfig,
    best_of_n,
    greedy,
    self_consistency,
)
from qstar.search.tot import TotBfsConfig, TotDfsConfig, tot_bfs, tot_dfs
from qstar.search.tree import Tree, make_result, new_tree

__all__ = [
    "BeamConfig",
    "BestOfNConfig",
    "BlindConfig",
    "ExpandStats",
    "GreedyConfig",
    "MctsConfig",
    "QStarConfig",
    "SelfConsistencyConfig",
    "TotBfsConfig",
    "TotDfsConfig",
    "Tree",
    "beam",
    "best_of_n",
    "blind",
    "evaluate",
    "expand",
    "get_search",
    "greedy",
    "make_config",
    "make_result",
    "mcts",
    "new_tree",
    "qstar",
    "run_search",
    "sample_steps",
    "search_names",
    "self_consistency",
    "tot_bfs",
    "tot_dfs",
]
