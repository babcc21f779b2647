"""Specification of the SFT trainer for the tiny GPT."""

import math

import pytest
import torch

from qstar.errors import ConfigError
from qstar.policy.tinygpt.checkpoint import load_checkpoint
from qstar.policy.tinygpt.model import GPT, GPTConfig
from qstar.policy.tinygpt.policy import TinyGPTPolicy
from qstar.policy.tinygpt.tokenizer import Tokenizer
from qstar.training.sft import (
    IGNORE_INDEX,
    LMExample,
    SFTConfig,
    TokenExample,
    ValueExample,
    encode_lm_example,
    encode_token_example,
    encode_value_example,
    loss_fn,
    lr_at,
    make_lm_batch,
    make_value_batch,
    train_sft,
)

TOK = Tokenizer(max_int=50)
LM_DATA = [LMExample(f"a: {n}\n", f"{n} + 1 = {n + 1}") for n in range(12)]
# A trivial value rule: states that start with "good" are worth 1, "bad" 0.
VALUE_DATA = [
    ValueExample(f"{w} {n}\n", 1.0 if w == "good" else 0.0) for n in range(6) for w in ("good", "bad")
]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_model() -> GPT:
    return GPT(GPTConfig(vocab_size=TOK.vocab_size, block_size=32, n_layer=2, n_head=2, n_embd=32), seed=0)


@pytest.fixture(scope="module")
def trained(one_thread):
    model, logs = tiny_model(), []
    config = SFTConfig(steps=250, batch_size=16, lr=3e-3, log_every=25)
    metrics = train_sft(
        model,
        TOK,
        LM_DATA,
        VALUE_DATA,
        config,
        val_lm_examples=LM_DATA[:4],
        progress=False,
        on_log=logs.append,
    )
    return model, logs, metrics


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"steps": 10, "epochs": 1}, {"steps": 0}, {"steps": 5, "lr": 0.0}, {"steps": 5, "warmup_frac": 1.0}],
)
def test_invalid_config_raises(kwargs):
    with pytest.raises(ConfigError):
        SFTConfig(**kwargs)


def test_examples_are_validated():
    with pytest.raises(ConfigError):
        ValueExample("x", 1.5)
    with pytest.raises(ConfigError):
        LMExample("x", "y", weight=-1.0)
    with pytest.raises(ConfigError, match="eos"):
        LMExample("x", "y", eos="yes")


def test_an_example_can_override_append_eos():
    tok = Tokenizer()
    with_eos = encode_lm_example(tok, LMExample("a\n", "b\n", eos=True), block_size=64, append_eos=False)
    without = encode_lm_example(tok, LMExample("a\n", "b\n", eos=False), block_size=64, append_eos=True)
    default = encode_lm_example(tok, LMExample("a\n", "b\n"), block_size=64, append_eos=True)
    assert with_eos[0][-1] == tok.eos_id and without[0][-1] != tok.eos_id and default == with_eos


def test_batch_masks_the_prompt_and_padding():
    a = encode_lm_example(TOK, LMExample("a\n", "1"), block_size=32)  # <bos> a \n 1 <eos>
    b = encode_lm_example(TOK, LMExample("", "2 3"), block_size=32)  # <bos> 2 _ 3 <eos>
    batch = make_lm_batch([a, b], pad_id=TOK.pad_id)
    one, two, three, space = (TOK.encode(s)[0] for s in ("1", "2", "3", " "))
    ignore = IGNORE_INDEX
    assert batch.input_ids.tolist() == [
        [TOK.bos_id, *TOK.encode("a\n1")],
        [TOK.bos_id, two, space, three],
    ]
    assert batch.targets.tolist() == [[ignore, ignore, one, TOK.eos_id], [two, space, three, TOK.eos_id]]


def test_zero_weight_examples_carry_no_loss():
    model = tiny_model()
    a = encode_lm_example(TOK, LMExample("a: 1\n", "1 + 1 = 2"), block_size=32)
    b = encode_lm_example(TOK, LMExample("a: 2\n", "2 + 1 = 3", weight=0.0), block_size=32)
    _, alone = loss_fn(model, make_lm_batch([a], pad_id=0), None, value_loss_weight=1.0)
    _, mixed = loss_fn(model, make_lm_batch([a, b], pad_id=0), None, value_loss_weight=1.0)
    assert mixed["lm_loss"] == pytest.approx(alone["lm_loss"], rel=1e-5)


