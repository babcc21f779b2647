"""Training targets from search trees: what a search found, turned into data for the two heads.

Everything here is a pure function of one :class:`~qstar.search.tree.Tree` (tested on
hand-made trees). Nothing reads an oracle: a state's status is known only from what the search
itself saw, checked by the task's verifier.

**Status of a node** (tasks with a test-time verifier):

- *solved*: the subtree holds a terminal state the verifier accepted (so the node is on a
  verified path), or the node is a transposition (``extra["same_as"]``) of a solved node;
- *dead*: nothing below it can be right, known exactly because the search exhausted it: a
  terminal the verifier rejected, an expanded node without children (no legal step), or an
  expanded node all of whose children are dead. This needs expansions that list *every* legal
  step (``exhaustive=True``, tasks whose ``legal_steps`` enumerate them, e.g. Game of 24);
  with sampled steps an expansion may miss the one good step, so no node is ever dead;
- *unknown*: everything else (an unexpanded leaf, a partly explored subtree).

**Value targets** (``value_mode``):

- ``"reachability"``: 1 for solved (``discount ** k`` with ``k`` steps to the nearest verified
  answer below), 0 for dead, no target for unknown: "can this state still reach a verified
  answer, and how soon?". Exact facts, independent of the policy that searched, so they can be
  kept across rounds. Dead states are the hard negatives the value head needs.
- ``"bellman"``: the exact Bellman backup of :func:`qstar.rewards.qvalue.bellman_targets`
  (``max`` over children's targets, dead ends 0); it also labels partly explored nodes, from
  the children seen so far.
- ``"q"``: the MCTS mean backed-up value ``Q`` of every visited node (AlphaZero's ``z``-like
  soft target; depends on the searching policy);
- ``"lookahead"``: the reachability value where the search settled it, and otherwise, for an
  expanded node, the one-step Bellman backup ``discount * max_a Q(s, a)`` over its children's
  completed Q-values (their reachability value where known, else the scorer's value of the
  child): fitted value iteration bootstrapped from the value head, the companion of the
  ``"lookahead"`` policy target, labelling every expanded node.

**Policy targets** (``policy_mode``), as ``{step text: probability}`` per expanded node:

- ``"visits"``: AlphaZero's ``pi(a|s) ∝ N(s, a)^(1/tau)`` (Silver et al. 2017, "Mastering the
  game of Go without human knowledge", Methods), for every node with at least ``min_visits``
  visits (``root_only`` keeps the root, as AlphaZero does);
- ``"verified"``: uniform over the children that are solved, for every node that has one:
  the set of verified paths the search found (the STaR/RFT target, made by search);
- ``"best_path"``: one-hot along the returned path when it is a verified solution;
- ``"lookahead"``: one-step lookahead with *completed* Q-values, as in Gumbel MuZero
  (Danihelka et al. 2022, "Policy improvement by planning with Gumbel", ICLR): for every
  expanded node, ``pi(a|s) ∝ exp(Q(s, a) / tau)`` over its children, where ``Q`` is what the
  search knows (1 for a solved child, 0 for a dead one or a rejected terminal) and otherwise
  the value the search's scorer gave the child (``tree.value``). Every expanded node gets a
  target, not only those on a verified path, so the value head's judgement of states the
  search did not finish is distilled into the policy ("train with System 2, infer with
  System 1"). Children without any value are left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from qstar.errors import ConfigError
from qstar.search.checks import check_float
from qstar.search.tree import Tree, is_solution

__all__ = [
    "POLICY_MODES",
    "VALUE_MODES",
    "TreeTargets",
    "solution_distances",
    "solved_nodes",
    "dead_nodes",
    "reachability_values",
    "visit_policy",
    "verified_policy",
    "best_path_policy",
    "lookahead_policy",
    "lookahead_values",
    "policy_targets",
    "value_targets",
    "tree_targets",
]

POLICY_MODES = ("visits", "verified", "best_path", "lookahead")
VALUE_MODES = ("reachability", "bellman", "q", "lookahead")


def _same_as(tree: Tree, node: int) -> int | None:
    ref = tree.extra[node].get("same_as")
    return None if ref is None else int(ref)


def solution_distances(tree: Tree) -> dict[int, int]:
    """``{node: steps to the nearest verified solution below it}`` for every solved node
    (solutions and their ancestors, transpositions of solved nodes and their ancestors)."""
    dist: dict[int, int] = {}

    def mark(node: int, d: int) -> bool:
        changed = False
        for k, n in enumerate(reversed(tree.path_nodes(node))):
            if d + k < dist.get(n, 1 << 30):
                dist[n] = d + k
                changed = True
        return changed

    for node in range(len(tree)):
        if is_solution(tree, node):
            mark(node, 0)
    changed = True
    while changed:  # a transposition of a solved node is solved, and so is its path
        changed = False
        for node in range(len(tree)):
            ref = _same_as(tree, node)
            if ref is not None and ref in dist:
                changed |= mark(node, dist[ref])
    return dist


def solved_nodes(tree: Tree) -> set[int]:
    """Nodes with a verified solution in their subtree (solutions and their ancestors), plus
    transpositions of such nodes and the ancestors of those."""
    return set(solution_distances(tree))


def dead_nodes(tree: Tree, *, exhaustive: bool = True) -> set[int]:
    """Nodes the search proved cannot lead to a verified answer (module docstring).

    Verified-wrong terminals are dead in any case; interior nodes only when ``exhaustive``
    (every expansion listed all legal steps)."""
    dead = {
        i
        for i in range(len(tree))
        if tree.terminal[i] and tree.outcome[i] is not None and not is_solution(tree, i)
    }
    if not exhaustive:
        return dead
    changed = True
    while changed:
        changed = False
        # Children are created after their parent, so one pass from the last node upwards
        # settles every subtree; only transpositions (which point backwards) need another.
        for node in range(len(tree) - 1, -1, -1):
            if node in dead or tree.terminal[node]:
                continue
            ref = _same_as(tree, node)
            if ref is not None and not tree.expanded[node]:
                is_dead = ref in dead
            else:
                is_dead = tree.expanded[node] and all(c in dead for c in tree.children[node])
            if is_dead:
                dead.add(node)
                changed = True
    return dead


def reachability_values(
    tree: Tree, *, exhaustive: bool = True, include_terminal: bool = False, discount: float = 1.0
) -> dict[int, float]:
    """``{node: discount ** k}`` for solved nodes (``k`` steps from the nearest verified
    solution below) and ``{node: 0.0}`` for dead ones. Terminal nodes are left out unless
    ``include_terminal``: a search values them with the verifier, never the value head.

    ``discount < 1`` is the discounted return of the Bellman equation: of two solvable states
    the one closer to a verified answer is worth more, so a best-first search (Q*) goes deeper
    along a promising path instead of breaking ties breadth-first."""
    check_float("reachability", "discount", discount, low=0.0, low_open=True, high=1.0)
    solved = solution_distances(tree)
    dead = dead_nodes(tree, exhaustive=exhaustive)
    both = set(solved) & dead
    if both:  # cannot happen in a consistent tree; a bug upstream must not become a label
        raise ConfigError(f"tree nodes {sorted(both)[:5]} are both solved and dead")
    out = {i: discount**k for i, k in solved.items()}
    out.update({i: 0.0 for i in dead})
    if not include_terminal:
        out = {i: v for i, v in out.items() if not tree.terminal[i]}
    return dict(sorted(out.items()))


def _completed_q(tree: Tree, node: int, known: dict[int, float]) -> dict[int, float]:
    """``{child: Q}`` of the children of ``node`` with a completed Q-value: ``known[child]``
    where the search settled it, else the value its scorer gave a non-terminal child."""
    return {
        c: known[c] if c in known else float(tree.value[c])
        for c in tree.children[node]
        if c in known or (tree.value[c] is not None and not tree.terminal[c])
    }


def lookahead_values(tree: Tree, *, exhaustive: bool = True, discount: float = 1.0) -> dict[int, float]:
    """``{node: target}`` of the ``"lookahead"`` value mode (module docstring), non-terminal
    nodes only."""
    known = reachability_values(tree, exhaustive=exhaustive, include_terminal=True, discount=discount)
    out = {}
    for node in range(len(tree)):
        if tree.terminal[node]:
            continue
        if node in known:
            out[node] = known[node]
            continue
        q = _completed_q(tree, node, known)
        if tree.expanded[node] and q:
            out[node] = discount * max(q.values())
    return out


def _step_text(tree: Tree, node: int) -> str:
    step = tree.step[node]
    assert step is not None, "the root has no step"
    return step.text


def visit_policy(tree: Tree, node: int, *, temperature: float = 1.0) -> dict[str, float]:
    """``pi(a) ∝ N(a)^(1/temperature)`` over the visited children of ``node`` (empty when none
    was visited); ``temperature=0`` puts all mass on the most visited (ties: first created)."""
    kids = [c for c in tree.children[node] if tree.visits[c] > 0]
    if not kids:
        return {}
    if temperature == 0:
        best = max(kids, key=lambda c: (tree.visits[c], -c))
        return {_step_text(tree, best): 1.0}
    weights = [tree.visits[c] ** (1.0 / temperature) for c in kids]
    total = sum(weights)
    return {_step_text(tree, c): w / total for c, w in zip(kids, weights, strict=True)}


def verified_policy(tree: Tree, node: int, solved: set[int]) -> dict[str, float]:
    """Uniform over the children of ``node`` that are solved (empty when none is)."""
    kids = [c for c in tree.children[node] if c in solved]
    return {_step_text(tree, c): 1.0 / len(kids) for c in kids}


def lookahead_policy(
    tree: Tree, node: int, solved: set[int], dead: set[int], *, temperature: float
) -> dict[str, float]:
    """``pi(a) ∝ exp(Q(a) / temperature)`` over the children of ``node`` that have a completed
    Q-value (module docstring; empty when none has one)."""
    check_float("lookahead", "temperature", temperature, low=0.0, low_open=True)
    settled = {c: float(c in solved) for c in tree.children[node] if c in solved or c in dead}
    q = _completed_q(tree, node, settled)
    if not q:
        return {}
    top = max(q.values())
    weights = {c: math.exp((v - top) / temperature) for c, v in q.items()}
    total = sum(weights.values())
    return {_step_text(tree, c): w / total for c, w in weights.items()}


def best_path_policy(tree: Tree) -> list[tuple[int, dict[str, float]]]:
    """One-hot targets along ``tree.chosen`` when it ends in a verified solution."""
    path = tree.chosen
    if not path or not is_solution(tree, path[-1]):
        return []
    return [(parent, {_step_text(tree, child): 1.0}) for parent, child in zip(path, path[1:], strict=False)]


def policy_targets(
    tree: Tree,
    mode: str,
    *,
    temperature: float = 1.0,
    min_visits: int = 1,
    root_only: bool = False,
    all_children: bool = False,
    exhaustive: bool = True,
) -> list[tuple[int, dict[str, float]]]:
    """``(node, {step: probability})`` for every node that gets a policy target, by node id
    (``temperature`` is the visit temperature, or the Q temperature of ``"lookahead"``;
    ``exhaustive`` as in :func:`dead_nodes`).

    ``all_children`` lists every child step of the node, the ones without mass at 0.0: with
    exhaustive expansions that is every legal step, which a trainer can use to smooth the
    target over the legal steps (so the model also learns to *write* the steps it should not
    take)."""
    if mode not in POLICY_MODES:
        raise ConfigError(f"policy target {mode!r}: choose from {', '.join(POLICY_MODES)}")
    if mode == "best_path":
        out = best_path_policy(tree)
    else:
        solved = solved_nodes(tree) if mode in ("verified", "lookahead") else set()
        dead = dead_nodes(tree, exhaustive=exhaustive) if mode == "lookahead" else set()
        out = []
        for node in range(len(tree)):
            if not tree.children[node] or tree.terminal[node]:
                continue
            if mode == "visits":
                dist = (
                    visit_policy(tree, node, temperature=temperature)
                    if tree.visits[node] >= min_visits
                    else {}
                )
            elif mode == "lookahead":
                dist = lookahead_policy(tree, node, solved, dead, temperature=temperature)
            else:
                dist = verified_policy(tree, node, solved)
            if dist:
                out.append((node, dist))
    if all_children:
        out = [
            (n, {_step_text(tree, c): d.get(_step_text(tree, c), 0.0) for c in tree.children[n]})
            for n, d in out
        ]
    return [(n, d) for n, d in out if not root_only or n == 0]


def value_targets(
    tree: Tree, mode: str, *, exhaustive: bool = True, discount: float = 1.0
) -> dict[int, float]:
    """``{node: target in [0, 1]}`` for the non-terminal nodes that get a value target
    (``discount`` is the reachability discount and the Bellman ``gamma``)."""
    if mode not in VALUE_MODES:
        raise ConfigError(f"value target {mode!r}: choose from {', '.join(VALUE_MODES)}")
    if mode == "reachability":
        return reachability_values(tree, exhaustive=exhaustive, discount=discount)
    if mode == "lookahead":
        return lookahead_values(tree, exhaustive=exhaustive, discount=discount)
    if mode == "q":
        return {
            i: float(tree.q[i]) for i in range(len(tree)) if not tree.terminal[i] and tree.q[i] is not None
        }
    from qstar.rewards.qvalue import bellman_targets

    out = bellman_targets(tree, gamma=discount)
    return {i: min(1.0, max(0.0, v)) for i, v in sorted(out.items()) if not tree.terminal[i]}


@dataclass
class TreeTargets:
    """A tree's targets keyed by prompt (``tree.text``, i.e. ``task.render(state)``)."""

    policy: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    values: list[tuple[str, float]] = field(default_factory=list)


def tree_targets(
    tree: Tree,
    *,
    policy_mode: str,
    value_mode: str,
    exhaustive: bool,
    temperature: float = 1.0,
    min_visits: int = 1,
    root_only: bool = False,
    all_children: bool = False,
    discount: float = 1.0,
) -> TreeTargets:
    """Policy and value targets of ``tree`` as (prompt, target) pairs (module docstring)."""
    policy = policy_targets(
        tree,
        policy_mode,
        temperature=temperature,
        min_visits=min_visits,
        root_only=root_only,
        all_children=all_children,
        exhaustive=exhaustive,
    )
    values = value_targets(tree, value_mode, exhaustive=exhaustive, discount=discount)
    return TreeTargets(
        policy=[(tree.text[n], dist) for n, dist in policy],
        values=[(tree.text[n], v) for n, v in values.items()],
    )
