"""``qstar train sft --data oracle``: build oracle data for several tasks and train the tiny GPT.

Produces the ``sft-oracle`` baseline checkpoint (and, until the flagship loop replaces it, the
shipped default). The checkpoint's ``meta`` records the command's settings, data sizes, wall
time and final metrics, which the model card quotes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from qstar.errors import ConfigError
from qstar.policy.tinygpt.checkpoint import save_checkpoint
from qstar.policy.tinygpt.model import GPT, GPTConfig
from qstar.policy.tinygpt.tokenizer import Tokenizer
from qstar.tasks.registry import get_task
from qstar.training.sft import LMExample, SFTConfig, ValueExample, train_sft
from qstar.training.sft_data import oracle_lm_examples, oracle_value_examples

__all__ = ["OracleDataSpec", "DEFAULT_DATA", "build_oracle_data", "run_oracle_sft"]


@dataclass(frozen=True)
class OracleDataSpec:
    """How much oracle data to take from one task's train split."""

    task: str
    num_problems: int | None = None  # None = the whole train split
    max_paths: int | None = 1  # solutions per problem (None = all)
    value_children: int = 0  # off-path children labelled per on-path state (0 = no value data)

    def __post_init__(self) -> None:
        if self.num_problems is not None and self.num_problems < 1:
            raise ConfigError(f"{self.task}: num_problems must be >= 1")
        if self.value_children < 0:
            raise ConfigError(f"{self.task}: value_children must be >= 0")


#: The data of the shipped default checkpoint (see its model card).
DEFAULT_DATA = (
    OracleDataSpec("game24", None, None, 4),
    OracleDataSpec("countdown-4", 2000, 1, 2),
    OracleDataSpec("countdown-6", 200, 1, 0),
    OracleDataSpec("arith", 3000, 1, 0),
)


def build_oracle_data(
    specs: Sequence[OracleDataSpec], *, seed: int = 0, log: Callable[[str], None] = print
) -> tuple[list[LMExample], list[ValueExample], dict[str, Any]]:
    lm: list[LMExample] = []
    values: list[ValueExample] = []
    sizes: dict[str, Any] = {}
    for spec in specs:
        start = time.perf_counter()
        task = get_task(spec.task)
        problems = task.problems("train")
        test_texts = {p.text for p in task.problems("test")}
        problems = problems[: spec.num_problems] if spec.num_problems else problems
        assert not any(p.text in test_texts for p in problems), "test problems leaked into training data"
        task_lm = oracle_lm_examples(task, problems, max_paths=spec.max_paths)
        task_values = (
            oracle_value_examples(task, problems, rng=random.Random(seed), max_children=spec.value_children)
            if spec.value_children
            else []
        )
        lm += task_lm
        values += task_values
        sizes[spec.task] = {
            "problems": len(problems),
            "lm_examples": len(task_lm),
            "value_examples": len(task_values),
        }
        log(
            f"{spec.task}: {len(problems)} problems -> {len(task_lm)} paths, {len(task_values)} value labels "
            f"({time.perf_counter() - start:.0f}s)"
        )
    return lm, values, sizes


def run_oracle_sft(
    out: str | Path,
    *,
    specs: Sequence[OracleDataSpec] = DEFAULT_DATA,
    model_config: dict[str, Any] | None = None,
    sft_config: SFTConfig,
    dtype: str = "float16",
    checkpoint_every: int = 0,
    progress: bool = True,
    log: Callable[[str], None] = print,
    on_log: Callable[[dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Build the data, train a fresh model from ``sft_config.seed``, save it to ``out`` (also
    every ``checkpoint_every`` steps, so a long run can be stopped and still used)."""
    start = time.perf_counter()
    lm, values, sizes = build_oracle_data(specs, seed=sft_config.seed, log=log)
    data_seconds = time.perf_counter() - start
    tokenizer = Tokenizer()
    config = GPTConfig(vocab_size=tokenizer.vocab_size, **(model_config or {}))
    model = GPT(config, seed=sft_config.seed)
    if checkpoint_every:
        sft_config = replace(sft_config, eval_every=checkpoint_every)
    metrics = train_sft(
        model,
        tokenizer,
        lm,
        values,
        sft_config,
        progress=progress,
        checkpoint_dir=out if checkpoint_every else None,
        on_log=on_log,
    )
    meta = {
        "trainer": "sft-oracle",
        "data": {"source": "oracle solutions of the train splits", "tasks": sizes},
        "data_specs": [asdict(s) for s in specs],
        "sft_config": asdict(sft_config),
        "metrics": metrics,
        "data_seconds": round(data_seconds, 1),
        "train_seconds": round(metrics.get("seconds", 0.0), 1),
        "num_params": model.num_params(),
    }
    save_checkpoint(out, model, tokenizer, meta=meta, dtype=dtype)
    return meta
