"""Step-label files: TRL's stepwise-supervision JSONL plus our soft values, written resumably.

One line per labelled path, in the format TRL's ``PRMTrainer`` reads ("stepwise supervision":
``prompt``, ``completions`` = the step texts, ``labels`` = one bool per step), so a PRM for a
large model can be trained with TRL from our labels. Extra columns (TRL ignores them)::

    {"prompt": "arith: (12+7)*3-5\\n", "completions": ["19*3-5", "57-5", "52"],
     "labels": [true, true, true],          # hard label (Math-Shepherd HE): some rollout succeeds
     "values": [0.75, 0.875, 1.0],          # soft label (Math-Shepherd SE): share that succeeds
     "best_values": [1.0, 1.0, 1.0],        # Q* best-rollout estimate, max_i gamma^k_i * R_i
     "outcome": 1.0,                        # ground truth of the path's end (null: unfinished)
     "task": "arith", "problem": "(12+7)*3-5", "problem_id": "train/0",
     "index": 0, "path": 0, "method": "mc", "num_rollouts": 16}

The state after step ``i`` is rendered ``prompt + "".join(c + "\\n" for c in completions[:i+1])``,
which is ``task.render(state)`` for every task that keeps the default rendering.

Resumable writing (:class:`LabelWriter`): all lines of one problem are written with one
``write`` + ``fsync``; ``index`` is the problem's position in the run's problem list. On
restart the file is read back, a torn tail (a last line without newline, or a problem whose
lines are not all there) is cut off, and the run continues after the last complete problem.
A problem labelled with zero paths leaves no line and is simply redone (deterministically) on
restart. The settings of the run are kept in ``<out>.meta.json``; resuming with other settings
is an error, so two runs never mix in one file. A bad line in the middle of an existing file is
reported with its line number, never dropped.

Making labels: :func:`paths_tree` merges sampled paths into a search tree, :func:`tree_paths`
picks the paths of a tree to label, :func:`label_tree` labels their steps (``mc``, ``outcome``
or ``judge``) with one batched scorer call.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qstar.errors import ConfigError
from qstar.rewards.base import Scorer
from qstar.rewards.rollout import Completion, RolloutScorer
from qstar.search.tree import Tree, add_children, find_child, new_tree
from qstar.tasks.base import Task
from qstar.types import Problem

__all__ = [
    "LabelRecord",
    "LabelReport",
    "parse_label_line",
    "read_labels",
    "LabelWriter",
    "step_prompts",
    "records_by_problem",
    "LABEL_METHODS",
    "paths_tree",
    "tree_paths",
    "label_tree",
]

REQUIRED = ("prompt", "completions", "labels")


@dataclass(frozen=True)
class LabelRecord:
    """One labelled path (see module docstring); ``values``/``best_values`` may be empty."""

    prompt: str
    completions: tuple[str, ...]
    labels: tuple[bool, ...]
    values: tuple[float, ...] = ()
    best_values: tuple[float, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def problem_key(self) -> str:
        """Problems are split into train/val by this key, so one problem never straddles both."""
        return str(self.meta.get("problem_id") or self.meta.get("problem") or self.prompt)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "prompt": self.prompt,
            "completions": list(self.completions),
            "labels": list(self.labels),
        }
        if self.values:
            out["values"] = list(self.values)
        if self.best_values:
            out["best_values"] = list(self.best_values)
        out.update(self.meta)
        return out


def step_prompts(record: LabelRecord) -> list[str]:
    """The rendered state after each step of the record (module docstring)."""
    out, text = [], record.prompt
    for step in record.completions:
        text += step + "\n"
        out.append(text)
    return out


def _unit_floats(obj: Any, name: str, n: int) -> tuple[float, ...]:
    if not isinstance(obj, list) or len(obj) != n:
        raise ValueError(f"'{name}' must be a list of {n} numbers (one per completion)")
    for v in obj:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= 1:
            raise ValueError(f"'{name}' holds {v!r}; every value must be a number in [0, 1]")
    return tuple(float(v) for v in obj)


def parse_label_line(line: str) -> LabelRecord:
    """One JSONL line -> a record; raises ValueError with the reason (callers add the line number)."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"not valid JSON ({err.msg})") from None
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    missing = [k for k in REQUIRED if k not in obj]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)}")
    prompt, completions, labels = obj.pop("prompt"), obj.pop("completions"), obj.pop("labels")
    if not isinstance(prompt, str):
        raise ValueError("'prompt' must be a string")
    if not isinstance(completions, list) or not completions:
        raise ValueError("'completions' must be a non-empty list of step strings")
    if not all(isinstance(c, str) and c.strip() and "\n" not in c for c in completions):
        raise ValueError("every completion must be one non-empty line of text")
    if not isinstance(labels, list) or len(labels) != len(completions):
        raise ValueError(f"'labels' must be a list of {len(completions)} booleans (one per completion)")
    if not all(isinstance(b, bool) for b in labels):
        raise ValueError("'labels' must hold true/false only")
    n = len(completions)
    values = _unit_floats(obj.pop("values"), "values", n) if "values" in obj else ()
    best = _unit_floats(obj.pop("best_values"), "best_values", n) if "best_values" in obj else ()
    # Math-Shepherd: the hard label says some rollout succeeded, the soft one how many did.
    if values and obj.get("method") == "mc":
        for i, (hard, soft) in enumerate(zip(labels, values, strict=True)):
            if hard != (soft > 0):
                raise ValueError(f"step {i + 1}: label {str(hard).lower()} contradicts MC value {soft:g}")
    return LabelRecord(prompt, tuple(completions), tuple(labels), values, best, obj)


