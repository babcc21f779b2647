"""Saving and loading a tiny GPT with its tokenizer.

A checkpoint is a directory with two files:

* ``model.safetensors``: the weights (safetensors, so loading never runs pickled code); the LM
  head is tied to the token embedding and is stored once, as ``wte.weight``;
* ``config.json``: ``{"format", "version", "model": GPTConfig fields, "tokenizer":
  Tokenizer.config(), "dtype", "weights_sha256", "meta": {...}}``. ``meta`` is free-form
  (training config, metrics, data provenance).

Both files are written to temporary files in the same directory and moved into place with
``os.replace``, so a reader never sees a half-written file. The weights are written first and
``config.json`` records their SHA-256, so a crash between the two replacements (new weights, old
config) is detected on load instead of silently pairing mismatched files.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from qstar.errors import CheckpointError, ConfigError
from qstar.policy.tinygpt.model import GPT, GPTConfig
from qstar.policy.tinygpt.tokenizer import Tokenizer

__all__ = ["Checkpoint", "save_checkpoint", "load_checkpoint", "WEIGHTS_FILE", "CONFIG_FILE"]

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
_FORMAT = "qstar-tinygpt"
_VERSION = 1
_DTYPES = {"float32": torch.float32, "float16": torch.float16}
_TIED = "lm_head.weight"


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (float32, eval mode), its tokenizer and ``meta``."""

    model: GPT
    tokenizer: Tokenizer
    meta: dict[str, Any] = field(default_factory=dict)


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _state_dict(model: GPT, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {
        name: tensor.detach().to("cpu", dtype).contiguous().clone()
        for name, tensor in model.state_dict().items()
        if name != _TIED
    }


def save_checkpoint(
    path: str | os.PathLike[str],
    model: GPT,
    tokenizer: Tokenizer,
    *,
    meta: Mapping[str, Any] | None = None,
    dtype: str = "float32",
) -> Path:
    """Write ``model`` and ``tokenizer`` to the directory ``path`` (created if needed).

    ``dtype="float16"`` halves the file (for a shipped checkpoint); loading converts back to
    float32, so that round trip is lossy, while the float32 one is bit-identical. ``meta`` must
    be JSON-serialisable. Returns the directory.
    """
    if dtype not in _DTYPES:
        raise ConfigError(f"checkpoint dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    if model.config.vocab_size != tokenizer.vocab_size:
        raise ConfigError(
            f"model vocab_size {model.config.vocab_size} != tokenizer vocab_size {tokenizer.vocab_size}"
        )
    from safetensors.torch import save

    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    weights = save(_state_dict(model, _DTYPES[dtype]), metadata={"format": "pt"})
    config = {
        "format": _FORMAT,
        "version": _VERSION,
        "model": asdict(model.config),
        "tokenizer": tokenizer.config(),
        "dtype": dtype,
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "meta": dict(meta or {}),
    }
    try:
        config_bytes = (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()
    except (TypeError, ValueError) as err:
        raise ConfigError(f"checkpoint meta must be JSON-serialisable: {err}") from err
    _write_atomic(directory / WEIGHTS_FILE, weights)
    _write_atomic(directory / CONFIG_FILE, config_bytes)
    return directory


def _read_config(file: Path) -> dict[str, Any]:
    try:
        config = json.loads(file.read_text())
    except FileNotFoundError as err:
        raise CheckpointError(f"checkpoint config {file} is missing") from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"checkpoint config {file} is not valid JSON: {err}") from err
    if not isinstance(config, dict) or config.get("format") != _FORMAT:
        raise CheckpointError(f"checkpoint config {file} is not a {_FORMAT} config")
    if config.get("version") != _VERSION:
        raise CheckpointError(
            f"checkpoint config {file} has version {config.get('version')!r}; this qstar reads {_VERSION}"
        )
    return config


def load_checkpoint(path: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint directory written by :func:`save_checkpoint`.

    Raises :class:`~qstar.errors.CheckpointError`, naming the file, when the directory or a
    file is missing, a file is corrupt, or the weights do not match the config.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    directory = Path(path)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory {directory} does not exist")
    config_file, weights_file = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    config = _read_config(config_file)
    try:
        model_config = GPTConfig(**config["model"])
        tokenizer = Tokenizer.from_config(config["tokenizer"])
    except (KeyError, TypeError, ConfigError) as err:
        raise CheckpointError(f"checkpoint config {config_file} is invalid: {err}") from err
    if model_config.vocab_size != tokenizer.vocab_size:
        raise CheckpointError(
            f"checkpoint config {config_file}: model vocab_size {model_config.vocab_size} != "
            f"tokenizer vocab_size {tokenizer.vocab_size}"
        )

    try:
        weights = weights_file.read_bytes()
    except FileNotFoundError as err:
        raise CheckpointError(f"checkpoint weights {weights_file} are missing") from err
    except OSError as err:
        raise CheckpointError(f"checkpoint weights {weights_file} cannot be read: {err}") from err
    expected_digest = config.get("weights_sha256")
    if expected_digest is not None and hashlib.sha256(weights).hexdigest() != expected_digest:
        raise CheckpointError(
            f"checkpoint weights {weights_file} do not match the SHA-256 recorded in {config_file} "
            "(corrupt or from another save)"
        )
    try:
        state = load(weights)
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"checkpoint weights {weights_file} are corrupt: {err}") from err

    model = GPT(model_config)
    expected = {k: v.shape for k, v in model.state_dict().items() if k != _TIED}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint weights {weights_file} do not match {config_file}: "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    for name, shape in expected.items():
        if state[name].shape != shape:
            raise CheckpointError(
                f"checkpoint weights {weights_file}: {name} has shape {tuple(state[name].shape)}, "
                f"{config_file} implies {tuple(shape)}"
            )
        if not state[name].is_floating_point():
            raise CheckpointError(f"checkpoint weights {weights_file}: {name} is not a float tensor")
    state = {k: v.to(torch.float32) for k, v in state.items()}
    state[_TIED] = state["wte.weight"]
    model.load_state_dict(state, strict=True)
    model.to(device).eval()
    meta = config.get("meta") or {}
    return Checkpoint(model=model, tokenizer=tokenizer, meta=dict(meta))
