"""Which saved trees the viewer shows: one tree file, or every tree of a run.

A run directory (``runs/<name>``) keeps its trees in ``trees/*.json`` (subfolders allowed); any
other directory is searched for ``*.json`` itself. Files that are not ``qstar.tree/1`` trees are
left out of the listing. A tree's id is its path below that folder without ``.json``
(``round3/p17``); ids are only ever looked up in the listing, never joined onto a path, so a
request cannot reach a file outside it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from qstar.errors import ConfigError
from qstar.search.tree import SCHEMA

__all__ = ["TreeSource", "tree_summary"]

# Bigger files are listed by name only: summarising must not parse gigabytes.
MAX_SUMMARY_BYTES = 20_000_000


def tree_summary(obj: dict[str, Any]) -> dict[str, Any]:
    """What the tree picker shows of a ``qstar.tree/1`` object."""
    nodes = obj.get("nodes") or []
    chosen = obj.get("chosen") or []
    outcome = None
    if chosen and 0 <= chosen[-1] < len(nodes):
        outcome = nodes[chosen[-1]].get("outcome")
    problem = obj.get("problem") or {}
    return {
        "task": obj.get("task", ""),
        "method": obj.get("method", ""),
        "problem": problem.get("text", ""),
        "num_nodes": len(nodes),
        "solved": None if outcome is None else outcome >= 1.0,
    }


def _read_tree(path: Path) -> dict[str, Any] | None:
    """The tree object in ``path``, or ``None`` when it is not a readable qstar tree."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return obj if isinstance(obj, dict) and obj.get("schema") == SCHEMA else None


@dataclass(frozen=True)
class _Entry:
    id: str
    path: Path


class TreeSource:
    """The trees behind one ``qstar view PATH``. The folder is rescanned on every listing, so
    trees a running training saves show up on reload."""

    def __init__(self, path: str | Path):
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"{path}: no such file or directory")
        self._cache: dict[Path, tuple[tuple[int, int], dict[str, Any] | None]] = {}
        if path.is_file():
            if _read_tree(path) is None:
                raise ConfigError(
                    f"{path}: not a qstar search tree (expected JSON with schema {SCHEMA!r}, "
                    "as written by `qstar solve --save-tree`)"
                )
            self.folder, self.single = path.parent, path
        else:
            trees = path / "trees"
            self.folder, self.single = (trees if trees.is_dir() else path), None
            if not self.summaries():
                raise ConfigError(
                    f"{self.folder}: no saved search trees (*.json with schema {SCHEMA!r}); "
                    "save one with `qstar solve ... --save-tree FILE`"
                )
        self.path = path

    def describe(self) -> str:
        if self.single is not None:
            return str(self.single)
        return f"{len(self.summaries())} trees in {self.folder}"

    def _entries(self) -> list[_Entry]:
        if self.single is not None:
            return [_Entry(self.single.stem, self.single)]
        files = sorted(p for p in self.folder.rglob("*.json") if p.is_file())
        return [_Entry(p.relative_to(self.folder).with_suffix("").as_posix(), p) for p in files]

    def _summary(self, path: Path) -> dict[str, Any] | None:
        """Summary of one file, cached by (mtime, size); ``{}`` for a file too big to read."""
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        if stat.st_size > MAX_SUMMARY_BYTES:
            summary: dict[str, Any] | None = {}
        else:
            obj = _read_tree(path)
            summary = None if obj is None else tree_summary(obj)
        self._cache[path] = (stamp, summary)
        return summary

    def summaries(self) -> list[dict[str, Any]]:
        """One row per tree for the picker: id, name, url (relative to the page), bytes, and
        task/method/problem/num_nodes/solved where the file was small enough to read."""
        rows = []
        for entry in self._entries():
            try:
                summary = self._summary(entry.path)
                size = entry.path.stat().st_size
            except OSError:  # deleted between listing and reading
                continue
            if summary is None:
                continue
            url = "api/trees/" + quote(entry.id, safe="/")
            rows.append({"id": entry.id, "name": entry.path.name, "url": url, "bytes": size, **summary})
        return rows

    def path_of(self, tree_id: str) -> Path | None:
        """The file of a listed tree id, or ``None``."""
        for entry in self._entries():
            if entry.id == tree_id:
                return entry.path if self._summary(entry.path) is not None else None
        return None
