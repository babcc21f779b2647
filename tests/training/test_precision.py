"""bf16 mixed-precision training: configs refuse unknown precisions, a bf16 step keeps fp32
weights and lands near the fp32 step, the tiny GPT's CPU attention stays fp32 under autocast,
and the default fp32 path is untouched."""

from __future__ import annotations

import pytest
import torch

from qstar.errors import ConfigError
from qstar.policy.tinygpt.model import GPT, GPTConfig
from qstar.policy.tinygpt.tokenizer import Tokenizer
from qstar.training.distill import DistillConfig
from qstar.training.loop_config import LoopConfig, sft_config
from qstar.training.precision import PRECISIONS, autocast, check_precision
from qstar.training.sft import (
    LMExample,
    SFTConfig,
    ValueExample,
    _make_optimizer,
    encode_lm_example,
    encode_value_example,
    make_lm_batch,
    make_value_batch,
    train_step,
)
from qstar.training.value_sweep import SweepConfig


@pytest.mark.parametrize(
    "make",
    [
        lambda p: SFTConfig(steps=1, precision=p),
        lambda p: LoopConfig(precision=p),
        lambda p: DistillConfig(precision=p),
        lambda p: SweepConfig(precision=p),
    ],
)
def test_every_training_config_takes_the_precisions_and_refuses_others(make):
    for precision in PRECISIONS:
        assert make(precision).precision == precision
    with pytest.raises(ConfigError, match="precision must be one of 'fp32', 'bf16', got 'fp16'"):
        make("fp16")


def test_the_loop_passes_its_precision_to_its_schedule():
    assert sft_config(LoopConfig(precision="bf16")).precision == "bf16"
    assert sft_config(LoopConfig()).precision == "fp32"


def test_autocast_is_a_no_op_in_fp32_and_bf16_matmuls_otherwise():
    layer = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    with autocast("fp32"):
        assert layer(x).dtype == torch.float32
    with autocast("bf16"):
        assert layer(x).dtype == torch.bfloat16
    assert layer(x).dtype == torch.float32  # the context ends with the block
    with pytest.raises(ConfigError, match="precision"):
        check_precision("here", "half")


def _model(position: str) -> tuple[GPT, Tokenizer]:
    tokenizer = Tokenizer()
    config = GPTConfig(tokenizer.vocab_size, 64, 2, 2, 32, position=position)
    return GPT(config, seed=0), tokenizer


@pytest.mark.parametrize("position", ["learned", "rope"])
def test_forward_under_bf16_autocast_is_close_to_fp32_with_and_without_a_mask(position):
    model, _ = _model(position)
    ids = torch.randint(3, 20, (3, 12))
    mask = torch.ones(3, 12, dtype=torch.long)
    mask[0, :2] = 0  # left padding: the masked path
    for kwargs in ({}, {"attention_mask": mask}):
        exact = model(ids, **kwargs).logits
        with autocast("bf16"):
            mixed = model(ids, **kwargs).logits
        assert torch.allclose(mixed.float(), exact, atol=0.1), (mixed.float() - exact).abs().max()


def _batches(tokenizer: Tokenizer):
    lm = [
        encode_lm_example(
            tokenizer, LMExample(f"{a} {b}\n", f"{a}+{b}={a + b}\n"), block_size=64, append_eos=True
        )
        for a, b in [(1, 2), (3, 4), (10, 7), (6, 6)]
    ]
    values = [
        encode_value_example(tokenizer, ValueExample(f"{a} 4\n", a % 2), block_size=64) for a in range(4)
    ]
    return make_lm_batch(lm, pad_id=tokenizer.pad_id), make_value_batch(values, pad_id=tokenizer.pad_id)


def test_a_bf16_step_keeps_fp32_weights_and_lands_near_the_fp32_step():
    results = {}
    for precision in PRECISIONS:
        model, tokenizer = _model("rope")
        model.train()
        optimizer = _make_optimizer(model, SFTConfig(steps=1))
        lm_batch, value_batch = _batches(tokenizer)
        before = [p.detach().clone() for p in model.parameters()]
        metrics = train_step(
            model, optimizer, lm_batch, value_batch, lr=1e-3, grad_clip=1.0, value_loss_weight=1.0,
            precision=precision,
        )  # fmt: skip
        assert all(p.dtype == torch.float32 for p in model.parameters())
        assert all(
            s.dtype == torch.float32 for st in optimizer.state.values() for s in st.values() if s.dim()
        )
        assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))
        results[precision] = (metrics, [p.detach() for p in model.parameters()])
    (exact, exact_params), (mixed, mixed_params) = results["fp32"], results["bf16"]
    for key in ("lm_loss", "value_loss"):
        assert mixed[key] == pytest.approx(exact[key], rel=0.02)
    # One Adam step moves each weight by about lr: bf16 gradients move them the same way.
    assert max((a - b).abs().max() for a, b in zip(exact_params, mixed_params, strict=True)) < 2e-3


def test_cpu_attention_runs_in_fp32_under_bf16_autocast(monkeypatch):
    import qstar.policy.tinygpt.model as model_module

    seen = []
    real = model_module.F.scaled_dot_product_attention

    def spy(q, k, v, **kwargs):
        seen.append((q.dtype, torch.is_autocast_enabled("cpu")))
        return real(q, k, v, **kwargs)

    monkeypatch.setattr(model_module.F, "scaled_dot_product_attention", spy)
    model, _ = _model("rope")
    ids = torch.randint(3, 20, (2, 8))
    model(ids)
    with autocast("bf16"):
        model(ids)
    layers = model.config.n_layer
    assert seen == [(torch.float32, False)] * (2 * layers)