def test_losses_equal_the_full_forward_definitions():
    """The trainer applies the heads to the needed positions only; the losses must equal the
    textbook ones computed from the full (B, T, V) logits and (B, T) value logits."""
    model = tiny_model()
    rows = [
        encode_lm_example(TOK, ex, block_size=32)
        for ex in (LM_DATA[0], LMExample("a: 10\n", "1", weight=2.0))
    ]
    lm = make_lm_batch(rows, pad_id=TOK.pad_id)
    values = [encode_value_example(TOK, ex, block_size=32) for ex in VALUE_DATA[:3]]
    vb = make_value_batch(values, pad_id=TOK.pad_id)
    _, got = loss_fn(model, lm, vb, value_loss_weight=1.0)
    with torch.no_grad():
        out, values_out = model(lm.input_ids), model(vb.input_ids)
    token = torch.nn.functional.cross_entropy(
        out.logits.transpose(1, 2), lm.targets, ignore_index=IGNORE_INDEX, reduction="none"
    )
    weight = (lm.targets != IGNORE_INDEX).float() * lm.weights[:, None]
    assert got["lm_loss"] == pytest.approx(float((token * weight).sum() / weight.sum()), rel=1e-5)
    last = values_out.value_logits.gather(1, vb.last_index[:, None]).squeeze(1)
    want = torch.nn.functional.binary_cross_entropy_with_logits(last, vb.targets)
    assert got["value_loss"] == pytest.approx(float(want), rel=1e-5)


def test_token_loss_is_the_binary_cross_entropy_of_one_token_probability():
    model = tiny_model()
    rows = [
        encode_token_example(TOK, TokenExample("good 1\n", "back", 0.25), block_size=32),
        encode_token_example(TOK, TokenExample("bad 22\n", "b", 1.0), block_size=32),
    ]
    assert rows[0][2] == rows[1][2] == TOK.encode("b")[0]  # the first token of the text
    batch = make_value_batch(rows, pad_id=TOK.pad_id)
    _, got = loss_fn(model, None, None, value_loss_weight=1.0, token_batch=batch, token_loss_weight=2.0)
    with torch.no_grad():
        logits = model(batch.input_ids).logits
    p = torch.softmax(logits[torch.arange(2), batch.last_index], dim=-1)[:, TOK.encode("b")[0]]
    want = torch.nn.functional.binary_cross_entropy(p, torch.tensor([0.25, 1.0]))
    assert got["token_loss"] == pytest.approx(float(want), rel=1e-4)
    assert got["loss"] == pytest.approx(2 * float(want), rel=1e-4)


def test_token_examples_teach_a_next_token_probability():
    """A soft target is learnt as a probability: P("y" after "good") -> 0.8, after "bad" -> 0.1."""
    data = [
        TokenExample(f"{w} {n}\n", "y", 0.8 if w == "good" else 0.1)
        for n in range(6)
        for w in ("good", "bad")
    ]
    model = tiny_model()
    metrics = train_sft(
        model,
        TOK,
        [],
        token_examples=data,
        config=SFTConfig(steps=300, batch_size=12, lr=3e-3),
        progress=False,
    )
    assert "token_loss" in metrics
    model.eval()
    with torch.no_grad():
        for word, want in (("good", 0.8), ("bad", 0.1)):
            ids = torch.tensor([[TOK.bos_id, *TOK.encode(f"{word} 3\n")]])
            p = torch.softmax(model(ids).logits[0, -1], dim=-1)[TOK.encode("y")[0]]
            assert float(p) == pytest.approx(want, abs=0.05)
    with pytest.raises(ConfigError, match="TokenExample target"):
        TokenExample("a", "b", 1.5)
    with pytest.raises(ConfigError, match="text must not be empty"):
        TokenExample("a", "", 0.5)


def test_too_long_example_is_rejected():
    with pytest.raises(ConfigError, match="block_size"):
        train_sft(tiny_model(), TOK, [LMExample("x" * 40, "y")], config=SFTConfig(steps=1), progress=False)


