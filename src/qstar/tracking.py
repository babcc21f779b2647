"""Metrics logging for training runs: a JSONL file first, experiment trackers second.

The JSONL file (``runs/<name>/metrics.jsonl``, one JSON object per round) is the source of
truth: ``qstar plot`` and the benchmarks read it, and it is written before any tracker sees the
round. TensorBoard (``--tensorboard DIR``, through ``torch.utils.tensorboard``) and MLflow
(``--mlflow URI``) are optional mirrors, imported only when asked for (extra ``[track]``).

    with MetricsLogger.open("runs/r1/metrics.jsonl", tensorboard="runs/r1/tb") as log:
        log.log({"round": 1, "system1_val_acc": 0.12, "policy_loss": 1.7, "tokens": 91234})

A tracker is any object with ``log(scalars: dict[str, float], step: int)`` and ``close()``;
tests and other backends pass their own as ``trackers=[...]``.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from qstar.errors import ConfigError, require_extra

__all__ = ["MetricsLogger", "Tracker", "TensorBoardTracker", "MLflowTracker", "make_trackers", "scalars"]


class Tracker(Protocol):
    def log(self, scalars: dict[str, float], step: int) -> None: ...

    def close(self) -> None: ...


def _jsonable(value: Any) -> Any:
    """NaN and infinities are not JSON: they are written as ``null``; numpy/torch scalars as
    numbers (``.item()``)."""
    if hasattr(value, "item") and not isinstance(value, dict | list | tuple | str):
        try:
            value = value.item()
        except (TypeError, ValueError):  # an array of more than one element
            value = value.tolist() if hasattr(value, "tolist") else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def scalars(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite numbers of ``metrics`` (nested dicts flattened to ``a/b``), as trackers take
    them; strings, lists, bools and ``None`` are left out."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(scalars(value, name + "/"))
        elif isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = float(value)
    return out


class TensorBoardTracker:
    """Scalars to TensorBoard event files in ``log_dir`` (``tensorboard --logdir DIR``)."""

    def __init__(self, log_dir: str | Path):
        module = require_extra("torch.utils.tensorboard", "track")
        self.writer = module.SummaryWriter(log_dir=str(log_dir))

    def log(self, scalars: dict[str, float], step: int) -> None:
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, global_step=step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class MLflowTracker:
    """Scalars to an MLflow run at ``uri`` (``file:./mlruns``, ``http://host:5000``, ...)."""

    def __init__(
        self, uri: str, *, experiment: str = "qstar", run_name: str | None = None, params: dict | None = None
    ):
        self.mlflow = require_extra("mlflow", "track")
        self.mlflow.set_tracking_uri(uri)
        self.mlflow.set_experiment(experiment)
        self.run = self.mlflow.start_run(run_name=run_name)
        if params:
            # MLflow params are strings of at most a few hundred characters.
            self.mlflow.log_params({k: str(v)[:250] for k, v in params.items()})

    def log(self, scalars: dict[str, float], step: int) -> None:
        # MLflow metric names may not contain every character; "/" and "." are allowed.
        self.mlflow.log_metrics(scalars, step=step)

    def close(self) -> None:
        self.mlflow.end_run()


def make_trackers(
    *,
    tensorboard: str | Path | None = None,
    mlflow: str | None = None,
    run_name: str | None = None,
    params: dict[str, Any] | None = None,
) -> list[Tracker]:
    """The trackers a training command's ``--tensorboard DIR`` / ``--mlflow URI`` ask for."""
    trackers: list[Tracker] = []
    try:
        if tensorboard is not None:
            trackers.append(TensorBoardTracker(tensorboard))
        if mlflow is not None:
            trackers.append(MLflowTracker(mlflow, run_name=run_name, params=params))
    except BaseException:
        for tracker in trackers:  # e.g. MLflow missing: don't leave TensorBoard's writer open
            tracker.close()
        raise
    return trackers


class MetricsLogger:
    """Appends one JSON line per round to ``path`` and forwards the round's numbers to trackers.

    Each line is written with a single ``write`` on a file opened for appending, then flushed
    and fsynced, so a crash leaves at most a partial last line (which the readers skip).
    """

    def __init__(self, path: str | Path, trackers: Sequence[Tracker] = ()):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.trackers = list(trackers)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self.num_logged = 0

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        tensorboard: str | Path | None = None,
        mlflow: str | None = None,
        run_name: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> MetricsLogger:
        """A logger with the trackers of ``--tensorboard`` / ``--mlflow`` (see make_trackers)."""
        trackers = make_trackers(tensorboard=tensorboard, mlflow=mlflow, run_name=run_name, params=params)
        return cls(path, trackers)

    def log(self, round_metrics: dict[str, Any]) -> None:
        """Record one round. The tracker step is ``round_metrics["round"]`` when it is an
        integer, else the number of rounds logged before this one."""
        if not isinstance(round_metrics, dict):
            raise ConfigError(f"metrics must be a dict, got {type(round_metrics).__name__}")
        if self._file.closed:
            raise ConfigError(f"metrics logger for {self.path} is closed")
        line = json.dumps(_jsonable(round_metrics), ensure_ascii=False, allow_nan=False, default=str) + "\n"
        self._file.write(line)
        self._file.flush()
        os.fsync(self._file.fileno())
        step = round_metrics.get("round")
        step = (
            int(step)
            if isinstance(step, numbers.Integral) and not isinstance(step, bool)
            else self.num_logged
        )
        self.num_logged += 1
        values = scalars(round_metrics)
        values.pop("round", None)  # it is the step, not a curve
        for tracker in self.trackers:
            tracker.log(values, step)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        for tracker in self.trackers:
            tracker.close()
        self.trackers = []

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
