"""PNG plots of training runs and benchmarks (matplotlib, Agg backend: no display needed).

- :func:`plot_run`: a run's learning curves from ``runs/<name>/metrics.jsonl`` (one JSON object
  per round): held-out accuracy (System 1 / System 2), solve rate during search, losses, cost.
- :func:`plot_ladder`: ``benchmarks/results/search_ladder.json``, success rate against the
  expansion budget for every search algorithm, one panel per task.

Readers are tolerant: a key missing from some rounds leaves a gap, a panel whose keys are all
missing is left out, and a half-written last line (a run still training) is skipped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from qstar.errors import ConfigError, require_extra

__all__ = [
    "read_metrics",
    "metric_series",
    "group_panels",
    "ladder_series",
    "plot_run",
    "plot_ladder",
    "plot_path",
]

X_KEYS = ("round", "step", "epoch")
COST_KEYS = ("cpu_minutes", "gpu_minutes", "wall_minutes", "seconds", "tokens", "expansions", "model_calls")
# (panel title, y label, which flattened keys go in it); a key goes in the first panel that takes it.
PANELS: tuple[tuple[str, str, Callable[[str], bool]], ...] = (
    ("held-out accuracy", "accuracy", lambda k: k.endswith(("_acc", "_accuracy")) or k == "accuracy"),
    ("solve rate during search", "solve rate", lambda k: "solve_rate" in k or k.endswith("_solved")),
    ("losses", "loss", lambda k: k == "loss" or k.endswith("_loss")),
    ("cost", "as logged", lambda k: k.rsplit(".", 1)[-1] in COST_KEYS),
)


def _pyplot():
    matplotlib = require_extra("matplotlib", "track")
    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _number(value: Any) -> float | None:
    """A plottable number, or ``None`` (bools, strings, NaN and infinities are not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The rounds of a ``metrics.jsonl``, nested objects flattened to ``a.b`` keys."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read metrics ({err.strerror})") from err
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            if number == len(lines):
                break  # a line still being written by a running training
            raise ConfigError(f"{path}:{number}: not a JSON object ({err.msg})") from err
        if not isinstance(obj, dict):
            raise ConfigError(f"{path}:{number}: expected a JSON object per line")
        rows.append(_flatten(obj))
    return rows


def metric_series(rows: list[dict[str, Any]]) -> tuple[str, list[float], dict[str, list[float]]]:
    """``(x name, x values, {key: y values})`` with NaN where a round lacks a key. The x axis
    is the first of ``round``/``step``/``epoch`` present in every row, else the line number."""
    x_name = next((k for k in X_KEYS if rows and all(_number(r.get(k)) is not None for r in rows)), "")
    xs = [float(r[x_name]) for r in rows] if x_name else [float(i) for i in range(len(rows))]
    keys = sorted({k for r in rows for k, v in r.items() if k != x_name and _number(v) is not None})
    series = {
        k: [_number(r.get(k)) if _number(r.get(k)) is not None else math.nan for r in rows] for k in keys
    }
    return x_name or "line", xs, series


def group_panels(keys: Iterable[str]) -> list[tuple[str, str, list[str]]]:
    """``(title, y label, keys)`` of every panel that gets at least one key (see ``PANELS``)."""
    keys = list(keys)
    panels, taken = [], set()
    for title, ylabel, takes in PANELS:
        mine = [k for k in keys if k not in taken and takes(k)]
        taken.update(mine)
        if mine:
            panels.append((title, ylabel, mine))
    return panels


def _out_path(out: str | Path | None, default: Path) -> Path:
    path = Path(out) if out is not None else default
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def plot_run(path: str | Path, out: str | Path | None = None) -> Path:
    """Learning curves of a run (``runs/<name>`` or its ``metrics.jsonl``) as one PNG, by
    default ``runs/<name>/plots/curves.png``. Returns the path written."""
    path = Path(path)
    metrics = path / "metrics.jsonl" if path.is_dir() else path
    if not metrics.is_file():
        raise ConfigError(f"{path}: no metrics.jsonl (a training run writes runs/<name>/metrics.jsonl)")
    rows = read_metrics(metrics)
    if not rows:
        raise ConfigError(f"{metrics}: no rounds logged yet")
    x_name, xs, series = metric_series(rows)
    panels = group_panels(series)
    if not panels:
        raise ConfigError(
            f"{metrics}: nothing to plot; expected keys such as system1_val_acc, policy_loss, tokens"
        )
    plt = _pyplot()
    cols = min(2, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(6 * cols, 3.6 * nrows), squeeze=False)
    for ax, (title, ylabel, keys) in zip(axes.flat, panels, strict=False):
        for key in keys:
            ax.plot(xs, series[key], marker="o", markersize=3, label=key)
        if title == "cost" and all(v > 0 for k in keys for v in series[k] if not math.isnan(v)):
            ax.set_yscale("log")  # minutes and tokens differ by orders of magnitude
            ylabel += " (log scale)"
        ax.set_title(title)
        ax.set_xlabel(x_name)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    run_name = metrics.parent.name
    fig.suptitle(f"{run_name}: {len(rows)} rounds")
    fig.tight_layout()
    target = _out_path(out, metrics.parent / "plots" / "curves.png")
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


