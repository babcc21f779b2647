"""qstar: search over reasoning steps, automatic process rewards, training with search.

"LLM + AlphaGo": a reasoning problem is a tree. A task gives the rules and the verifier, a
policy (language model) proposes steps, a scorer values states, and a search grows the tree.
"""

from qstar.errors import QstarError
from qstar.types import Budget, Cost, Problem, SearchResult, State, Step, Verdict

__all__ = ["Budget", "Cost", "Problem", "QstarError", "SearchResult", "State", "Step", "Verdict"]
__version__ = "0.1.0"
