"""``--model`` strings -> policies, resolved once at the boundary (CLI, server, benchmarks).

- ``default`` (or nothing): the shipped tiny GPT checkpoint in ``qstar/policy/tinygpt/weights``
  (the flagship loop's Game-of-24 model); ``sft-oracle``: the shipped imitation baseline (all
  four tasks), in ``weights/sft-oracle``.
- a directory path: a tiny GPT checkpoint written by ``qstar train``.
- ``hf:/path/to/dir``: a local Hugging Face causal LM (extra ``[hf]``); never downloaded.
- ``openai:NAME``: model ``NAME`` on an OpenAI-compatible server's completions endpoint
  (extra ``[openai]``); ``openai-chat:NAME`` uses its chat endpoint. The server is
  ``base_url`` (the CLI's ``--base-url``), else ``$QSTAR_BASE_URL`` / ``$OPENAI_BASE_URL``.
- ``none``: no model at all (only the ``blind`` search works without one).

Nothing here downloads weights.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from qstar.errors import CheckpointError, ConfigError
from qstar.policy.base import Policy

__all__ = ["load_policy", "default_base_url"]

_BASE_URL: contextvars.ContextVar[str | None] = contextvars.ContextVar("qstar_base_url", default=None)


@contextmanager
def default_base_url(url: str | None) -> Iterator[None]:
    """Within the block, ``load_policy`` uses ``url`` when called without ``base_url`` (this is
    how the CLI's ``--base-url`` reaches every command that loads a model)."""
    token = _BASE_URL.set(url)
    try:
        yield
    finally:
        _BASE_URL.reset(token)


def load_policy(
    spec: str | None = None, *, device: str | None = None, base_url: str | None = None
) -> Policy | None:
    """The policy a ``--model`` string names (see module docstring).

    ``device``: ``cpu``/``cuda``; ``None`` means CPU for the tiny GPT and "CUDA when present"
    for ``hf:`` models.
    """
    from qstar.policy.tinygpt.policy import SHIPPED_CHECKPOINTS, TinyGPTPolicy, load_default_policy

    base_url = base_url or _BASE_URL.get()
    backend, sep, rest = (spec or "").partition(":")
    remote = sep and backend in ("openai", "openai-chat")
    if base_url and not remote:
        raise ConfigError(f"--base-url only applies to openai:NAME models, not {spec or 'default'!r}")
    if spec is None or spec in SHIPPED_CHECKPOINTS:
        return load_default_policy(device=device or "cpu", name=spec or "default")
    if spec == "none":
        return None
    if sep and backend == "hf":
        from qstar.policy.hf import HFPolicy

        if not rest:
            raise ConfigError("model 'hf:': give a local directory, e.g. hf:/models/qwen2.5-0.5b")
        return HFPolicy.load(rest, device=device)
    if remote:
        from qstar.policy.openai_http import OpenAIPolicy

        style = "chat" if backend == "openai-chat" else "completion"
        return OpenAIPolicy(rest, base_url=base_url, style=style)
    path = Path(spec)
    if not path.exists():
        raise CheckpointError(
            f"model {spec!r}: no such checkpoint directory (use 'default', 'sft-oracle', a path, hf:DIR or openai:NAME)"
        )
    return TinyGPTPolicy.load(path, device=device or "cpu")
