"""Implicit PRM (Yuan et al. 2024): the step-sum maths, a synthetic rule learned in seconds,
the scorer agreeing with training, and clear errors."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from test_prm_train import TOK, synthetic_records, tiny_model

from qstar.errors import ConfigError
from qstar.policy.tinygpt.policy import TinyGPTPolicy
from qstar.rewards.implicit_prm import ImplicitPRMScorer, implicit_values, step_texts
from qstar.tasks.registry import get_task
from qstar.training.implicit_prm_train import (
    ImplicitPRMConfig,
    _step_logits,
    encode_path,
    train_implicit_prm,
)


def test_implicit_values_are_sigmoids_of_cumulative_log_ratios():
    got = implicit_values([-1.0, -2.0, -0.5], [-1.5, -1.0, -0.5], beta=2.0)
    q = [2.0 * 0.5, 2.0 * (0.5 - 1.0), 2.0 * (0.5 - 1.0 + 0.0)]
    assert got == pytest.approx([1 / (1 + math.exp(-x)) for x in q])


def test_step_logits_sum_token_ratios_per_step_then_accumulate():
    # Tokens (after the first) belong to: prompt, prompt, step 1, step 1, step 2, pad(0).
    step_of = torch.tensor([[0, 0, 0, 1, 1, 2, 0]])
    diff = torch.tensor([[0.3, 0.2, 1.0, 0.5, -2.0, 0.0]])  # log-ratio of tokens 1..6
    q = _step_logits(diff, step_of, K=2, beta=0.5)
    assert q[0].tolist() == pytest.approx([0.5 * 1.5, 0.5 * (1.5 - 2.0)])


def test_encode_path_marks_each_steps_tokens():
    rec = synthetic_records(1)[0]
    ids, step_of = encode_path(TOK, rec, block_size=48)
    assert ids[0] == TOK.bos_id and len(ids) == len(step_of)
    assert max(step_of) == len(rec.completions)
    assert TOK.decode(ids) == rec.prompt + "".join(s + "\n" for s in rec.completions)
    with pytest.raises(ConfigError, match="block_size"):
        encode_path(TOK, rec, block_size=3)


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    reference = tiny_model()
    model = copy.deepcopy(reference)
    epochs = []
    config = ImplicitPRMConfig(beta=1.0, target="hard", epochs=4, batch_size=32, lr=3e-3, patience=4)
    summary = train_implicit_prm(
        model, reference, TOK, synthetic_records(300), config, on_epoch=epochs.append
    )
    return model, reference, summary, epochs


def test_an_implicit_prm_learns_the_synthetic_rule_quickly(trained):
    _, _, summary, epochs = trained
    assert len(epochs) == summary["best_epoch"] or len(epochs) == 4
    assert summary["num_train"] > 0 and summary["num_val"] > 0
    assert summary["best"]["val_auc"] >= 0.95


def test_the_scorer_reads_the_same_values_training_saw(trained):
    """The scorer (two batched ``score`` calls) gives sigmoid(q_t) of the trained pair."""
    model, reference, _, _ = trained
    rec = synthetic_records(1, seed=5)[0]
    ids, step_of = encode_path(TOK, rec, block_size=48)
    with torch.no_grad():
        x = torch.tensor([ids])
        lp = [
            torch.log_softmax(m(x[:, :-1]).logits, -1).gather(-1, x[:, 1:, None]).squeeze(-1)
            for m in (model, reference)
        ]
        q = _step_logits(lp[0] - lp[1], torch.tensor([step_of]), len(rec.completions), 1.0)
    pol, ref = TinyGPTPolicy(model, TOK), TinyGPTPolicy(reference, TOK)
    prompts, text = [], rec.prompt
    for step in rec.completions:
        prompts.append(text)
        text += step + "\n"
    lp_pol = [r[0] for r in pol.score(prompts, [[s + "\n"] for s in rec.completions])]
    lp_ref = [r[0] for r in ref.score(prompts, [[s + "\n"] for s in rec.completions])]
    assert implicit_values(lp_pol, lp_ref, 1.0) == pytest.approx(torch.sigmoid(q[0]).tolist(), abs=1e-4)


def test_scorer_on_a_task_charges_its_cost_and_values_a_root_neutrally():
    task = get_task("game24")
    policy = TinyGPTPolicy(tiny_model(), TOK)
    scorer = ImplicitPRMScorer(task, policy, TinyGPTPolicy(tiny_model(1), TOK), beta=0.5)
    root = task.initial_state(task.parse_problem("4 9 10 13"))
    child = task.apply(root, task.legal_steps(root)[0])
    assert scorer.step_scores([root]) == [[0.5]]
    rows = scorer.step_scores([child, root])
    assert len(rows[0]) == 1 and 0.0 < rows[0][0] < 1.0
    assert scorer.cost.model_calls == 2 and scorer.usage.tokens_scored > 0
    assert [p for p, _ in step_texts(task, child)] == [task.render(root)]


def test_bad_configs_are_one_clear_error():
    with pytest.raises(ConfigError, match="target"):
        ImplicitPRMConfig(target="best")
    with pytest.raises(ConfigError, match="beta"):
        ImplicitPRMConfig(beta=0)
    with pytest.raises(ConfigError, match="beta"):
        ImplicitPRMScorer(get_task("game24"), None, None, beta=-1.0)
    with pytest.raises(ConfigError, match="values"):
        train_implicit_prm(
            tiny_model(),
            tiny_model(),
            TOK,
            [synthetic_records(1)[0].__class__("p\n", ("a",), (True,))],
            ImplicitPRMConfig(),
        )
