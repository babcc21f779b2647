"""Specification of the tiny GPT network: config checks, KV cache, padding, value head."""

import pytest
import torch

from qstar.errors import ConfigError
from qstar.policy.tinygpt.model import (
    GPT,
    GPTConfig,
    expand_cache,
    rotary_tables,
    rotate,
    with_block_size,
    with_extra_layers,
)
from qstar.policy.tinygpt.tokenizer import Tokenizer


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny matrices: one thread is much faster than two fighting over a shared CPU.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(**overrides) -> GPTConfig:
    fields = {"vocab_size": 60, "block_size": 32, "n_layer": 2, "n_head": 2, "n_embd": 16}
    return GPTConfig(**{**fields, **overrides})


@pytest.fixture(scope="module", params=["learned", "rope"])
def model(request) -> GPT:
    torch_model = GPT(tiny_config(position=request.param), seed=0)
    # Larger weights than the init give peaked distributions, so comparisons are meaningful.
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in torch_model.parameters():
            p.normal_(0.0, 0.3, generator=gen)
    return torch_model.eval()


@pytest.mark.parametrize(
    "overrides",
    [
        {"n_head": 3},
        {"n_layer": 0},
        {"vocab_size": -1},
        {"dropout": 1.0},
        {"block_size": 2.5},
        {"n_embd": True},
        {"position": "alibi"},
    ],
)
def test_invalid_config_raises_config_error(overrides):
    with pytest.raises(ConfigError):
        tiny_config(**overrides)


def test_default_config_has_about_a_million_parameters():
    model = GPT(GPTConfig(vocab_size=Tokenizer().vocab_size))
    assert 0.9e6 < model.num_params() < 1.1e6


def test_lm_head_is_tied_to_token_embedding(model):
    assert model.lm_head.weight is model.wte.weight


def test_construction_is_seeded_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    a, b, c = GPT(tiny_config(), seed=3), GPT(tiny_config(), seed=3), GPT(tiny_config(), seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )
    assert not torch.equal(a.wte.weight, c.wte.weight)


def test_forward_shapes(model):
    idx = torch.randint(0, 60, (3, 7), generator=torch.Generator().manual_seed(0))
    out = model(idx, use_cache=True)
    assert out.logits.shape == (3, 7, 60)
    assert out.value_logits.shape == (3, 7)
    assert len(out.past_key_values) == 2
    assert out.past_key_values[0][0].shape == (3, 2, 7, 8)
    assert model(idx, last_only=True).logits.shape == (3, 1, 60)
    values_only = model(idx, value_only=True)
    assert values_only.logits.shape == (3, 7, 0)
    assert torch.equal(values_only.value_logits, out.value_logits)


def test_value_is_a_probability(model):
    idx = torch.randint(0, 60, (4, 9), generator=torch.Generator().manual_seed(0))
    value = torch.sigmoid(model(idx).value_logits)
    assert ((value >= 0) & (value <= 1)).all()


