"""Fit a probe PRM (:mod:`qstar.rewards.probe`) on a label file: ``qstar train prm --probe``.

Each record of a ``qstar label`` file names its task and problem (``meta["task"]``,
``meta["problem"]``), so its steps are replayed on the frozen base to read their features. The
problems are split into train and val by the same stable hash as value-head training
(:func:`~qstar.training.prm_train.split_by_problem`), and the val steps are scored with
:func:`~qstar.rewards.prm.step_metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from qstar.errors import ConfigError, IllegalStepError, ParseError, ProblemError
from qstar.policy.base import Policy
from qstar.rewards.labels import LabelRecord
from qstar.rewards.prm import step_metrics
from qstar.rewards.probe import LinearProbe, fit_probe, step_features
from qstar.tasks.registry import get_task
from qstar.training.prm_train import StepExample, split_by_problem

__all__ = ["fit_probe_on_labels"]


def _paths(records: Sequence[LabelRecord]) -> list[tuple[Any, Any, list[str]]]:
    out, tasks = [], {}
    for i, r in enumerate(records, start=1):
        name, text = r.meta.get("task"), r.meta.get("problem")
        if not isinstance(name, str) or not isinstance(text, str):
            raise ConfigError(f"label record {i} names no task/problem (write labels with `qstar label`)")
        if name not in tasks:
            tasks[name] = get_task(name)
        task = tasks[name]
        try:
            problem = task.parse_problem(text)
            task.replay(problem, r.completions)
        except (ProblemError, ParseError, IllegalStepError) as err:
            raise ConfigError(f"label record {i} ({name} {text!r}) does not replay: {err}") from err
        out.append((task, problem, list(r.completions)))
    return out


def fit_probe_on_labels(
    base: Policy,
    records: Sequence[LabelRecord],
    *,
    target: str = "hard",
    val_frac: float = 0.1,
    seed: int = 0,
    l2: float = 1e-3,
) -> tuple[LinearProbe, dict[str, Any]]:
    """A probe fitted on the train problems' steps (``hard`` labels or ``soft`` values) and
    its metrics on the held-out problems' steps."""
    if target not in ("hard", "soft"):
        raise ConfigError(f"probe target must be hard or soft, got {target!r}")
    if target == "soft" and not all(r.values for r in records):
        raise ConfigError("target 'soft' needs a 'values' column (label with --method mc)")
    paths = _paths(records)
    by_record: dict[int, np.ndarray] = {}
    for task in {id(t): t for t, _, _ in paths}.values():  # one batched pass per task
        mine = [k for k, (t, _, _) in enumerate(paths) if t is task]
        rows = step_features(task, base, [(paths[k][1], paths[k][2]) for k in mine])
        by_record.update(zip(mine, rows, strict=True))
    # One StepExample per record (its group) to reuse the problem split of value training.
    groups = [StepExample("", 0.0, False, r.problem_key) for r in records]
    _, val_g = split_by_problem(groups, val_frac, seed)
    val_keys = {e.group for e in val_g}

    def stack(held_out: bool) -> tuple[np.ndarray, np.ndarray, list[bool], list[float]]:
        xs, ys, labels, values = [], [], [], []
        for k, r in enumerate(records):
            if (r.problem_key in val_keys) != held_out:
                continue
            xs.append(by_record[k])
            labels += list(r.labels)
            values += list(r.values) if r.values else [float(y) for y in r.labels]
            ys += [float(y) for y in r.labels] if target == "hard" else list(r.values)
        x = np.concatenate(xs) if xs else np.zeros((0, 1))
        return x, np.array(ys, dtype=float), labels, values

    x, y, _, _ = stack(False)
    if len(x) == 0:
        raise ConfigError("no training steps (is the label file empty, or all of it held out?)")
    probe = fit_probe(x, y, l2=l2, seed=seed)
    vx, _, v_labels, v_values = stack(True)
    metrics: dict[str, Any] = {"num_train": len(x), "num_val": len(vx)}
    if len(vx):
        metrics.update(step_metrics(probe.predict(vx).tolist(), v_labels, values=v_values))
    return probe, metrics
