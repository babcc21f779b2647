"""The README's claims that can be run are run: its two commands exist, its task example works."""

from __future__ import annotations

import re
from pathlib import Path

from qstar.search.registry import run_search
from qstar.tasks import registry
from qstar.types import Budget

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_readme_starts_with_the_two_setup_commands():
    first_block = re.search(r"```bash\n(.*?)```", README, flags=re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert "torch==2.13.0" in makefile
    assert re.search(r"^demo:", makefile, flags=re.M) and re.search(r"^test:", makefile, flags=re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_custom_task_example_registers_and_is_solved_by_search():
    block = next(b for b in python_blocks() if "class Doubling" in b)
    try:
        exec(compile(block, "README.md", "exec"), {})
        task = registry.get_task("doubling")
        problem = task.parse_problem("12")
        result = run_search("blind", problem, task, None, None, Budget(max_expansions=200), seed=0)
        assert result.solved is True
        assert task.verify(problem, result.answer).ok
        state = task.replay(problem, [s.text for s in result.steps])
        assert state.content == 12
    finally:
        registry._REGISTRY.pop("doubling", None)
        registry._CACHE.pop("doubling", None)


def test_cli_examples_in_the_readme_name_real_commands_and_searches():
    from qstar.search.registry import search_names

    for name in ("greedy", "qstar", "mcts", "tot_bfs", "blind"):
        assert name in search_names()