def test_incremental_decoding_with_cache_equals_full_forward(model):
    idx = torch.randint(0, 60, (2, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = model(idx).logits  # (2, 10, V)
        out = model(idx[:, :4], use_cache=True)  # a 4-token prefix, then 3 + 1 + 2 tokens
        pieces = [out.logits]
        cache = out.past_key_values
        for lo, hi in ((4, 7), (7, 8), (8, 10)):
            out = model(idx[:, lo:hi], past_key_values=cache, use_cache=True)
            pieces.append(out.logits)
            cache = out.past_key_values
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)


def test_left_padded_batch_equals_rows_alone(model):
    rows = [[1, 5, 9, 12, 7], [1, 30], [1, 2, 3]]
    T = max(map(len, rows))
    idx = torch.zeros((3, T), dtype=torch.long)
    mask = torch.zeros((3, T), dtype=torch.long)
    for i, r in enumerate(rows):
        idx[i, T - len(r) :] = torch.tensor(r)
        mask[i, T - len(r) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    with torch.no_grad():
        batched = model(idx, attention_mask=mask, position_ids=positions)
        for i, r in enumerate(rows):
            alone = model(torch.tensor([r]))
            torch.testing.assert_close(batched.logits[i, T - len(r) :], alone.logits[0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(
                batched.value_logits[i, -1], alone.value_logits[0, -1], atol=1e-5, rtol=1e-5
            )


def test_expand_cache_repeats_rows(model):
    with torch.no_grad():
        out = model(torch.tensor([[1, 2, 3], [4, 5, 6]]), use_cache=True)
    expanded = expand_cache(out.past_key_values, torch.tensor([1, 1, 0]))
    assert expanded[0][0].shape[0] == 3
    assert torch.equal(expanded[1][1][0], out.past_key_values[1][1][1])


def test_positions_past_block_size_raise(model):
    with pytest.raises(ConfigError, match="block_size"):
        model(torch.zeros((1, 33), dtype=torch.long))


def test_dropout_is_inactive_in_eval_mode():
    model = GPT(tiny_config(dropout=0.5)).eval()
    idx = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.equal(model(idx).logits, model(idx).logits)


def test_with_block_size_grows_the_context_and_keeps_what_fitted_before():
    model = GPT(tiny_config(), seed=3).eval()
    bigger = with_block_size(model, 80).eval()
    assert bigger.config.block_size == 80 and bigger.wpe.weight.shape[0] == 80
    idx = torch.randint(0, 60, (2, 32))
    with torch.no_grad():
        assert torch.equal(model(idx).logits, bigger(idx).logits)
        long = torch.randint(0, 60, (1, 80))
        assert bigger(long).logits.shape == (1, 80, 60)
        assert torch.equal(bigger.wpe.weight[79], model.wpe.weight[31])  # new rows start as the last
    smaller = with_block_size(model, 16)
    assert torch.equal(smaller.wpe.weight, model.wpe.weight[:16])


def test_rotary_positions_make_attention_depend_on_relative_positions_only():
    model = GPT(tiny_config(position="rope"), seed=0).eval()
    assert model.wpe is None and "inv_freq" not in model.state_dict()
    idx = torch.randint(0, 60, (2, 12), generator=torch.Generator().manual_seed(2))
    shifted = torch.arange(7, 19).expand(2, 12)
    with torch.no_grad():
        torch.testing.assert_close(
            model(idx).logits, model(idx, position_ids=shifted).logits, atol=1e-4, rtol=1e-4
        )
        learned = GPT(tiny_config(), seed=0).eval()
        assert not torch.allclose(learned(idx).logits, learned(idx, position_ids=shifted).logits, atol=1e-4)


def test_with_block_size_of_a_rotary_model_only_changes_the_limit():
    model = GPT(tiny_config(position="rope"), seed=3).eval()
    bigger = with_block_size(model, 80).eval()
    assert bigger.config.block_size == 80 and bigger.config.position == "rope"
    idx = torch.randint(0, 60, (2, 32))
    with torch.no_grad():
        assert torch.equal(model(idx).logits, bigger(idx).logits)
    assert model.num_params(non_embedding=True) == model.num_params()


@pytest.mark.parametrize("position", ["learned", "rope"])
def test_with_extra_layers_starts_as_the_same_function_and_learns_from_there(position):
    model = GPT(tiny_config(position=position), seed=3).eval()
    deeper = with_extra_layers(model, 2, seed=1).eval()
    assert deeper.config.n_layer == 4 and deeper.config.block_size == model.config.block_size
    idx = torch.randint(0, 60, (2, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before, after = model(idx), deeper(idx)
    assert torch.equal(before.logits, after.logits) and torch.equal(before.value_logits, after.value_logits)
    for name, param in deeper.named_parameters():  # the old blocks are copied, the new inner ones drawn
        if name.startswith("blocks.3.") and "c_proj" in name:
            assert not param.any(), name
        elif name.startswith("blocks.3.") and name.endswith("c_fc.weight"):
            assert param.std() > 0.01
        elif name in dict(model.named_parameters()):
            assert torch.equal(param, dict(model.named_parameters())[name]), name
    deeper.train()
    loss = deeper(idx).logits.logsumexp(-1).mean()
    loss.backward()
    assert deeper.blocks[3].mlp.c_proj.weight.grad.abs().sum() > 0  # the zero branch can grow
    assert torch.equal(with_extra_layers(model, 0).eval()(idx).logits, before.logits)
    with pytest.raises(ConfigError, match="extra must be an integer >= 0"):
        with_extra_layers(model, -1)


@pytest.mark.parametrize("head_size", [6, 7])
def test_rotate_is_the_textbook_rotation_of_the_two_halves_bit_for_bit(head_size):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, head_size, generator=gen)  # (B, nh, T, hs)
    angles = torch.randn(2, 1, 5, head_size // 2, generator=gen)
    half = head_size // 2
    x1, x2, tail = x[..., :half], x[..., half : 2 * half], x[..., 2 * half :]
    cos, sin = angles.cos(), angles.sin()
    expected = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos, tail), dim=-1)
    assert torch.equal(rotate(x, rotary_tables(angles, head_size, x.dtype)), expected)
