"""A training run's directory: config, metrics, atomic checkpoints, saved trees, resume state.

Layout of ``runs/<name>/``::

    config.json                 the loop's config (a resumed run must match it)
    metrics.jsonl               one JSON line per round (written through qstar.tracking)
    checkpoints/round-0003/     the policy after round 3 (tiny-GPT checkpoint directory)
    state/round-0003/           what resuming needs besides the weights: optimizer.pt
                                (AdamW state + torch RNG), replay.json.gz (training targets),
                                state.json (counters, metrics history, Python/NumPy RNG states)
    state/LATEST                the last round whose checkpoint and state are complete
    collected/round-0004.json.gz  search results of the round in progress (dropped when it ends)
    trees/round-0003/*.json     a few search trees per round (schema qstar.tree/1)

Atomicity: every file is written to a temporary file in its directory and moved into place
with ``os.replace``; a round is *committed* when ``state/LATEST`` (itself replaced atomically)
names it, after its checkpoint and state are complete. A kill at any point therefore leaves the
last committed round intact; resuming continues from it (reusing the collected search results
of the interrupted round when they were saved) and rewrites ``metrics.jsonl`` from the committed
history, so no round is lost or logged twice.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qstar.errors import CheckpointError, ConfigError
from qstar.policy.tinygpt.checkpoint import load_checkpoint, save_checkpoint
from qstar.policy.tinygpt.model import GPT
from qstar.policy.tinygpt.tokenizer import Tokenizer

__all__ = ["RunDir", "RoundState", "write_atomic", "rng_states", "set_rng_states"]

LATEST = "LATEST"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_bytes(obj: Any, *, compress: bool = False) -> bytes:
    data = json.dumps(obj, separators=(",", ":") if compress else None, indent=None if compress else 1)
    raw = (data + "\n").encode()
    # mtime=0: the same content always gives the same bytes.
    return gzip.compress(raw, compresslevel=5, mtime=0) if compress else raw


def _read_json(path: Path) -> Any:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return json.loads(raw)


def rng_states() -> dict[str, Any]:
    """The global Python and NumPy RNG states as JSON (torch's goes in ``optimizer.pt``)."""
    py = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }


def set_rng_states(states: dict[str, Any]) -> None:
    py = states["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


@dataclass
class RoundState:
    """Everything a committed round leaves for the next one (besides the policy weights)."""

    round: int  # rounds completed
    model: GPT
    tokenizer: Tokenizer
    optimizer_state: dict[str, Any] | None
    replay: dict[str, Any]
    counters: dict[str, Any]
    history: list[dict[str, Any]]


class RunDir:
    """The directory of one run (module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    # -- paths --------------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.jsonl"

    def checkpoint_dir(self, round_index: int) -> Path:
        return self.path / "checkpoints" / f"round-{round_index:04d}"

    def state_dir(self, round_index: int) -> Path:
        return self.path / "state" / f"round-{round_index:04d}"

    def collected_file(self, round_index: int) -> Path:
        return self.path / "collected" / f"round-{round_index:04d}.json.gz"

    def trees_dir(self, round_index: int) -> Path:
        return self.path / "trees" / f"round-{round_index:04d}"

    # -- config -------------------------------------------------------------------------------
    def create(self, config: dict[str, Any]) -> None:
        """Start a new run; refuses a directory that already holds one."""
        if self.config_file.exists():
            raise ConfigError(
                f"run directory {self.path} already holds a run; resume it with --resume {self.path}"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        write_atomic(self.config_file, _json_bytes(config))

    def read_config(self) -> dict[str, Any]:
        if not self.config_file.is_file():
            raise ConfigError(f"{self.path} is not a run directory (no config.json)")
        return _read_json(self.config_file)

    # -- rounds -------------------------------------------------------------------------------
    def latest_round(self) -> int | None:
        """The last committed round (``None`` before the first commit)."""
        pointer = self.path / "state" / LATEST
        if not pointer.is_file():
            return None
        return int(pointer.read_text().strip())

    def save_checkpoint(
        self, round_index: int, model: GPT, tokenizer: Tokenizer, *, meta: dict[str, Any] | None = None
    ) -> Path:
        """The policy after round ``round_index`` (not committed until :meth:`commit_round`)."""
        return save_checkpoint(self.checkpoint_dir(round_index), model, tokenizer, meta=meta or {})

    def commit_round(
        self,
        round_index: int,
        *,
        optimizer: torch.optim.Optimizer | None,
        replay: dict[str, Any],
        counters: dict[str, Any],
        history: list[dict[str, Any]],
        keep: int = 2,
    ) -> None:
        """Write round ``round_index``'s state, then point ``LATEST`` at it (its checkpoint
        must already be saved)."""
        if not (self.checkpoint_dir(round_index) / "config.json").is_file():
            raise CheckpointError(
                f"round {round_index} has no checkpoint in {self.checkpoint_dir(round_index)}"
            )
        sdir = self.state_dir(round_index)
        opt = {"torch_rng": torch.get_rng_state()}
        if optimizer is not None:
            opt["optimizer"] = optimizer.state_dict()
        buf = io.BytesIO()
        torch.save(opt, buf)
        write_atomic(sdir / "optimizer.pt", buf.getvalue())
        write_atomic(sdir / "replay.json.gz", _json_bytes(replay, compress=True))
        state = {"round": round_index, "counters": counters, "history": history, "rng": rng_states()}
        write_atomic(sdir / "state.json", _json_bytes(state))
        write_atomic(self.path / "state" / LATEST, f"{round_index}\n".encode())
        self.collected_file(round_index).unlink(missing_ok=True)
        self._prune(round_index, keep)

    def _prune(self, latest: int, keep: int) -> None:
        """Drop states older than the last ``keep`` rounds (checkpoints too, except round 0)."""
        for parent, keep_first in ((self.path / "state", False), (self.path / "checkpoints", True)):
            for d in parent.glob("round-*"):
                r = int(d.name.split("-")[1])
                if r <= latest - keep and not (keep_first and r == 0):
                    shutil.rmtree(d, ignore_errors=True)

    def load_round(self, round_index: int) -> RoundState:
        """Read a committed round back; restores the global RNG states it saved."""
        sdir = self.state_dir(round_index)
        try:
            ckpt = load_checkpoint(self.checkpoint_dir(round_index))
            opt = torch.load(sdir / "optimizer.pt", weights_only=True)
            replay = _read_json(sdir / "replay.json.gz")
            state = _read_json(sdir / "state.json")
        except (OSError, ValueError) as err:
            raise CheckpointError(f"cannot resume {self.path} from round {round_index}: {err}") from err
        torch.set_rng_state(opt["torch_rng"])
        set_rng_states(state["rng"])
        ckpt.model.train(False)
        return RoundState(
            round=round_index,
            model=ckpt.model,
            tokenizer=ckpt.tokenizer,
            optimizer_state=opt.get("optimizer"),
            replay=replay,
            counters=state["counters"],
            history=state["history"],
        )

    # -- in-round files -----------------------------------------------------------------------
    def save_collected(self, round_index: int, collected: dict[str, Any]) -> None:
        write_atomic(self.collected_file(round_index), _json_bytes(collected, compress=True))

    def load_collected(self, round_index: int) -> dict[str, Any] | None:
        path = self.collected_file(round_index)
        return _read_json(path) if path.is_file() else None

    def save_tree(self, round_index: int, name: str, tree_json: dict[str, Any]) -> Path:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
        path = self.trees_dir(round_index) / f"{safe}.json"
        write_atomic(path, _json_bytes(tree_json))
        return path

    def rewrite_metrics(self, history: list[dict[str, Any]]) -> None:
        """Make ``metrics.jsonl`` hold exactly the committed rounds (used when resuming)."""
        lines = "".join(json.dumps(h, allow_nan=False) + "\n" for h in history)
        write_atomic(self.metrics_file, lines.encode())
