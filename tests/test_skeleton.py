"""The fine-tuning skeleton (tasks/skeleton.py): every registered task's pipeline goes through
its shared steps, and those steps do what the pipelines once did each in their own way."""
import inspect
import json

import pytest

from tunesmith import runs
from tunesmith.config import FinetuneConfig
from tunesmith.pretrain.config import PretrainConfig
from tunesmith.tasks import skeleton
from tunesmith.tasks.registry import finetunable


PIPELINES = {**{n: t.finetune for n, t in finetunable().items()}, "pretrain": "tunesmith.pretrain.pipeline:pretrain"}


@pytest.mark.parametrize("task", list(PIPELINES))
def test_every_pipeline_uses_the_shared_steps(task):
    import importlib

    module, _, name = PIPELINES[task].partition(":")
    mod = importlib.import_module(module)
    src = inspect.getsource(getattr(mod, name))
    for step in ("RunContext(", "start(ctx", "train(ctx)", "other_process(ctx)"):
        assert step in src, f"{task}: {step} missing"
    assert mod.train is skeleton.train and mod.start is skeleton.start and mod.finish is skeleton.finish


CONFIGS = {"classification": FinetuneConfig, "pretrain": PretrainConfig}


def ctx_for(tmp_path, resume: bool, task: str = "classification") -> skeleton.RunContext:
    cfg = CONFIGS[task]()
    cfg.output.resume = resume
    return skeleton.RunContext(cfg, tmp_path, task=task)


@pytest.mark.parametrize("task", list(CONFIGS))
def test_resume_point_trims_the_metrics_past_the_checkpoint(tmp_path, task):
    from test_resume import fake_checkpoint

    fake_checkpoint(tmp_path, 4)
    lines = [{"kind": "train", "step": s} for s in range(1, 8)] + [{"kind": "summary", "step": 7}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(l) + "\n" for l in lines))
    assert skeleton.resume_point(ctx_for(tmp_path, True, task)).endswith("checkpoint-4")
    assert [r["step"] for r in runs.read_metrics(tmp_path)] == [1, 2, 3, 4]
    assert skeleton.resume_point(ctx_for(tmp_path, False, task)) is None


def test_start_writes_the_method_only_where_there_is_one(tmp_path):
    for task in CONFIGS:
        ctx = ctx_for(tmp_path, False, task)
        ctx.params = {"trainable": 1, "total": 1}
        skeleton.start(ctx, {})
        assert ("method" in json.loads((tmp_path / "run.json").read_text())) == (task != "pretrain")


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
