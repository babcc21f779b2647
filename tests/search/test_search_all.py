"""Properties every search shares: exact budgets, cost reports, determinism, easy instances,
the registry, and the easy Game-of-24 puzzle."""

from __future__ import annotations

import json
import math

import pytest
from toy_search_task import ToyTask

from qstar.errors import BudgetError, ConfigError
from qstar.policy.mock import MockPolicy, MockScorer
from qstar.rewards.verifier import VerifierScorer
from qstar.search import get_search, make_config, run_search, search_names
from qstar.search.tree import Tree
from qstar.types import Budget

ALL = [
    "greedy",
    "self_consistency",
    "best_of_n",
    "tot_bfs",
    "tot_dfs",
    "beam",
    "mcts",
    "qstar",
    "blind",
    "stream_teacher",
]
TASK = ToyTask()


def toy_policy():
    """Prefers the solution *3 *3 +1 of target 10 (priors 0.75) and writes it first."""
    scores = {"*3": math.log(0.75), "+1": math.log(0.25)}
    return MockPolicy(scores=scores, generations=lambda p: ["+1"] * (p.count("\n") == 3) + ["*3", "+1"])


def test_registry_lists_every_search():
    # "stream" and "scan" are one greedy decode of a written search, with no budget to spend:
    # they have their own tests in test_search_stream.py and test_search_scan.py.
    assert search_names() == [*ALL[:-1], "stream", ALL[-1], "scan", "scan_teacher"]


def test_unknown_search_name_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="choose from greedy, self_consistency"):
        get_search("montecarlo")


def test_aliases_and_dashes_resolve():
    assert get_search("astar") == get_search("qstar")
    assert get_search("tot-bfs") == get_search("tot_bfs")


def test_unknown_knob_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="its knobs are: num_simulations, batch_size"):
        make_config("mcts", num_simulation=5)
    with pytest.raises(ConfigError, match=r"\(none\)"):
        make_config("blind", beam_width=3)


def test_run_search_builds_the_config_from_knobs():
    result = run_search(
        "qstar", TASK.problem(10), TASK, toy_policy(), VerifierScorer(TASK), Budget(50), g_aggregate="logprob"
    )
    assert result.method == "qstar" and result.solved is True
    assert result.tree.extra[2]["g"] == pytest.approx(math.log(0.75))  # node 2 = "*3"


def test_budget_must_be_positive():
    with pytest.raises(BudgetError):
        Budget(max_expansions=0)


@pytest.mark.parametrize("name", ALL)
def test_every_search_solves_the_easy_instance(name):
    result = run_search(name, TASK.problem(10), TASK, toy_policy(), VerifierScorer(TASK), Budget(50), seed=0)
    assert result.solved is True and result.answer == "10"
    assert [s.text for s in result.steps] == ["*3", "*3", "+1"]
    assert result.info["correct"] is True
    assert result.cost.seconds > 0


@pytest.mark.parametrize("name", ALL)
def test_every_search_spends_its_expansion_budget_exactly(name):
    # target 100 is unreachable; the toy tree has 7 expandable states; greedy walks one path (3).
    limit = 2 if name == "greedy" else 5
    scorer = MockScorer()
    result = run_search(
        name, TASK.problem(100), TASK, toy_policy(), scorer, Budget(max_expansions=limit), seed=0
    )
    assert result.cost.expansions == limit
    assert result.solved is False
    expected_calls = 0 if name == "blind" else result.cost.model_calls
    assert result.cost.model_calls == expected_calls
    if name != "blind":
        assert result.cost.model_calls > 0 and result.cost.tokens > 0


@pytest.mark.parametrize("name", ALL)
def test_every_search_is_deterministic_under_a_seed(name):
    def tree_json(seed):
        policy = MockPolicy(generations=lambda p: ["+1", "*3", "*3"])
        r = run_search(
            name, TASK.problem(100), TASK, policy, MockScorer(), Budget(max_expansions=6), seed=seed
        )
        return json.dumps(r.tree.to_json())

    assert tree_json(3) == tree_json(3)


@pytest.mark.parametrize("name", ALL)
def test_every_search_tree_round_trips_through_json(name):
    result = run_search(name, TASK.problem(10), TASK, toy_policy(), VerifierScorer(TASK), Budget(50))
    text = json.dumps(result.to_json(include_tree=True)["tree"])
    assert json.dumps(Tree.from_json(json.loads(text), TASK).to_json()) == text


@pytest.mark.parametrize("name", [n for n in ALL if n != "blind"])
def test_a_token_budget_stops_the_search(name):
    # A call's tokens are known only after it; the search stops at the first check past the limit.
    unlimited = run_search(name, TASK.problem(100), TASK, toy_policy(), MockScorer(), Budget(1000))
    result = run_search(name, TASK.problem(100), TASK, toy_policy(), MockScorer(), Budget(None, max_tokens=2))
    assert result.cost.tokens >= 2
    assert result.cost.expansions < unlimited.cost.expansions


def test_a_seconds_budget_stops_the_search():
    result = run_search(
        "blind", TASK.problem(100), TASK, None, None, Budget(max_expansions=None, max_seconds=1e-9)
    )
    assert result.cost.expansions == 0


# -- Game of 24 ------------------------------------------------------------------------------
SOLUTION = ["6 * 4 = 24 (left: 1 1 24)", "1 * 1 = 1 (left: 1 24)", "24 * 1 = 24 (left: 24)"]


def game24_mocks(task, problem):
    """A policy that knows one solution of 1 1 4 6 and a scorer that likes its prefixes."""
    states = [task.initial_state(problem)]
    for line in SOLUTION:
        states.append(task.apply(states[-1], task.parse_step(states[-1], line)))
    prompts = {task.render(s): line for s, line in zip(states, SOLUTION, strict=False)}
    policy = MockPolicy(
        scores=lambda prompt, cont: 0.0 if prompts.get(prompt) == cont.rstrip("\n") else -5.0,
        generations=lambda prompt: [prompts.get(prompt, "1 + 1 = 2 (left: 2 4 6)")],
    )
    prefixes = {tuple(SOLUTION[:i]) for i in range(4)}
    scorer = MockScorer(lambda s: 0.9 if tuple(x.text for x in s.steps) in prefixes else 0.1)
    return policy, scorer


@pytest.mark.parametrize("name", ALL)
def test_every_search_solves_an_easy_game24_puzzle(name):
    game24 = pytest.importorskip("qstar.tasks.game24")
    task = game24.Game24Task()
    problem = task.parse_problem("1 1 4 6")
    policy, scorer = game24_mocks(task, problem)
    result = run_search(name, problem, task, policy, scorer, Budget(max_expansions=60), seed=0)
    assert result.solved is True
    assert task.verify(problem, "\n".join(s.text for s in result.steps))
    assert task.verify(problem, result.answer)
    assert result.cost.expansions <= 60
