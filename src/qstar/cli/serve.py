"""``qstar serve``: the OpenAI-compatible reasoning server (extra ``[serve]``)."""

from __future__ import annotations

import os

import click

from qstar.cli.options import model_options, set_threads
from qstar.cli.render import stderr
from qstar.errors import ConfigError, require_extra
from qstar.policy.loading import load_policy
from qstar.rewards.registry import make_scorer
from qstar.tasks.registry import get_task

__all__ = ["serve_cmd"]


@click.command("serve")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="address to bind (0.0.0.0 = every interface)"
)
@click.option("--port", type=int, default=8000, show_default=True)
@model_options
@click.option(
    "--api-key",
    default=None,
    help="require 'Authorization: Bearer KEY' (default: $QSTAR_SERVE_API_KEY; none = open)",
)
@click.option(
    "--max-budget", type=int, default=256, show_default=True, help="largest reasoning.budget allowed"
)
@click.option(
    "--task", "default_task", default="game24", show_default=True, help="task when a request names none"
)
@click.option(
    "--search-threads", type=int, default=2, show_default=True, help="reasoning requests run at once"
)
@click.option(
    "--max-batch-size", type=int, default=32, show_default=True, help="prompts per batched model call"
)
def serve_cmd(
    host: str,
    port: int,
    model: str,
    scorer: str,
    threads: int | None,
    seed: int,
    api_key: str | None,
    max_budget: int,
    default_task: str,
    search_threads: int,
    max_batch_size: int,
) -> None:
    """Serve a model through the OpenAI API, with qstar's reasoning as a request option.

    Plain requests are ordinary completions; add "reasoning": {"mode": "mcts", "budget": 64,
    "task": "game24"} to the body to have the problem in the last user message searched.
    """
    require_extra("fastapi", "serve")
    uvicorn = require_extra("uvicorn", "serve")
    from qstar.serve import ServeConfig, create_app

    for name, value in (
        ("--max-budget", max_budget),
        ("--search-threads", search_threads),
        ("--max-batch-size", max_batch_size),
        ("--port", port + 1),
    ):
        if value < 1:
            raise ConfigError(f"{name} must be positive, got {value}")
    get_task(default_task)
    set_threads(threads)
    policy = load_policy(model)
    if policy is None:
        raise ConfigError("qstar serve needs a model (got --model none)")
    make_scorer(scorer, get_task(default_task), policy)  # a bad scorer fails now, not per request
    key = api_key or os.environ.get("QSTAR_SERVE_API_KEY") or None
    config = ServeConfig(
        model_name=model,
        api_key=key,
        scorer=scorer,
        default_task=default_task,
        max_budget=max_budget,
        default_budget=min(64, max_budget),
        max_batch_size=max_batch_size,
        search_threads=search_threads,
        seed=seed,
    )
    if host not in ("127.0.0.1", "localhost", "::1") and key is None:
        stderr.print(f"[yellow]warning[/]: serving on {host} without an API key (--api-key)")
    stderr.print(f"qstar serve: {policy.name} on http://{host}:{port}/v1 (Ctrl-C stops)")
    # Keep-alive well above clients' pool expiry (httpx: 5 s), so no client reuses a connection
    # the server is closing at that moment (a "connection reset" for a non-retried POST).
    uvicorn.run(create_app(policy, config), host=host, port=port, log_level="warning", timeout_keep_alive=75)
