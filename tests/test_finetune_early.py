"""Checks that need no data or weights run before anything is loaded or written, and a run that
fails before training leaves no directory in the way of the corrected rerun."""

import pytest

from tunesmith.config import FinetuneConfig
from tunesmith.errors import TunesmithError
from tunesmith.finetune import finetune
from conftest import write_csv


def config(model, data, out, **method) -> FinetuneConfig:
    cfg = FinetuneConfig()
    cfg.model.name, cfg.data.dataset, cfg.output.dir = str(model), str(data), str(out)
    cfg.train.max_steps, cfg.train.batch_size = 2, 16
    for k, v in method.items():
        setattr(cfg.method, k, v)
    return cfg


@pytest.fixture
def nothing_loads(monkeypatch):
    """Loading a model or data fails the test: the checks must come first."""
    from tunesmith.tasks import classification, generation, ner

    def boom(*a, **k):
        raise AssertionError("loaded before the checks")

    for module in (classification, ner, generation):
        for name in ("load_for_task", "load_tokenizer", "load_labelled", "load_ner_data", "read_documents"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, boom)


@pytest.mark.parametrize("method, task, match", [
    (dict(name="magic"), "classification", "unknown method 'magic'"),
    (dict(name="prompt"), "token-classification", "does not support token-classification"),
    (dict(name="lora", target_modules=["nope"]), "classification", r"target module\(s\) \['nope'\] not found"),
])
def test_config_errors_stop_before_loading_and_writing(tmp_path, tiny_bert, nothing_loads, method, task, match):
    cfg = config(tiny_bert, tmp_path / "missing.csv", tmp_path / "run", **method)
    cfg.model.task = task
    with pytest.raises(TunesmithError, match=match):
        finetune(cfg)
    assert not (tmp_path / "run").exists()


def test_unknown_task_stops_before_writing(tmp_path, tiny_bert, nothing_loads):
    cfg = config(tiny_bert, tmp_path / "x.csv", tmp_path / "run")
    cfg.model.task = "telepathy"
    with pytest.raises(TunesmithError, match="unknown task 'telepathy'"):
        finetune(cfg)
    assert not (tmp_path / "run").exists()


def test_a_run_failing_on_its_data_leaves_no_directory(tmp_path, tiny_bert):
    from conftest import sentiment_rows

    out = tmp_path / "run"
    bad = write_csv(tmp_path / "bad.csv", [{"text": r["text"], "label": "positive"} for r in sentiment_rows(40)])
    with pytest.raises(TunesmithError, match="single class"):
        finetune(config(tiny_bert, bad, out))
    assert not out.exists()  # the corrected rerun needs no --output.overwrite
    good = write_csv(tmp_path / "good.csv", sentiment_rows(40))
    run, report = finetune(config(tiny_bert, good, out))
    assert run == out and report["training"]["steps"] == 2


def test_a_failed_rerun_keeps_a_directory_it_did_not_create(tmp_path, tiny_bert):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    cfg = config(tiny_bert, tmp_path / "missing.csv", out)
    cfg.output.overwrite = True
    with pytest.raises(TunesmithError):
        finetune(cfg)
    assert (out / "notes.txt").read_text() == "mine"
