"""Options shared by several commands, and the one place strings become objects."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from qstar.errors import ConfigError
from qstar.search.registry import search_names
from qstar.types import Budget

__all__ = [
    "model_options",
    "search_options",
    "knobs_from",
    "budget_from",
    "set_threads",
    "checkpoint_dir",
    "PRECISION_HELP",
]

#: Help of ``--precision`` on every training command (qstar.training.precision).
PRECISION_HELP = "training steps in fp32, or bf16 mixed precision (faster on CPUs with AMX / AVX512-BF16)"

# CLI flag -> search-config field. Only flags the user sets are passed on, and a flag the
# chosen search does not have is an error that lists the knobs it does have.
KNOB_FLAGS: dict[str, tuple[str, type, str]] = {
    "breadth": ("beam_width", int, "beams kept per depth (tot_bfs b, beam)"),
    "num_samples": ("num_samples", int, "samples per state or per problem"),
    "temperature": ("temperature", float, "sampling temperature"),
    "c_puct": ("pb_c_init", float, "PUCT exploration constant c_init (mcts)"),
    "simulations": ("num_simulations", int, "MCTS simulations (default: until the budget ends)"),
    "lambda_": ("heuristic_weight", float, "weight of h in f = g + lambda*h (qstar)"),
    "batch_size": ("batch_size", int, "leaves evaluated per batched model call (mcts, qstar)"),
    "value_threshold": ("value_threshold", float, "prune states valued below this (tot_dfs, stream_teacher)"),
    "lines": ("lines", str, "stream: 'free' (token by token) or 'legal' (one legal line at a time)"),
    "back": (
        "back",
        str,
        "stream, legal lines: 'line' (back against each step line) or 'mass' (against all)",
    ),
}


def _compose(decorators: list[Callable]) -> Callable:
    def apply(fn: Callable) -> Callable:
        for d in reversed(decorators):
            fn = d(fn)
        return fn

    return apply


def _with_base_url(fn: Callable) -> Callable:
    """Take ``--base-url`` off the command's arguments and make it the default of every
    ``load_policy`` call the command makes (so commands need no code for it)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, base_url: str | None = None, **kwargs: Any) -> Any:
        from qstar.policy.loading import default_base_url

        with default_base_url(base_url):
            return fn(*args, **kwargs)

    return wrapper


def model_options(fn: Callable) -> Callable:
    return _compose(
        [
            click.option(
                "--model",
                default="default",
                show_default=True,
                help="'default' (shipped tiny GPT), a checkpoint directory, hf:DIR (local Hugging Face "
                "model), openai:NAME / openai-chat:NAME (OpenAI-compatible server), or 'none'",
            ),
            click.option(
                "--base-url",
                default=None,
                help="URL of the OpenAI-compatible server for openai:NAME, e.g. http://127.0.0.1:8000/v1 "
                "(default: $QSTAR_BASE_URL or $OPENAI_BASE_URL); key from $OPENAI_API_KEY or $QSTAR_API_KEY",
            ),
            click.option(
                "--scorer",
                default="auto",
                show_default=True,
                help="state values for search: auto, value (value head), verifier, none, judge, "
                "rollout[:N] (Monte-Carlo), prm:PATH[:min|product|last|mean], q:PATH",
            ),
            click.option(
                "--threads", type=int, default=None, help="torch CPU threads (default: $QSTAR_THREADS or 1)"
            ),
            click.option("--seed", type=int, default=0, show_default=True, help="random seed"),
        ]
    )(_with_base_url(fn))


def search_options(default_search: str) -> Callable:
    knob_opts = [
        click.option(f"--{flag.rstrip('_').replace('_', '-')}", flag, type=kind, default=None, help=help_)
        for flag, (_, kind, help_) in KNOB_FLAGS.items()
    ]
    return _compose(
        [
            click.option(
                "--search",
                "search",
                default=default_search,
                show_default=True,
                help=f"one of: {', '.join(search_names())}",
            ),
            click.option(
                "--budget",
                type=float,
                default=100,
                show_default=True,
                help="max node expansions (one state asked of the policy for its next steps)",
            ),
            click.option("--max-tokens", type=int, default=None, help="max model tokens per problem"),
            click.option("--max-seconds", type=float, default=None, help="max seconds per problem"),
            *knob_opts,
        ]
    )


def knobs_from(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Pop the knob flags out of ``kwargs``; return the ones the user set, by config field."""
    knobs = {}
    for flag, (field, _, _) in KNOB_FLAGS.items():
        value = kwargs.pop(flag, None)
        if value is not None:
            knobs[field] = value
    return knobs


def budget_from(budget: float, max_tokens: int | None, max_seconds: float | None) -> Budget:
    if budget != int(budget):
        raise ConfigError(f"--budget must be a whole number of expansions, got {budget}")
    if budget <= 0:
        raise ConfigError(f"--budget must be a positive number of expansions, got {budget:g}")
    return Budget(max_expansions=int(budget), max_tokens=max_tokens, max_seconds=max_seconds)


def set_threads(threads: int | None) -> None:
    """Tiny models run fastest on one thread (per-op overhead dominates); bigger batches gain
    from more. ``--threads`` > ``$QSTAR_THREADS`` > 1."""
    import torch

    if threads is None:
        env = os.environ.get("QSTAR_THREADS", "1")
        if not env.isdigit() or int(env) < 1:
            raise ConfigError(f"QSTAR_THREADS must be a positive integer, got {env!r}")
        threads = int(env)
    if threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)


def checkpoint_dir(spec: str, *, flag: str = "--init", must_exist: bool = True) -> Path:
    """The tiny-GPT checkpoint directory that ``default`` (the shipped model) or a path names;
    with ``must_exist``, a directory without a checkpoint is one clear error naming ``flag``."""
    from qstar.policy.tinygpt.policy import default_checkpoint_dir

    path = Path(default_checkpoint_dir() if spec == "default" else spec)
    if must_exist and not (path / "config.json").is_file():
        raise ConfigError(f"{flag} {spec!r}: no checkpoint there (expected {path / 'config.json'})")
    return path
