"""The fine-tuning skeleton (tasks/skeleton.py): every registered task's pipeline goes through
its shared steps, and those steps do what the pipelines once did each in their own way."""
import inspect
import json

import pytest

from tunesmith import runs
from tunesmith.config import FinetuneConfig
from tunesmith.tasks import skeleton
from tunesmith.tasks.registry import finetunable


@pytest.mark.parametrize("task", list(finetunable()))
def test_every_pipeline_uses_the_shared_steps(task):
    import importlib

    module, _, name = finetunable()[task].finetune.partition(":")
    mod = importlib.import_module(module)
    src = inspect.getsource(getattr(mod, name))
    for step in ("RunContext(", "start(ctx", "train(ctx)", "other_process(ctx)"):
        assert step in src, f"{task}: {step} missing"
    assert mod.train is skeleton.train and mod.start is skeleton.start and mod.finish is skeleton.finish


def ctx_for(tmp_path, resume: bool) -> skeleton.RunContext:
    cfg = FinetuneConfig()
    cfg.output.resume = resume
    return skeleton.RunContext(cfg, tmp_path, task="classification")


def test_resume_point_trims_the_metrics_past_the_checkpoint(tmp_path):
    from test_resume import fake_checkpoint

    fake_checkpoint(tmp_path, 4)
    lines = [{"kind": "train", "step": s} for s in range(1, 8)] + [{"kind": "summary", "step": 7}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(l) + "\n" for l in lines))
    assert skeleton.resume_point(ctx_for(tmp_path, resume=True)).endswith("checkpoint-4")
    assert [r["step"] for r in runs.read_metrics(tmp_path)] == [1, 2, 3, 4]
    assert skeleton.resume_point(ctx_for(tmp_path, resume=False)) is None


def test_finish_completes_run_json_from_memory(tmp_path):
    ctx = ctx_for(tmp_path, resume=False)
    ctx.info = runs.start(tmp_path, {"task": "classification", "labels": ["a", "b"]})
    (tmp_path / "run.json").unlink()  # not read back
    skeleton.finish(ctx, {"test": 0.9})
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["status"] == "complete" and info["labels"] == ["a", "b"] and info["test"] == 0.9


def test_checkpoint_bytes_counts_adapters_only_for_peft():
    class Plain:
        pass

    class Peft:
        peft_config = {}

    params = {"trainable": 10, "total": 100}
    assert skeleton.checkpoint_bytes(Peft(), params, 1) < skeleton.checkpoint_bytes(Plain(), params, 1)