def _success(cell: Any) -> float | None:
    if isinstance(cell, dict):
        for key in ("success", "solve_rate", "success_rate", "accuracy"):
            if _number(cell.get(key)) is not None:
                return _number(cell[key])
        return None
    return _number(cell)


def ladder_series(obj: dict[str, Any]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """``{task: {search: [(budget, success), ...]}}`` from a search-ladder result: tasks under
    ``tasks``, searches under ``ladder`` (or ``searches``), cells under ``budgets`` keyed by the
    budget, success under ``success`` (or ``solve_rate``)."""
    tasks = obj.get("tasks", {}) if isinstance(obj, dict) else {}
    out: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for task, task_obj in tasks.items():
        if not isinstance(task_obj, dict):
            continue
        searches = task_obj.get("ladder", task_obj.get("searches", {}))
        for search, entry in searches.items() if isinstance(searches, dict) else ():
            budgets = entry.get("budgets", {}) if isinstance(entry, dict) else {}
            points = []
            for budget, cell in budgets.items():
                try:
                    b = float(budget)
                except ValueError:
                    continue
                if (y := _success(cell)) is not None:
                    points.append((b, y))
            if points:
                out.setdefault(task, {})[search] = sorted(points)
    return out


def _references(obj: dict[str, Any]) -> Iterable[tuple[str, str, float]]:
    """(task, label, success) reference lines recorded in the result (GPT-4 ToT on Game of 24)."""
    for goal in (obj.get("goals") or {}).values():
        if isinstance(goal, dict) and _number(goal.get("gpt4_tot")) is not None:
            yield "game24", "GPT-4 ToT (b=5), Yao et al. 2023", float(goal["gpt4_tot"])


def plot_ladder(path: str | Path, out: str | Path | None = None) -> Path:
    """Success vs expansion budget per search algorithm (one panel per task), by default next
    to the JSON with the suffix ``.png``. Returns the path written."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: cannot read a search-ladder JSON ({err})") from err
    data = ladder_series(obj)
    if not data:
        raise ConfigError(
            f"{path}: no search-ladder results (expected tasks -> ladder -> search -> budgets -> success)"
        )
    refs = list(_references(obj))
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(data), figsize=(6.5 * len(data), 4.2), squeeze=False)
    # One colour per search in every panel, so a search is the same line everywhere.
    names = list(dict.fromkeys(s for searches in data.values() for s in searches))
    colors = {name: plt.get_cmap("tab10")(i % 10) for i, name in enumerate(names)}
    for ax, (task, searches) in zip(axes.flat, data.items(), strict=True):
        for search, points in searches.items():
            xs, ys = [b for b, _ in points], [y for _, y in points]
            ax.plot(xs, ys, marker="o", markersize=4, color=colors[search], label=search)
        for ref_task, label, y in refs:
            if ref_task == task:
                ax.axhline(y, color="grey", linestyle="--", linewidth=1, label=label)
        ax.set_xscale("log")
        budgets = sorted({b for points in searches.values() for b, _ in points})
        ax.set_xticks(budgets, [f"{b:g}" for b in budgets])
        ax.minorticks_off()
        ax.set_ylim(-0.02, 1.02)
        n = (obj["tasks"][task] or {}).get("n") if isinstance(obj["tasks"][task], dict) else None
        ax.set_title(f"{task}" + (f" ({n} test problems)" if n else ""))
        ax.set_xlabel("expansion budget (states asked of the policy)")
        ax.set_ylabel("success rate")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    target = _out_path(out, path.with_suffix(".png"))
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


def plot_path(path: str | Path, out: str | Path | None = None) -> Path:
    """Plot whatever ``path`` is: a run folder or ``*.jsonl`` (learning curves), or a
    search-ladder ``*.json``."""
    path = Path(path)
    if path.is_dir() or path.suffix == ".jsonl":
        return plot_run(path, out)
    if path.suffix == ".json":
        return plot_ladder(path, out)
    raise ConfigError(f"{path}: expected a run folder, a metrics .jsonl or a search-ladder .json")
