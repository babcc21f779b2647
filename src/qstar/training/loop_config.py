"""The settings of one training-loop run (:func:`qstar.training.expert_iteration.run_loop`).

:class:`LoopConfig` is frozen and checked when built: a bad field is one
:class:`~qstar.errors.ConfigError` naming it. Every field but ``workers`` and
``num_saved_trees`` decides the run's numbers; the config is saved in ``runs/<name>/config.json``
and a resumed run must match it.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields
from typing import Any

from qstar.errors import ConfigError
from qstar.policy.tinygpt.model import POSITIONS
from qstar.search.registry import make_config
from qstar.tasks.registry import get_task
from qstar.training.loop_data import SOURCES, generate_problems
from qstar.training.precision import check_precision
from qstar.training.sft import SFTConfig
from qstar.training.targets import POLICY_MODES, VALUE_MODES

__all__ = ["LoopConfig", "DEFAULT_KNOBS", "sft_config"]

DEFAULT_KNOBS = {
    "mcts": {"batch_size": 8, "add_noise": True, "stop_on_solution": False},
    "qstar": {"batch_size": 1},
}


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(f"loop config: {message}")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True, kw_only=True)
class LoopConfig:
    """Everything that decides a run's numbers (``workers`` only decides its speed)."""

    task: str = "game24"
    method: str = "search"  # "search" (expert iteration) or "rft" (see qstar.training.rft)
    search: str = "mcts"
    rounds: int = 10
    problems_per_round: int = 128
    problem_source: str = "train"
    seed: int = 0
    #: Start from this checkpoint directory instead of random weights (its shape must match
    #: n_layer, n_head, n_embd, block_size and position); None = random initialisation.
    init: str | None = None
    # collection
    search_budget: int = 40
    search_knobs: dict[str, Any] | None = None  # None: DEFAULT_KNOBS of the search
    samples_per_problem: int = 16  # rft
    sampler: str = "legal"  # rft: "legal" (prior over legal steps) or "generate"
    max_tokens_per_round: int | None = None  # stop collecting once this many tokens are spent
    wave_size: int = 16  # problems per collection wave when a token budget is set
    # targets
    policy_target: str = "verified"
    value_target: str = "reachability"
    visit_temperature: float = 1.0
    lookahead_temperature: float = 0.1  # tau of the "lookahead" policy target: exp(Q / tau)
    min_visits: int = 1
    # model and update
    n_layer: int = 3
    n_head: int = 4
    n_embd: int = 96
    block_size: int = 256
    position: str = "learned"  # GPTConfig.position: one of POSITIONS
    train_steps: int = 200
    batch_size: int = 64
    value_batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.1
    value_loss_weight: float = 1.0
    balance_values: bool = True
    policy_smoothing: float = 0.25
    rules_fraction: float = 0.0  # share of each policy batch drawn from loop_data.rule_steps
    rules_warmup_steps: int = 0  # LM steps on rule lines alone before round 1
    value_discount: float = 0.9
    precision: str = "fp32"  # training steps: "fp32" or "bf16" mixed precision (training.precision)
    # evaluation
    eval_split: str = "val"
    num_eval_problems: int | None = 100
    eval_search: str = "qstar"
    eval_budget: int = 11
    eval_every: int = 1
    test_at_end: bool = False
    # speed only
    workers: int = 1
    num_saved_trees: int = 2

    def __post_init__(self) -> None:
        if self.position not in POSITIONS:
            raise ConfigError(
                f"LoopConfig.position must be one of {', '.join(POSITIONS)}, got {self.position!r}"
            )
        for name in (
            "rounds",
            "problems_per_round",
            "search_budget",
            "samples_per_problem",
            "wave_size",
            "min_visits",
            "n_layer",
            "n_head",
            "n_embd",
            "block_size",
            "train_steps",
            "batch_size",
            "value_batch_size",
            "eval_budget",
            "eval_every",
            "workers",
        ):
            _check(
                _positive_int(getattr(self, name)),
                f"{name} must be an integer >= 1, got {getattr(self, name)!r}",
            )
        _check(
            self.init is None or (isinstance(self.init, str) and self.init),
            f"init must be a path or None, got {self.init!r}",
        )
        _check(self.method in ("search", "rft"), f"method must be 'search' or 'rft', got {self.method!r}")
        _check(
            self.search in DEFAULT_KNOBS,
            f"search must be one of {', '.join(DEFAULT_KNOBS)}, got {self.search!r}",
        )
        _check(
            self.eval_search in DEFAULT_KNOBS, f"eval_search must be mcts or qstar, got {self.eval_search!r}"
        )
        _check(self.problem_source in SOURCES, f"problem_source must be one of {', '.join(SOURCES)}")
        _check(
            self.sampler in ("legal", "generate"),
            f"sampler must be 'legal' or 'generate', got {self.sampler!r}",
        )
        _check(self.policy_target in POLICY_MODES, f"policy_target must be one of {', '.join(POLICY_MODES)}")
        _check(self.value_target in VALUE_MODES, f"value_target must be one of {', '.join(VALUE_MODES)}")
        _check(self.eval_split in ("val", "test"), f"eval_split must be val or test, got {self.eval_split!r}")
        _check(
            self.max_tokens_per_round is None or _positive_int(self.max_tokens_per_round),
            "max_tokens_per_round must be None or an integer >= 1",
        )
        _check(
            self.num_eval_problems is None or _positive_int(self.num_eval_problems),
            "num_eval_problems must be None or an integer >= 1",
        )
        check_precision("LoopConfig", self.precision)
        _check(self.n_embd % self.n_head == 0, f"n_embd ({self.n_embd}) must be divisible by n_head")
        for name in ("lr", "visit_temperature", "lookahead_temperature"):
            _check(
                isinstance(getattr(self, name), int | float) and getattr(self, name) > 0,
                f"{name} must be > 0",
            )
        _check(
            isinstance(self.policy_smoothing, int | float) and 0 <= self.policy_smoothing < 1,
            f"policy_smoothing must be in [0, 1), got {self.policy_smoothing!r}",
        )
        _check(
            isinstance(self.rules_fraction, int | float) and 0 <= self.rules_fraction < 1,
            f"rules_fraction must be in [0, 1), got {self.rules_fraction!r}",
        )
        _check(
            isinstance(self.value_discount, int | float) and 0 < self.value_discount <= 1,
            f"value_discount must be in (0, 1], got {self.value_discount!r}",
        )
        for name in ("weight_decay", "value_loss_weight"):
            _check(
                isinstance(getattr(self, name), int | float) and getattr(self, name) >= 0,
                f"{name} must be >= 0",
            )
        if self.search_knobs is not None:
            make_config(self.search, **self.search_knobs)  # an unknown knob fails here
        task = get_task(self.task)  # an unknown task fails here, listing the valid ones
        _check(
            isinstance(self.rules_warmup_steps, int) and self.rules_warmup_steps >= 0,
            f"rules_warmup_steps must be an integer >= 0, got {self.rules_warmup_steps!r}",
        )
        if self.rules_fraction > 0 or self.rules_warmup_steps > 0:
            try:
                generate_problems(task, 1, random.Random(0), frozenset(), "check")
            except ConfigError:
                raise ConfigError(
                    "loop config: rules_fraction / rules_warmup_steps need problems generated from "
                    f"the rules, which task {self.task!r} does not have: set them to 0"
                ) from None

    @property
    def knobs(self) -> dict[str, Any]:
        return dict(DEFAULT_KNOBS[self.search] if self.search_knobs is None else self.search_knobs)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> LoopConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(obj) - names)
        if unknown:
            raise ConfigError(f"loop config: unknown field(s) {', '.join(unknown)}")
        return cls(**obj)


def sft_config(config: LoopConfig) -> SFTConfig:
    """The schedule of the whole run as an SFTConfig: warm-up, then cosine over all rounds."""
    return SFTConfig(
        steps=config.rounds * config.train_steps,
        batch_size=config.batch_size,
        lr=config.lr,
        weight_decay=config.weight_decay,
        value_loss_weight=config.value_loss_weight,
        append_eos=False,
        seed=config.seed,
        precision=config.precision,
    )
