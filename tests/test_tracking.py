"""MetricsLogger: JSONL is the source of truth; trackers get the same numbers."""

from __future__ import annotations

import json
import sys
import types

import pytest

from qstar.errors import ConfigError, MissingExtraError
from qstar.plots import read_metrics
from qstar.tracking import MetricsLogger, MLflowTracker, TensorBoardTracker, scalars


class RecordingTracker:
    def __init__(self):
        self.calls: list[tuple[dict, int]] = []
        self.closed = False

    def log(self, scalars, step):
        self.calls.append((scalars, step))

    def close(self):
        self.closed = True


def test_each_round_is_one_json_line_readable_while_the_logger_is_open(tmp_path):
    path = tmp_path / "run" / "metrics.jsonl"
    with MetricsLogger(path) as log:
        log.log({"round": 0, "system1_val_acc": 0.07, "note": "warm-up"})
        log.log({"round": 1, "system1_val_acc": 0.09})
        # Flushed and fsynced per round: a reader sees both lines before close.
        assert [json.loads(line) for line in path.read_text().splitlines()] == [
            {"round": 0, "system1_val_acc": 0.07, "note": "warm-up"},
            {"round": 1, "system1_val_acc": 0.09},
        ]


def test_nan_is_written_as_null_and_numpy_scalars_as_numbers(tmp_path):
    np = pytest.importorskip("numpy")
    path = tmp_path / "metrics.jsonl"
    with MetricsLogger(path) as log:
        log.log(
            {"round": np.int64(2), "value_loss": float("nan"), "tokens": np.int64(7), "acc": np.float32(0.5)}
        )
    assert read_metrics(path) == [{"round": 2, "value_loss": None, "tokens": 7, "acc": 0.5}]


def test_reopening_appends_so_a_resumed_run_keeps_its_history(tmp_path):
    path = tmp_path / "metrics.jsonl"
    with MetricsLogger(path) as log:
        log.log({"round": 0})
    with MetricsLogger(path) as log:
        log.log({"round": 1})
    assert [r["round"] for r in read_metrics(path)] == [0, 1]


def test_trackers_get_the_finite_numbers_flattened_at_the_round_step(tmp_path):
    tracker = RecordingTracker()
    with MetricsLogger(tmp_path / "m.jsonl", [tracker]) as log:
        log.log({"round": 5, "policy_loss": 1.25, "eval": {"system1": 0.5}, "note": "x", "done": True,
                 "bad": float("inf")})  # fmt: skip
        log.log({"policy_loss": 1.0})  # no round: the count of rounds logged before it
    assert tracker.calls == [
        ({"policy_loss": 1.25, "eval/system1": 0.5}, 5),
        ({"policy_loss": 1.0}, 1),
    ]
    assert tracker.closed


def test_logging_after_close_is_an_error(tmp_path):
    log = MetricsLogger(tmp_path / "m.jsonl")
    log.close()
    with pytest.raises(ConfigError, match="closed"):
        log.log({"round": 0})


def test_scalars_leaves_out_everything_but_finite_numbers():
    assert scalars(
        {"a": 1, "b": "s", "c": None, "d": [1], "e": False, "f": float("nan"), "g": {"h": 2.5}}
    ) == {
        "a": 1.0,
        "g/h": 2.5,
    }


def test_tensorboard_receives_the_scalars(tmp_path):
    pytest.importorskip("tensorboard", reason="TensorBoard is in extra [track]")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = tmp_path / "tb"
    with MetricsLogger.open(tmp_path / "m.jsonl", tensorboard=tb) as log:
        log.log({"round": 1, "system1_val_acc": 0.25})
        log.log({"round": 2, "system1_val_acc": 0.5})
    events = EventAccumulator(str(tb))
    events.Reload()
    points = [(e.step, e.value) for e in events.Scalars("system1_val_acc")]
    assert points == [(1, 0.25), (2, 0.5)]


def test_without_tensorboard_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(MissingExtraError, match=r"qstar\[track\]"):
        TensorBoardTracker("unused")


def test_mlflow_gets_a_run_params_and_stepped_metrics(monkeypatch):
    calls: list[tuple] = []
    fake = types.ModuleType("mlflow")
    fake.set_tracking_uri = lambda uri: calls.append(("uri", uri))
    fake.set_experiment = lambda name: calls.append(("experiment", name))
    fake.start_run = lambda run_name=None: calls.append(("start", run_name))
    fake.log_params = lambda params: calls.append(("params", params))
    fake.log_metrics = lambda metrics, step=None: calls.append(("metrics", metrics, step))
    fake.end_run = lambda: calls.append(("end",))
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    tracker = MLflowTracker("file:./mlruns", run_name="r1", params={"search": "mcts", "budget": 64})
    tracker.log({"policy_loss": 1.5}, 3)
    tracker.close()
    assert calls == [
        ("uri", "file:./mlruns"),
        ("experiment", "qstar"),
        ("start", "r1"),
        ("params", {"search": "mcts", "budget": "64"}),
        ("metrics", {"policy_loss": 1.5}, 3),
        ("end",),
    ]


def test_without_mlflow_the_error_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(MissingExtraError, match=r"qstar\[track\]"):
        MetricsLogger.open(tmp_path / "m.jsonl", mlflow="file:./mlruns")
