"""``qstar train loop`` (expert iteration with MCTS or Q*) and ``qstar train rft`` (the RFT /
STaR baseline): train the tiny GPT from random weights with its own search or samples.

Both write ``runs/<name>/`` (see :mod:`qstar.training.runs`) and show one line per round:
problems searched, how many the search solved, the losses, System-1 and System-2 accuracy on
val, CPU minutes. ``--resume runs/<name>`` continues a killed run with its saved settings
(only ``--workers``, ``--test`` and the trackers may change) and reproduces the numbers of an
uninterrupted run. :func:`register` adds the two commands to ``qstar train`` (called at the end
of :mod:`qstar.cli.train`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from qstar.cli.options import PRECISION_HELP, checkpoint_dir, set_threads
from qstar.cli.render import stderr, stdout
from qstar.errors import ConfigError

__all__ = ["register"]

#: CLI flag -> LoopConfig field, for the flags both commands share.
CONFIG_FLAGS = {
    "task": "task",
    "rounds": "rounds",
    "problems_per_round": "problems_per_round",
    "problems": "problem_source",
    "seed": "seed",
    "policy_target": "policy_target",
    "lookahead_temperature": "lookahead_temperature",
    "value_target": "value_target",
    "n_layer": "n_layer",
    "n_head": "n_head",
    "n_embd": "n_embd",
    "position": "position",
    "train_steps": "train_steps",
    "batch_size": "batch_size",
    "lr": "lr",
    "eval_problems": "num_eval_problems",
    "eval_search": "eval_search",
    "eval_budget": "eval_budget",
    "eval_every": "eval_every",
    "max_tokens_per_round": "max_tokens_per_round",
    "rules_fraction": "rules_fraction",
    "rules_warmup_steps": "rules_warmup_steps",
    "precision": "precision",
}
RFT_FLAGS = {"samples": "samples_per_problem", "sampler": "sampler"}
LOOP_FLAGS = {"search": "search", "search_budget": "search_budget"}


def _config_option(flag: str, field: str, kind: Any, help_: str) -> Callable:
    from qstar.training.loop_config import LoopConfig

    default = LoopConfig.__dataclass_fields__[field].default
    return click.option(
        f"--{flag.replace('_', '-')}", flag, type=kind, default=None, help=f"{help_} [default: {default}]"
    )


def _options(fn: Callable) -> Callable:
    from qstar.policy.tinygpt.model import POSITIONS
    from qstar.training.loop_data import SOURCES
    from qstar.training.precision import PRECISIONS
    from qstar.training.targets import POLICY_MODES, VALUE_MODES

    helps = {
        "task": (str, "task to train on"),
        "rounds": (int, "rounds of collect -> targets -> update -> evaluate"),
        "problems_per_round": (int, "problems searched per round"),
        "problems": (
            click.Choice(SOURCES),
            "train split, problems generated from the rules, or half of each",
        ),
        "seed": (int, "seed of the weights, the problem order and every search"),
        "policy_target": (click.Choice(POLICY_MODES), "policy target made from each tree"),
        "lookahead_temperature": (
            float,
            "tau of the lookahead policy target: pi ∝ exp(Q / tau) over the children's completed Q",
        ),
        "value_target": (click.Choice(VALUE_MODES), "value target made from each tree"),
        "n_layer": (int, "transformer layers"),
        "n_head": (int, "attention heads"),
        "n_embd": (int, "embedding width"),
        "position": (
            click.Choice(POSITIONS),
            "positions: learned absolute embeddings, or rotary (relative; skills carry to any place in a text)",
        ),
        "train_steps": (int, "updates per round"),
        "batch_size": (int, "examples per update (policy and value batches each)"),
        "lr": (float, "peak learning rate (cosine over the whole run)"),
        "eval_problems": (int, "val problems evaluated each round"),
        "eval_search": (click.Choice(["qstar", "mcts"]), "System-2 search"),
        "eval_budget": (int, "System-2 expansions per problem"),
        "eval_every": (int, "evaluate every this many rounds"),
        "max_tokens_per_round": (int, "stop collecting once this many tokens are spent"),
        "rules_fraction": (
            float,
            "share of each policy batch made of random legal steps at random rule-generated states "
            "(teaches writing legal lines; 0 turns it off)",
        ),
        "rules_warmup_steps": (int, "updates on such rule lines alone before the first round"),
        "precision": (
            click.Choice(PRECISIONS),
            PRECISION_HELP,
        ),
    }
    options = [_config_option(f, CONFIG_FLAGS[f], kind, h) for f, (kind, h) in helps.items()]
    options += [
        click.option("--name", default=None, help="run name (default: <task>-<method>-s<seed>)"),
        click.option(
            "--init",
            default=None,
            help="start from this checkpoint ('default' = the shipped model) instead of random weights",
        ),
        click.option(
            "--runs-dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=Path("runs"),
            show_default=True,
        ),
        click.option(
            "--resume",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="continue the run in this directory with its saved settings",
        ),  # fmt: skip
        click.option(
            "--workers", type=int, default=1, show_default=True, help="processes searching problems"
        ),
        click.option("--test", is_flag=True, help="evaluate on the test split once, after the last round"),
        click.option("--tensorboard", default=None, help="also log to TensorBoard in this directory"),
        click.option("--mlflow", default=None, help="also log to this MLflow tracking URI"),
        click.option(
            "--threads", type=int, default=None, help="torch threads (default: $QSTAR_THREADS or 1)"
        ),
        click.option("--quiet", is_flag=True, help="no progress lines"),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _fmt(value: Any, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}%" if pct else f"{value:.3f}"


def round_line(m: dict[str, Any], rounds: int) -> str:
    """One progress line per round (the CLI's display; the numbers are in metrics.jsonl)."""
    split = "test" if "system1_test_acc" in m else "val"
    s1, s2 = m.get(f"system1_{split}_acc"), m.get(f"system2_{split}_acc")
    legal = m.get(f"system1_legal_{split}_acc")
    legal_text = f" (legal-step greedy {_fmt(legal, True)})" if legal is not None else ""
    return (
        f"round {m['round']}/{rounds}  searched {m['problems_searched']} "
        f"(solved {_fmt(m['search_solve_rate'], True)})  lm {_fmt(m['lm_loss'])}  value {_fmt(m['value_loss'])}  "
        f"[bold]S1 {split} {_fmt(s1, True)}[/]{legal_text}  [bold]S2 {split} {_fmt(s2, True)}[/]  "
        f"{m['train_cpu_minutes']:.1f} CPU-min"
    )


def _checkpoint_shape(path: Path) -> dict[str, Any]:
    """n_layer, n_head, n_embd, block_size and position of a checkpoint directory (for ``--init``;
    checkpoints written before rotary positions existed have learned ones)."""
    model = json.loads((path / "config.json").read_text(encoding="utf-8")).get("model", {})
    shape = {k: model[k] for k in ("n_layer", "n_head", "n_embd", "block_size") if k in model}
    return {**shape, "position": model.get("position", "learned")}


def _run(ctx: click.Context, method: str, kw: dict[str, Any]) -> None:
    from qstar.tracking import make_trackers
    from qstar.training.expert_iteration import LoopConfig, run_loop

    set_threads(kw.pop("threads"))
    flags = {**CONFIG_FLAGS, **(RFT_FLAGS if method == "rft" else LOOP_FLAGS)}
    resume: Path | None = kw.pop("resume")
    if resume is not None:
        given = [f for f in flags if ctx.get_parameter_source(f) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise ConfigError(
                f"--resume continues {resume} with its saved settings; drop --{given[0].replace('_', '-')}"
            )
        from qstar.training.runs import RunDir

        saved = LoopConfig.from_json(RunDir(resume).read_config())
        config = LoopConfig.from_json(
            {**saved.to_json(), "workers": kw["workers"], "test_at_end": kw["test"]}
        )
        run_dir = resume
    else:
        fields: dict[str, Any] = {flags[f]: kw[f] for f in flags if kw.get(f) is not None}
        fields["method"] = method
        if kw["init"] is not None:
            init_dir = checkpoint_dir(kw["init"])
            fields["init"] = str(init_dir)
            fields.update({k: v for k, v in _checkpoint_shape(init_dir).items() if k not in fields})
        if method == "rft":
            fields.setdefault("policy_target", "verified")
            fields.setdefault("value_target", "q")
        config = LoopConfig(**fields, workers=kw["workers"], test_at_end=kw["test"])
        name = kw["name"] or f"{config.task}-{config.search if method == 'search' else 'rft'}-s{config.seed}"
        run_dir = kw["runs_dir"] / name
    trackers = make_trackers(tensorboard=kw["tensorboard"], mlflow=kw["mlflow"], run_name=run_dir.name)
    quiet = kw["quiet"]
    status = stderr.status("starting", spinner="dots") if not quiet else None

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if quiet:
            return
        r = data.get("round")
        if kind == "start":
            status.update(f"round {r}/{config.rounds}: searching {config.problems_per_round} problems")
        elif kind == "collected":
            status.update(f"round {r}/{config.rounds}: training on {data['problems']} problems' targets")
        elif kind == "updated":
            status.update(f"round {r}/{config.rounds}: evaluating System 1 and System 2")
        elif kind == "round":
            stderr.print(round_line(data, config.rounds))
            status.update(f"round {r + 1}/{config.rounds}: searching")
        elif kind == "test":
            stderr.print(f"[bold]test[/]: {json.dumps({k: round(v, 4) for k, v in data.items()})}")

    if status is not None:
        status.start()
    try:
        history = run_loop(config, run_dir, resume=resume is not None, trackers=trackers, on_event=on_event)
    finally:
        if status is not None:
            status.stop()
    last = history[-1] if history else {}
    stdout.print(
        f"run {run_dir}: {len(history)} rounds, System 1 val {_fmt(last.get('system1_val_acc'), True)}, "
        f"System 2 val {_fmt(last.get('system2_val_acc'), True)}, "
        f"{last.get('train_cpu_minutes', 0.0):.1f} training CPU-minutes"
    )


def register(group: click.Group) -> None:
    """Add ``loop`` and ``rft`` to the ``qstar train`` group."""

    @group.command("loop")
    @_options
    @click.option("--search", type=click.Choice(["mcts", "qstar"]), default=None, help="[default: mcts]")
    @click.option("--search-budget", type=int, default=None, help="expansions per problem [default: 40]")
    @click.pass_context
    def loop_cmd(ctx: click.Context, **kw: Any) -> None:
        """Expert iteration from random weights: search (MCTS or Q*) -> targets -> update -> eval."""
        _run(ctx, "search", kw)

    @group.command("rft")
    @_options
    @click.option("--samples", type=int, default=None, help="paths sampled per problem [default: 16]")
    @click.option(
        "--sampler", type=click.Choice(["legal", "generate"]), default=None, help="[default: legal]"
    )
    @click.pass_context
    def rft_cmd(ctx: click.Context, **kw: Any) -> None:
        """The RFT / STaR baseline: sample paths, keep the verified ones, fine-tune, repeat."""
        _run(ctx, "rft", kw)
