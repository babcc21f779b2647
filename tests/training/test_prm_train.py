"""PRM / Q training: a PRM learns a synthetic step rule in seconds; split, early stopping, checkpoints."""

from __future__ import annotations

import random

import pytest
import torch

from qstar.errors import ConfigError
from qstar.policy.tinygpt.checkpoint import load_checkpoint
from qstar.policy.tinygpt.model import GPT, GPTConfig
from qstar.policy.tinygpt.tokenizer import Tokenizer
from qstar.rewards.labels import LabelRecord
from qstar.training.prm_train import (
    StepExample,
    ValueTrainConfig,
    examples_from_labels,
    predict,
    split_by_problem,
    train_values,
)

TOK = Tokenizer(max_int=30)


def synthetic_records(n: int, seed: int = 0) -> list[LabelRecord]:
    """Paths of steps "take N"; a step is wrong when N is odd, and (as Math-Shepherd's hard
    label) every step after a wrong one is wrong too: the path can no longer succeed."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        steps, labels, ok = [], [], True
        for _ in range(rng.randint(1, 4)):
            k = rng.randint(0, 20)
            ok = ok and k % 2 == 0
            steps.append(f"take {k}")
            labels.append(ok)
        meta = {"problem_id": f"p{i}", "method": "mc"}
        values = tuple(1.0 if y else 0.0 for y in labels)
        out.append(LabelRecord(f"syn: {i % 7}\n", tuple(steps), tuple(labels), values, (), meta))
    return out


def tiny_model(seed: int = 0) -> GPT:
    return GPT(GPTConfig(vocab_size=TOK.vocab_size, block_size=48, n_layer=2, n_head=2, n_embd=48), seed=seed)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    examples = examples_from_labels(synthetic_records(300), "hard")
    train, val = split_by_problem(examples, 0.2)
    model = tiny_model()
    out = tmp_path_factory.mktemp("prm") / "ckpt"
    epochs = []
    config = ValueTrainConfig(epochs=3, batch_size=32, lr=3e-3, patience=3)
    summary = train_values(
        model, TOK, train, val, config, checkpoint_dir=out, meta={"trainer": "prm"}, on_epoch=epochs.append
    )
    return model, summary, epochs, out, val


def test_a_prm_learns_the_synthetic_rule_quickly(trained):
    _, summary, _, _, _ = trained
    best = summary["best"]
    # About one CPU-second per epoch on a laptop core; one epoch is already enough.
    assert best["accuracy"] >= 0.95
    assert best["auc"] >= 0.98


def test_metrics_are_reported_every_epoch(trained):
    _, _, epochs, _, _ = trained
    assert [e["epoch"] for e in epochs] == list(range(1, len(epochs) + 1))
    for key in ("train_loss", "val_loss", "accuracy", "auc", "ece", "bins", "mc_agreement"):
        assert key in epochs[0]


def test_the_best_epoch_is_checkpointed_and_restored(trained):
    model, summary, _, out, val = trained
    ckpt = load_checkpoint(out)
    assert ckpt.meta["trainer"] == "prm" and ckpt.meta["epoch"] == summary["best_epoch"]
    prompts = [e.prompt for e in val[:20]]
    assert predict(ckpt.model, TOK, prompts) == pytest.approx(predict(model, TOK, prompts), abs=1e-6)


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    # Random targets: nothing to learn, so the validation loss stops improving at once.
    rng = random.Random(1)
    ex = [
        StepExample(f"syn: {i}\ntake {i % 20}\n", float(rng.random() < 0.5), False, f"p{i}")
        for i in range(200)
    ]
    train, val = split_by_problem(ex, 0.3)
    config = ValueTrainConfig(epochs=20, batch_size=64, lr=3e-3, patience=2)
    summary = train_values(tiny_model(), TOK, train, val, config)
    last = summary["history"][-1]["epoch"]
    assert last < 20 and last - summary["best_epoch"] == 2


def test_split_keeps_a_problem_on_one_side():
    examples = examples_from_labels(synthetic_records(200), "hard")
    train, val = split_by_problem(examples, 0.25)
    assert {e.group for e in train}.isdisjoint({e.group for e in val})
    assert 0.1 < len({e.group for e in val}) / 200 < 0.4
    assert split_by_problem(examples, 0.25) == (train, val)  # deterministic


def test_soft_targets_need_a_values_column():
    bare = [LabelRecord("p\n", ("s",), (True,))]
    with pytest.raises(ConfigError, match="values"):
        examples_from_labels(bare, "soft")
    assert examples_from_labels(bare, "hard")[0].target == 1.0


def test_tree_and_label_examples_of_one_problem_share_a_group():
    from qstar.search.tree import Tree
    from qstar.training.prm_train import examples_from_trees
    from qstar.types import Problem, Step

    tree = Tree(Problem("toy", "x", id="train/3"), "toy")
    tree.add_node(-1, None, None, text="toy: x\n", key="r")
    tree.add_node(0, Step("a"), None, text="toy: x\na\n", key="a", terminal=True, outcome=1.0)
    (ex,) = examples_from_trees([tree])
    assert (ex.prompt, ex.target, ex.group) == ("toy: x\na\n", 1.0, "train/3")
    record = LabelRecord("toy: x\n", ("a",), (True,), meta={"problem_id": "train/3"})
    assert examples_from_labels([record], "hard")[0].group == ex.group
