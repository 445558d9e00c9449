"""progress.json: the run's live step for readers in other processes (the UI's progress bar)."""
import json
import os
from types import SimpleNamespace

from tunesmith import trainer
from tunesmith.trainer import RunLogCallback


def _state(step, max_steps=10, zero=True):
    return SimpleNamespace(is_world_process_zero=zero, global_step=step, max_steps=max_steps, epoch=step / max_steps)


def _read(run):
    return json.loads((run / "progress.json").read_text())


def test_progress_follows_the_steps_throttled(tmp_path, monkeypatch):
    cb = RunLogCallback(tmp_path, "f1", enabled=False)
    cb.on_train_begin(None, _state(0), None)
    p = _read(tmp_path)
    assert (p["phase"], p["step"], p["max_steps"], p["pid"]) == ("training", 0, 10, os.getpid())
    monkeypatch.setattr(trainer, "PROGRESS_EVERY_S", 0.0)
    cb.on_step_end(None, _state(3), None)
    assert _read(tmp_path)["step"] == 3
    monkeypatch.setattr(trainer, "PROGRESS_EVERY_S", 1e9)  # within the interval: not rewritten
    cb.on_step_end(None, _state(4, max_steps=12), None)
    assert _read(tmp_path)["step"] == 3
    cb.on_train_end(None, _state(5, max_steps=12), None)  # always written: training is over
    p = _read(tmp_path)
    assert (p["phase"], p["step"], p["max_steps"]) == ("evaluating", 5, 12)


def test_only_the_main_process_writes_progress(tmp_path):
    cb = RunLogCallback(tmp_path, "f1", enabled=False)
    cb.on_train_begin(None, _state(0, zero=False), None)
    cb.on_train_end(None, _state(4, zero=False), None)
    assert not (tmp_path / "progress.json").exists()
