"""Specification of the task registry: names on the command line -> task objects."""

from __future__ import annotations

import pytest

from qstar.errors import ConfigError
from qstar.tasks import registry
from qstar.tasks.base import Task
from qstar.tasks.countdown import COUNTDOWN_4, COUNTDOWN_6, CountdownTask
from qstar.tasks.game24 import Game24Task
from qstar.tasks.registry import get_task, register_task, task_names, task_summaries

BUILTIN = ("game24", "countdown-4", "countdown-6", "arith")


@pytest.fixture
def isolated_registry(monkeypatch):
    """Registrations made by a test vanish with it."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_CACHE", dict(registry._CACHE))


def test_the_built_in_tasks_are_registered():
    assert set(BUILTIN) <= set(task_names())


def test_every_built_in_task_has_a_summary():
    summaries = {info.name: info.summary for info in task_summaries()}
    assert all(summaries[name] for name in BUILTIN)


@pytest.mark.parametrize("name", BUILTIN)
def test_a_built_in_task_implements_the_task_protocol_under_its_own_name(name):
    task = get_task(name)
    assert isinstance(task, Task)
    assert task.name == name


def test_get_task_builds_the_number_games_with_their_settings():
    assert isinstance(get_task("game24"), Game24Task)
    countdown4, countdown6 = get_task("countdown-4"), get_task("countdown-6")
    assert isinstance(countdown4, CountdownTask) and countdown4.spec is COUNTDOWN_4
    assert isinstance(countdown6, CountdownTask) and countdown6.spec is COUNTDOWN_6


def test_get_task_returns_one_shared_instance_per_name():
    assert get_task("game24") is get_task("game24")


def test_an_unknown_task_is_a_config_error_listing_the_known_names():
    with pytest.raises(ConfigError) as info:
        get_task("game-24")
    message = str(info.value)
    assert "unknown task 'game-24'" in message
    for name in BUILTIN:
        assert name in message


def test_a_registered_task_is_built_lazily_once(isolated_registry):
    built = []

    def factory():
        built.append(1)
        return Game24Task()

    register_task("my-task", factory, "a test task")
    assert "my-task" in task_names()
    assert built == []
    assert get_task("my-task") is get_task("my-task")
    assert built == [1]


def test_registering_a_taken_name_is_a_config_error_unless_replacing(isolated_registry):
    register_task("my_task", Game24Task)
    first = get_task("my_task")
    with pytest.raises(ConfigError, match="already registered"):
        register_task("my_task", Game24Task)
    register_task("my_task", Game24Task, replace=True)
    assert get_task("my_task") is not first


@pytest.mark.parametrize("name", ["", "my task", "my/task", "-", "_", "task!"])
def test_a_task_name_must_be_letters_digits_dashes_and_underscores(isolated_registry, name):
    with pytest.raises(ConfigError, match="use letters, digits"):
        register_task(name, Game24Task)
    assert name not in task_names()


def test_the_isolated_registry_leaves_the_real_one_alone():
    assert "my-task" not in task_names()
    assert "my_task" not in task_names()