@dataclass
class LabelReport:
    """Records read from a label file and the lines that could not be read (1-based)."""

    records: list[LabelRecord]
    errors: list[tuple[int, str]]

    @property
    def num_steps(self) -> int:
        return sum(len(r.completions) for r in self.records)


def read_labels(path: str | os.PathLike[str]) -> LabelReport:
    """Read a label file; a bad line is recorded with its number and reason, the rest load.
    Blank lines are skipped. A missing file raises :class:`ConfigError`."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ConfigError(f"cannot read label file {str(p)!r}: {err.strerror or err}") from err
    records: list[LabelRecord] = []
    errors: list[tuple[int, str]] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(parse_label_line(line))
        except ValueError as err:
            errors.append((lineno, str(err)))
    return LabelReport(records, errors)


class LabelWriter:
    """Append-only, resumable writer of a label file (module docstring).

    ``settings`` (JSON-compatible) describe the run; :attr:`next_index` is the first problem
    index still to label. Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike[str], settings: dict[str, Any], *, resume: bool = True):
        self.path = Path(path)
        self.meta_path = self.path.with_name(self.path.name + ".meta.json")
        self.settings = json.loads(json.dumps(settings))
        self.next_index = 0
        self.num_lines = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume and self.path.exists():
            self._recover()
        else:
            self.path.write_bytes(b"")
        self._write_meta()
        self._file = open(self.path, "ab")  # noqa: SIM115 - closed in close()

    def _write_meta(self) -> None:
        tmp = self.meta_path.with_name(self.meta_path.name + ".tmp")
        tmp.write_text(json.dumps(self.settings, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.meta_path)

    def _recover(self) -> None:
        if self.meta_path.exists():
            old = json.loads(self.meta_path.read_text(encoding="utf-8"))
            if old != self.settings:
                diff = sorted(k for k in set(old) | set(self.settings) if old.get(k) != self.settings.get(k))
                raise ConfigError(
                    f"{self.path} was written with other settings ({', '.join(diff)} differ); "
                    "use another --out or delete it (and its .meta.json) to start over"
                )
        data = self.path.read_bytes()
        keep = data.rfind(b"\n") + 1  # a last line without newline is a torn write
        lines = data[:keep].decode("utf-8").split("\n")[:-1]
        offsets, pos = [], 0
        for line in lines:
            offsets.append(pos)
            pos += len(line.encode("utf-8")) + 1
        parsed: list[tuple[int, int, int]] = []  # (index, path, num_paths) per line
        for lineno, line in enumerate(lines, start=1):
            try:
                rec = parse_label_line(line)
                parsed.append((int(rec.meta["index"]), int(rec.meta["path"]), int(rec.meta["num_paths"])))
            except (ValueError, KeyError, TypeError) as err:
                raise ConfigError(f"{self.path}:{lineno}: cannot resume from this file: {err}") from None
        # The last problem is complete when all its num_paths lines are there.
        cut = len(parsed)
        if parsed:
            last, first = parsed[-1][0], len(parsed)
            while first > 0 and parsed[first - 1][0] == last:
                first -= 1
            if len(parsed) - first != parsed[-1][2]:
                cut = first
        keep = offsets[cut] if cut < len(offsets) else keep
        if keep != len(data):
            with open(self.path, "r+b") as f:
                f.truncate(keep)
        self.num_lines = cut
        self.next_index = parsed[cut - 1][0] + 1 if cut else 0

    def write_problem(self, index: int, records: Sequence[LabelRecord]) -> None:
        """All records of problem ``index`` in one write; each gets ``index``, ``path``, ``num_paths``."""
        if index < self.next_index:
            raise ConfigError(f"problem {index} is already in {self.path}")
        lines = []
        for j, rec in enumerate(records):
            obj = rec.to_json()
            obj.update(index=index, path=j, num_paths=len(records))
            lines.append(json.dumps(obj, ensure_ascii=False) + "\n")
        if lines:
            self._file.write("".join(lines).encode("utf-8"))
            self._file.flush()
            os.fsync(self._file.fileno())
        self.num_lines += len(lines)
        self.next_index = index + 1

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> LabelWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def records_by_problem(records: Iterable[LabelRecord]) -> dict[str, list[LabelRecord]]:
    out: dict[str, list[LabelRecord]] = {}
    for r in records:
        out.setdefault(r.problem_key, []).append(r)
    return out


# -- making labels ----------------------------------------------------------------------------
LABEL_METHODS = ("mc", "outcome", "judge")


def paths_tree(task: Task, problem: Problem, paths: Sequence[Completion]) -> Tree:
    """The sampled paths merged into one tree (shared prefixes share nodes; ``visits`` counts
    the paths through a node; a path that broke off on a bad line flags its last node)."""
    tree = new_tree(task, problem, "sample")
    for c in paths:
        node = 0
        tree.visits[0] += 1
        for step in c.steps:
            child = find_child(tree, node, step.text)
            if child is None:
                (child,) = add_children(tree, task, node, [(step, 1.0)])
            node = child
            tree.visits[node] += 1
        if c.end == "invalid_step":
            tree.flag(node, "invalid_step")
    return tree


def tree_paths(tree: Tree, max_paths: int | None = None) -> list[int]:
    """End nodes of the paths to label in a tree: the chosen path, then terminal leaves, then
    other leaves, in creation order; at most ``max_paths``."""
    leaves = [i for i in range(1, len(tree)) if not tree.children[i]]
    chosen = [tree.chosen[-1]] if len(tree.chosen) > 1 else []
    ordered = list(dict.fromkeys(chosen + [i for i in leaves if tree.terminal[i]] + leaves))
    return ordered[:max_paths] if max_paths else ordered


def label_tree(
    task: Task,
    tree: Tree,
    ends: Sequence[int],
    *,
    method: str,
    rollout: RolloutScorer | None = None,
    judge: Scorer | None = None,
) -> list[LabelRecord]:
    """Label every step of the paths from the root to ``ends`` (one batched scorer call).

    ``mc``: Math-Shepherd hard/soft labels and Q*'s best-rollout value from ``rollout``;
    ``outcome``: every step gets the ground-truth outcome of its path's end (an ORM's labels,
    Cobbe et al. 2021; an unfinished path counts as wrong); ``judge``: the judge's value, label
    ``value >= 0.5``. Outcomes here are ground truth: labels are training data, never search.
    """
    if method not in LABEL_METHODS:
        raise ConfigError(f"unknown label method {method!r}; choose from {', '.join(LABEL_METHODS)}")
    paths = [tree.path_nodes(e)[1:] for e in ends]
    nodes = list(dict.fromkeys(n for p in paths for n in p))
    by_node: dict[int, tuple[bool, float, float]] = {}
    if method == "mc":
        if rollout is None:
            raise ConfigError("method 'mc' needs a RolloutScorer")
        for n, lab in zip(nodes, rollout.labels([tree.state[n] for n in nodes]), strict=True):
            by_node[n] = (lab.hard, lab.soft, lab.best)
    elif method == "judge":
        if judge is None:
            raise ConfigError("method 'judge' needs a judge scorer")
        for n, v in zip(nodes, judge.value([tree.state[n] for n in nodes]), strict=True):
            by_node[n] = (v >= 0.5, float(v), float(v))
    root = task.render(tree.state[0])
    out = []
    for end, path in zip(ends, paths, strict=True):
        if not path:
            continue
        final = tree.state[end]
        outcome = float(task.outcome(final) or 0.0) if task.is_terminal(final) else None
        if method == "outcome":
            r = outcome or 0.0
            triples = [(r >= 1.0, r, r)] * len(path)
        else:
            triples = [by_node[n] for n in path]
        meta: dict[str, Any] = {
            "task": task.name,
            "problem": tree.problem.text,
            "problem_id": tree.problem.id,
            "method": method,
            "outcome": outcome,
        }
        if method == "mc" and rollout is not None:
            meta["num_rollouts"] = rollout.num_rollouts
        out.append(
            LabelRecord(
                root,
                tuple(tree.step[n].text for n in path),
                tuple(h for h, _, _ in triples),
                tuple(s for _, s, _ in triples),
                tuple(b for _, _, b in triples) if method == "mc" else (),
                meta,
            )
        )
    return out
