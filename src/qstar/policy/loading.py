"""``--model`` strings -> policies, resolved once at the boundary (CLI, server, benchmarks).

- ``default`` (or nothing): the shipped tiny GPT checkpoint in ``qstar/policy/tinygpt/weights``.
- a directory path: a tiny GPT checkpoint written by ``qstar train``.
- ``none``: no model at all (only the ``blind`` search works without one).

Hugging Face (``hf:/path``) and OpenAI-compatible (``openai:NAME``) backends are separate
optional extras; nothing here downloads weights.
"""

from __future__ import annotations

from pathlib import Path

from qstar.errors import CheckpointError, ConfigError
from qstar.policy.base import Policy

__all__ = ["load_policy"]


def load_policy(spec: str | None = None, *, device: str = "cpu") -> Policy | None:
    """The policy a ``--model`` string names (see module docstring)."""
    from qstar.policy.tinygpt.policy import TinyGPTPolicy, load_default_policy

    if spec is None or spec == "default":
        return load_default_policy(device=device)
    if spec == "none":
        return None
    backend, sep, rest = spec.partition(":")
    if sep and backend in ("hf", "openai"):
        raise ConfigError(
            f"model {spec!r}: the {backend!r} backend is not part of this version of qstar yet "
            "(use 'default' or a tiny GPT checkpoint directory)"
        )
    path = Path(spec)
    if not path.exists():
        raise CheckpointError(f"model {spec!r}: no such checkpoint directory (use 'default' or a path)")
    return TinyGPTPolicy.load(path, device=device)
