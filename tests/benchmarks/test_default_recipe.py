"""benchmarks/scripts/default_recipe.sh: the commands it runs, with stand-in executables."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "scripts" / "default_recipe.sh"


def recipe_commands(tmp_path: Path, **env: str) -> list[str]:
    """The command lines the recipe runs when ``qstar`` and ``python`` only log their arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.txt"
    for name in ("qstar", "python"):
        tool = bin_dir / name
        tool.write_text(f'#!/usr/bin/env bash\necho "{name} $*" >> "{log}"\n')
        tool.chmod(0o755)
    full = {**os.environ, "BIN": str(bin_dir), "RUNS": str(tmp_path / "runs"), "NAME": "r", **env}
    subprocess.run(["bash", str(SCRIPT)], check=True, env=full, capture_output=True, timeout=60)
    return log.read_text().splitlines()


def test_recipe_runs_stage_one_distillation_then_each_star_pass_on_the_last_student(tmp_path):
    calls = recipe_commands(tmp_path, STAR_PASSES="2", SEED="3", SWEEP="0", ROUNDS="12", ITER_PASSES="0")
    runs = tmp_path / "runs"
    assert calls[0].startswith("qstar train rft ") and "--name r-stage1" in calls[0]
    assert f"--init {runs}/r-stage1/checkpoints/round-0012 --out {runs}/r " in calls[1]
    first, second = calls[2], calls[3]
    assert f"--init {runs}/r --out {runs}/r-star1 --teacher self" in first and "--seed 3 " in first
    assert first.count("--mix-traces") == 1 and f"--mix-traces {runs}/r " in first
    assert f"--init {runs}/r-star1 --out {runs}/r-star2" in second and "--seed 4 " in second
    assert f"--mix-traces {runs}/r --mix-traces {runs}/r-star1 " in second
    assert f"--out {runs}/r-star2 --report-only" in calls[4] and len(calls) == 6


def test_recipe_without_star_passes_measures_the_distilled_student(tmp_path):
    calls = recipe_commands(tmp_path, SWEEP="0", ITER_PASSES="0")
    assert len(calls) == 4 and f"--out {tmp_path}/runs/r --report-only" in calls[2]


def test_recipe_defaults_are_the_shipped_bf16ship_iter2_recipe(tmp_path):
    calls = recipe_commands(tmp_path)
    runs = tmp_path / "runs"
    assert "--rounds 11 " in calls[0] and "--position rope --precision bf16 " in calls[0]
    assert calls[1].startswith(f"qstar train sweep --init {runs}/r-stage1/checkpoints/round-0011 ")
    assert "--steps 1200 " in calls[1] and "--precision bf16 " in calls[1]
    assert f"--init {runs}/r-sweep --out {runs}/r --traces-per-problem 3 --steps 1700 " in calls[2]
    assert "--teacher-temperature 0.5 --value-threshold 0.64 --precision bf16 " in calls[2]
    assert f"--init {runs}/r --out {runs}/r-iter1 --traces-per-problem 3 --steps 800 --lr 5e-4 " in calls[3]
    assert (
        f"--init {runs}/r-iter1 --out {runs}/r-iter2 --traces-per-problem 3 --steps 800 --lr 5e-4 "
        in calls[4]
    )
    assert all("--precision bf16 " in call for call in calls[3:5])
    assert f"--init {runs}/r-sweep --out {runs}/r-iter2 --report-only" in calls[5] and len(calls) == 7


def test_recipe_in_fp32_passes_the_precision_to_every_training_command(tmp_path):
    calls = recipe_commands(tmp_path, PRECISION="fp32", STAR_PASSES="1")
    assert [c for c in calls if "--precision" in c] == calls[:6]
    assert all("--precision fp32 " in c for c in calls[:6])


def test_recipe_with_a_sweep_distils_from_the_swept_model(tmp_path):
    calls = recipe_commands(tmp_path, SWEEP="1", THRESHOLD="0.4", ROUNDS="6", ITER_PASSES="0")
    runs = tmp_path / "runs"
    assert calls[1].startswith(
        f"qstar train sweep --init {runs}/r-stage1/checkpoints/round-0006 --out {runs}/r-sweep "
    )
    assert (
        f"train distill --init {runs}/r-sweep --out {runs}/r " in calls[2]
        and "--value-threshold 0.4 " in calls[2]
    )
    assert f"--init {runs}/r-sweep --out {runs}/r --report-only" in calls[3] and len(calls) == 5


def test_recipe_passes_the_sweep_steps(tmp_path):
    calls = recipe_commands(tmp_path, SWEEP_STEPS="1200")
    assert calls[1].startswith("qstar train sweep ") and "--steps 1200 " in calls[1]


def test_recipe_iterates_with_each_student_teaching_the_next(tmp_path):
    calls = recipe_commands(tmp_path, ITER_PASSES="2", ITER_STEPS="300", ITER_TRACES="2")
    runs = tmp_path / "runs"
    first, second = calls[3], calls[4]
    assert f"train distill --init {runs}/r --out {runs}/r-iter1 --traces-per-problem 2 --steps 300 " in first
    assert "--teacher self" not in first and "--lr 5e-4 " in first and "--value-threshold 0.64 " in first
    assert f"--init {runs}/r-iter1 --out {runs}/r-iter2 " in second
    assert f"--out {runs}/r-iter2 --report-only" in calls[5] and len(calls) == 7
