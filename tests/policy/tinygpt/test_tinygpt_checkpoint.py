"""Specification of tiny GPT checkpoints: exact round trip, atomic writes, clear errors."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from qstar.errors import CheckpointError, ConfigError
from qstar.policy.tinygpt.checkpoint import CONFIG_FILE, WEIGHTS_FILE, load_checkpoint, save_checkpoint
from qstar.policy.tinygpt.model import GPT, GPTConfig
from qstar.policy.tinygpt.policy import TinyGPTPolicy
from qstar.policy.tinygpt.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer(max_int=20)


@pytest.fixture(scope="module")
def model(tok) -> GPT:
    return GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=2, n_head=2, n_embd=16), seed=3)


@pytest.fixture
def saved(tmp_path, model, tok):
    return save_checkpoint(tmp_path / "ckpt", model, tok, meta={"note": "test", "round": 2})


def test_round_trip_is_bit_identical(saved, model, tok):
    ckpt = load_checkpoint(saved)
    assert ckpt.model.config == model.config
    assert ckpt.tokenizer == tok
    assert ckpt.meta == {"note": "test", "round": 2}
    original, loaded = model.state_dict(), ckpt.model.state_dict()
    assert original.keys() == loaded.keys()
    for name, tensor in original.items():
        assert loaded[name].dtype == torch.float32
        assert torch.equal(loaded[name], tensor), name
    assert ckpt.model.lm_head.weight is ckpt.model.wte.weight


def test_save_leaves_only_the_two_files(saved):
    assert sorted(p.name for p in saved.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]


def test_saving_again_replaces_the_checkpoint(saved, tok):
    other = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16), seed=9)
    save_checkpoint(saved, other, tok)
    assert load_checkpoint(saved).model.config.n_layer == 1


def test_float16_checkpoint_is_smaller_and_loads_as_float32(tmp_path, saved, model, tok):
    half = save_checkpoint(tmp_path / "half", model, tok, dtype="float16")
    assert (half / WEIGHTS_FILE).stat().st_size < 0.6 * (saved / WEIGHTS_FILE).stat().st_size
    loaded = load_checkpoint(half).model
    assert loaded.wte.weight.dtype == torch.float32
    assert torch.equal(loaded.wte.weight, model.wte.weight.detach().half().float())


def test_unknown_dtype_and_unserialisable_meta_are_config_errors(tmp_path, model, tok):
    with pytest.raises(ConfigError):
        save_checkpoint(tmp_path / "a", model, tok, dtype="int8")
    with pytest.raises(ConfigError):
        save_checkpoint(tmp_path / "b", model, tok, meta={"x": object()})


def test_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match="nowhere"):
        load_checkpoint(tmp_path / "nowhere")


@pytest.mark.parametrize("name", [CONFIG_FILE, WEIGHTS_FILE])
def test_missing_file_is_named(saved, name):
    (saved / name).unlink()
    with pytest.raises(CheckpointError, match=name):
        load_checkpoint(saved)


def test_invalid_json_is_named(saved):
    (saved / CONFIG_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match=CONFIG_FILE):
        load_checkpoint(saved)


def rewrite_config(directory, edit):
    config = json.loads((directory / CONFIG_FILE).read_text())
    edit(config)
    (directory / CONFIG_FILE).write_text(json.dumps(config))


def test_corrupt_weights_are_named(saved):
    (saved / WEIGHTS_FILE).write_bytes(b"\x00" * 40)
    with pytest.raises(CheckpointError, match=WEIGHTS_FILE):
        load_checkpoint(saved)
    rewrite_config(saved, lambda c: c.pop("weights_sha256"))  # past the digest: the parser fails
    with pytest.raises(CheckpointError, match=f"{WEIGHTS_FILE}.*corrupt"):
        load_checkpoint(saved)


def test_config_that_does_not_match_the_weights_is_named(saved):
    rewrite_config(saved, lambda c: c["model"].update(n_embd=32))
    with pytest.raises(CheckpointError, match=f"{WEIGHTS_FILE}.*shape"):
        load_checkpoint(saved)


def test_missing_tensor_is_named(saved):
    state = load_file(saved / WEIGHTS_FILE)
    del state["value_head.bias"]
    save_file(state, saved / WEIGHTS_FILE)
    rewrite_config(saved, lambda c: c.pop("weights_sha256"))
    with pytest.raises(CheckpointError, match="value_head.bias"):
        load_checkpoint(saved)


def test_invalid_model_config_is_named(saved):
    rewrite_config(saved, lambda c: c["model"].update(n_head=3))
    with pytest.raises(CheckpointError, match=CONFIG_FILE):
        load_checkpoint(saved)


def test_policy_from_checkpoint_scores_like_the_original(saved, model, tok):
    original, loaded = TinyGPTPolicy(model, tok), TinyGPTPolicy.load(saved)
    assert loaded.score(["1 2\n"], [["3 + 4", "x"]]) == original.score(["1 2\n"], [["3 + 4", "x"]])
    assert loaded.name == "tinygpt:ckpt"