def test_learning_rate_warms_up_then_decays_to_the_floor():
    config = SFTConfig(steps=100, lr=1e-3, warmup_frac=0.1, min_lr_ratio=0.1)
    assert lr_at(0, 100, config) == pytest.approx(1e-4)
    assert lr_at(9, 100, config) == pytest.approx(1e-3)
    assert lr_at(10, 100, config) == pytest.approx(1e-3)
    assert lr_at(55, 100, config) == pytest.approx(1e-4 + 0.5 * 9e-4)  # half way: cos = 0
    assert lr_at(100, 100, config) == pytest.approx(1e-4)


def test_training_drives_the_loss_down(trained):
    _, logs, metrics = trained
    train_logs = [r for r in logs if "lm_loss" in r]
    assert train_logs[0]["lm_loss"] > 2.0  # about ln(vocab size) at the start
    assert metrics["lm_loss"] < 0.2
    assert metrics["val_lm_loss"] < 0.2
    assert metrics["step"] == 250


def test_greedy_generation_reproduces_the_completions(trained):
    model, _, _ = trained
    policy = TinyGPTPolicy(model, TOK)
    gens = policy.generate([e.prompt for e in LM_DATA], temperature=0, max_new_tokens=12)
    assert [g[0].text for g in gens] == [e.completion for e in LM_DATA]
    assert all(g[0].finished for g in gens)  # ended on the learned <eos>


def test_value_head_learns_the_rule(trained):
    model, _, metrics = trained
    values = TinyGPTPolicy(model, TOK).value(["good 3\n", "bad 3\n", "good 40\n", "bad 40\n"])
    assert values[0] > 0.9 and values[2] > 0.9
    assert values[1] < 0.1 and values[3] < 0.1
    assert metrics["value_loss"] < 0.05


def test_same_seed_same_losses_and_global_rng_untouched():
    def run(seed):
        logs = []
        config = SFTConfig(steps=6, batch_size=4, log_every=1, seed=seed)
        train_sft(tiny_model(), TOK, LM_DATA, VALUE_DATA, config, progress=False, on_log=logs.append)
        return [r["loss"] for r in logs]

    state = torch.get_rng_state()
    first, second, other = run(0), run(0), run(1)
    assert torch.equal(torch.get_rng_state(), state)
    assert first == second
    assert first != other


def test_dropout_training_is_deterministic():
    def run():
        model = GPT(
            GPTConfig(vocab_size=TOK.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=16, dropout=0.3)
        )
        logs = []
        train_sft(
            model, TOK, LM_DATA, config=SFTConfig(steps=4, log_every=1), progress=False, on_log=logs.append
        )
        return [r["loss"] for r in logs]

    assert run() == run()


def test_epochs_count_passes_over_the_lm_data():
    metrics = train_sft(
        tiny_model(), TOK, LM_DATA[:10], config=SFTConfig(epochs=2, batch_size=4), progress=False
    )
    assert metrics["step"] == 2 * math.ceil(10 / 4)


def test_value_only_training_works():
    metrics = train_sft(tiny_model(), TOK, [], VALUE_DATA, SFTConfig(steps=3, batch_size=4), progress=False)
    assert "value_loss" in metrics and "lm_loss" not in metrics


def test_checkpoint_is_written_at_evals_and_the_end(tmp_path):
    model, logs = tiny_model(), []
    config = SFTConfig(steps=4, batch_size=4, eval_every=2, log_every=2)
    train_sft(
        model,
        TOK,
        LM_DATA,
        config=config,
        val_lm_examples=LM_DATA[:2],
        checkpoint_dir=tmp_path / "ckpt",
        progress=False,
        on_log=logs.append,
    )
    ckpt = load_checkpoint(tmp_path / "ckpt")
    assert ckpt.meta["trainer"] == "sft" and ckpt.meta["step"] == 4
    assert ckpt.meta["sft_config"]["steps"] == 4
    assert torch.equal(ckpt.model.wte.weight, model.wte.weight)
    assert [r["step"] for r in logs if "val_lm_loss" in r] == [2, 4]


def test_progress_bar_runs(capsys):
    train_sft(tiny_model(), TOK, LM_DATA, config=SFTConfig(steps=2, batch_size=4), progress=True)
