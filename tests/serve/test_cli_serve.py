"""GSM8K through `--model openai:NAME --base-url URL` against qstar serve hosting a tiny HF model:
the command line, every search and the model-based scorers over HTTP; `hf:DIR`; CLI errors."""

from __future__ import annotations

import json

import pytest

from qstar.cli.main import main
from qstar.policy.hf import HFPolicy
from qstar.policy.hf_tiny import make_tiny_random_model
from qstar.policy.openai_http import OpenAIPolicy
from qstar.rewards.judge import JudgeScorer
from qstar.rewards.rollout import RolloutScorer
from qstar.search.registry import run_search, search_names
from qstar.serve import ServeConfig, create_app, serve_in_thread
from qstar.tasks.gsm8k import GSM8KTask, reference_steps
from qstar.types import Budget


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory) -> str:
    problems = GSM8KTask(num_shots=0).problems("train")[:300]
    corpus = [p.text + "\n" + "\n".join(reference_steps(p)) for p in problems]
    return str(make_tiny_random_model(tmp_path_factory.mktemp("hf") / "m", corpus, max_positions=2048))


@pytest.fixture(scope="module")
def hf_url(hf_dir):
    app = create_app(HFPolicy.load(hf_dir, device="cpu"), ServeConfig(model_name="tiny-hf"))
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture(scope="module")
def remote(hf_url):
    policy = OpenAIPolicy("tiny-hf", base_url=hf_url, timeout_s=120)
    yield policy
    policy.close()


def test_eval_gsm8k_through_an_openai_compatible_server(hf_url, capsys):
    """The command a user with a real model runs (4-shot prompts, sampled paths, majority vote)."""
    args = "eval --task gsm8k --model openai:tiny-hf --search self-consistency --num-samples 2"
    args += " --budget 4 --limit 1 --json --quiet"
    code = main([*args.split(), "--base-url", hf_url])
    out = capsys.readouterr()
    assert code == 0, out.err
    report = json.loads(out.out)
    assert report["task"] == "gsm8k" and report["n"] == 1 and 1 <= report["cost"]["expansions"] <= 4
    assert report["cost"]["tokens_generated"] > 0


@pytest.mark.parametrize(
    "search", [s for s in search_names() if s not in ("blind", "stream", "scan", "scan_teacher")]
)
def test_every_search_runs_on_gsm8k_over_http(remote, search):
    task = GSM8KTask(num_shots=1)
    scorer = JudgeScorer(task, remote, num_samples=1, max_new_tokens=4)  # the judge asks over HTTP too
    knobs = {"max_new_tokens": 12} if search == "greedy" else {}
    if search in ("self_consistency", "best_of_n"):
        knobs = {"num_samples": 2, "max_new_tokens": 12}
    result = run_search(
        search, task.problems("test")[0], task, remote, scorer, Budget(max_expansions=2), **knobs
    )
    assert 1 <= result.cost.expansions <= 2 and result.cost.model_calls >= 1 and result.tree is not None


def test_model_based_scorers_value_gsm8k_states_over_http(remote):
    task = GSM8KTask(num_shots=1)
    problem = task.problems("test")[0]
    states = [task.initial_state(problem), task.replay(problem, ["She eats 3 + 4 = <<3+4=7>>7 eggs."])]
    judge = JudgeScorer(task, remote, num_samples=2, max_new_tokens=4)
    labels = RolloutScorer(task, remote, num_rollouts=2, max_new_tokens=8, allow_ground_truth=True)
    for scorer in (judge, labels):
        values = scorer.value(states)
        assert len(values) == 2 and all(0.0 <= v <= 1.0 for v in values)
        assert scorer.usage.model_calls >= 1


def test_solve_with_a_local_hf_model(hf_dir, capsys):
    args = ["solve", "Tom has 3 apples and buys 4 more. How many?", "--task", "gsm8k"]
    code = main([*args, "--model", f"hf:{hf_dir}", "--search", "greedy", "--budget", "2", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert json.loads(out.out)["task"] == "gsm8k"


def test_model_errors_are_one_line(capsys):
    assert main(["solve", "4 9 10 13", "--model", "hf:no-such-model"]) == 2
    assert "never downloads" in capsys.readouterr().err
    assert main(["solve", "4 9 10 13", "--model", "default", "--base-url", "http://127.0.0.1:9/v1"]) == 2
    assert "--base-url only applies" in capsys.readouterr().err


def test_serve_rejects_bad_limits_before_loading(capsys):
    assert main(["serve", "--max-budget", "0", "--model", "none"]) == 2
    assert "--max-budget" in capsys.readouterr().err
