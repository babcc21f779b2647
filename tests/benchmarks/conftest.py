"""Shared fixtures of the benchmark tests."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "benchmarks" / "scripts"


@pytest.fixture
def load_script() -> Callable[[str], ModuleType]:
    """Import a script of ``benchmarks/scripts`` (not a package) by its file name."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), SCRIPTS / name)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
